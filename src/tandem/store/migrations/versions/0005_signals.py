"""Signals: feedback on answers (append-only, superseded or withdrawn) and blind comparisons.

Revision ID: 0005_signals
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_signals"
down_revision = "0004_conversations"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
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
        sa.Column("rating", sa.String(4), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("superseded_at", TS, nullable=True),
        sa.Column("withdrawn_at", TS, nullable=True),
    )
    op.create_index("ix_feedback_user_id", "feedback", ["user_id"])
    op.create_index("ix_feedback_generation_id", "feedback", ["generation_id"])
    op.create_table(
        "comparisons",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "parent_message_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "message_a_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "message_b_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("verdict", sa.String(10), nullable=True),
        sa.Column("voted_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_comparisons_user_id", "comparisons", ["user_id"])
    op.create_index("ix_comparisons_conversation_id", "comparisons", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("comparisons")
    op.drop_table("feedback")
