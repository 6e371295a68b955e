"""Eval runs: one row per `tandem eval run` and one per graded example.

Each item points at the generation record of its answer (owned by the admin who ran it), so
datasets and evals read the same record. SET NULL: deleting that record keeps the verdict.

Revision ID: 0008_eval_runs
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_eval_runs"
down_revision = "0007_datasets"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("suite", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("sampling", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column(
            "created_by",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index("ix_eval_runs_suite", "eval_runs", ["suite"])
    op.create_index("ix_eval_runs_model_version", "eval_runs", ["model_version"])
    op.create_table(
        "eval_items",
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("eval_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("example_id", sa.String(200), primary_key=True),
        sa.Column("prompt_messages", sa.JSON(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "generation_id",
            sa.String(32),
            sa.ForeignKey("generation_records.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("eval_items")
    op.drop_table("eval_runs")
