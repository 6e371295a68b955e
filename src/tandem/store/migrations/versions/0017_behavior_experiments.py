"""Behavior experiments: per profile (or the site default) variants of a default behavior, and
which variant wrote each side of the comparisons they drew.

Revision ID: 0017_behavior_experiments
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_behavior_experiments"
down_revision = "0016_rater_tasks"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "behavior_experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "profile_id",
            sa.String(32),
            sa.ForeignKey("profiles.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("comparison_rate", sa.Float(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column(
            "created_by",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
    )
    op.create_index("ix_behavior_experiments_profile_id", "behavior_experiments", ["profile_id"])
    op.create_index("ix_behavior_experiments_status", "behavior_experiments", ["status"])
    op.create_table(
        "experiment_variants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.String(32),
            sa.ForeignKey("behavior_experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("prompt_addition", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=True),
    )
    op.create_index(
        "ix_experiment_variants_experiment_id", "experiment_variants", ["experiment_id"]
    )
    op.create_table(
        "experiment_comparisons",
        sa.Column(
            "comparison_id",
            sa.String(32),
            sa.ForeignKey("comparisons.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "experiment_id",
            sa.String(32),
            sa.ForeignKey("behavior_experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "variant_a_id",
            sa.String(32),
            sa.ForeignKey("experiment_variants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "variant_b_id",
            sa.String(32),
            sa.ForeignKey("experiment_variants.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_experiment_comparisons_experiment_id", "experiment_comparisons", ["experiment_id"]
    )


def downgrade() -> None:
    op.drop_table("experiment_comparisons")
    op.drop_table("experiment_variants")
    op.drop_table("behavior_experiments")
