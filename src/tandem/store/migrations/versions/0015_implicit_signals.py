"""Implicit signals: what people do with an answer without rating it (regenerate, stop, copy,
edit-and-resend, a correcting follow-up), each pointing at the generation it judges.

Revision ID: 0015_implicit_signals
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_implicit_signals"
down_revision = "0014_jobs"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "implicit_signals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "generation_id",
            sa.String(32),
            sa.ForeignKey("generation_records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "message_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_implicit_signals_user_id", "implicit_signals", ["user_id"])
    op.create_index("ix_implicit_signals_generation_id", "implicit_signals", ["generation_id"])
    op.create_index("ix_implicit_signals_created_at", "implicit_signals", ["created_at"])


def downgrade() -> None:
    op.drop_table("implicit_signals")
