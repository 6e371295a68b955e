"""Rollouts: per profile (or the site default) a production version and candidates, and an
append-only history of every change (who, when, why, gate results).

Revision ID: 0011_rollouts
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_rollouts"
down_revision = "0010_files"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(32), primary_key=True),
        # "default" or the profile id: unique, where a NULL profile_id could not be.
        sa.Column("scope", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "profile_id",
            sa.String(32),
            sa.ForeignKey("profiles.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("production_version", sa.String(200), nullable=False),
        sa.Column("comparison_rate", sa.Float(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "rollout_candidates",
        sa.Column(
            "rollout_id",
            sa.String(32),
            sa.ForeignKey("rollouts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.String(200), primary_key=True),
        sa.Column("traffic_share", sa.Float(), nullable=False),
        sa.Column("in_comparisons", sa.Boolean(), nullable=False),
        sa.Column("added_at", TS, nullable=False),
    )
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "rollout_id",
            sa.String(32),
            sa.ForeignKey("rollouts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column(
            "actor_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("from_version", sa.String(200), nullable=True),
        sa.Column("to_version", sa.String(200), nullable=True),
        sa.Column("gates", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_rollout_events_rollout_id", "rollout_events", ["rollout_id"])
    op.create_index("ix_rollout_events_at", "rollout_events", ["at"])


def downgrade() -> None:
    op.drop_table("rollout_events")
    op.drop_table("rollout_candidates")
    op.drop_table("rollouts")
