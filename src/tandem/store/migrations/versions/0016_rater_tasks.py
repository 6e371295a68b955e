"""Raters and their tasks: a rater flag on users; tasks (ranking, demonstration, spec labels,
red team) with items, some of them gold; one assignment per (item, rater) holding what that
rater submitted.

Revision ID: 0016_rater_tasks
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_rater_tasks"
down_revision = "0015_implicit_signals"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _user(name: str, ondelete: str, nullable: bool) -> sa.Column:
    return sa.Column(
        name, sa.String(32), sa.ForeignKey("users.id", ondelete=ondelete), nullable=nullable
    )


def upgrade() -> None:
    # Existing accounts are not raters until an admin makes them one.
    op.add_column(
        "users", sa.Column("is_rater", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "rater_tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("guideline", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("raters_per_item", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("behaviors", sa.JSON(), nullable=False),
        _user("created_by", "SET NULL", True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "rater_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "task_id",
            sa.String(32),
            sa.ForeignKey("rater_tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column("gold", sa.JSON(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("resolution", sa.JSON(), nullable=True),
        _user("resolved_by", "SET NULL", True),
        sa.Column("resolved_at", TS, nullable=True),
    )
    op.create_index("ix_rater_items_task_id", "rater_items", ["task_id"])
    op.create_table(
        "rater_assignments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "item_id",
            sa.String(32),
            sa.ForeignKey("rater_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "task_id",
            sa.String(32),
            sa.ForeignKey("rater_tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _user("rater_id", "CASCADE", False),
        sa.Column("queue_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("generations", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("submitted_at", TS, nullable=True),
        sa.UniqueConstraint("item_id", "rater_id", name="uq_rater_assignments_item_rater"),
    )
    op.create_index("ix_rater_assignments_rater_id", "rater_assignments", ["rater_id"])
    op.create_index("ix_rater_assignments_task_id", "rater_assignments", ["task_id"])


def downgrade() -> None:
    op.drop_table("rater_assignments")
    op.drop_table("rater_items")
    op.drop_table("rater_tasks")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_rater")
