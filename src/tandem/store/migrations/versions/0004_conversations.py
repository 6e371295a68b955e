"""Conversations, their message trees, and the generation records answers point at.

Revision ID: 0004_conversations
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_conversations"
down_revision = "0003_model_versions"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column(
            "profile_id",
            sa.String(32),
            sa.ForeignKey("profiles.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("current_message_id", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
    )
    op.create_index("ix_conversations_owner_id", "conversations", ["owner_id"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_table(
        "generation_records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("sampling", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("rendered_prompt", sa.Text(), nullable=True),
        sa.Column("input_messages", sa.JSON(), nullable=False),
        sa.Column("output_text", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("time_to_first_token_s", sa.Float(), nullable=True),
        sa.Column("finish_reason", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_generation_records_user_id", "generation_records", ["user_id"])
    op.create_index("ix_generation_records_model_version", "generation_records", ["model_version"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "parent_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column(
            "generation_id",
            sa.String(32),
            sa.ForeignKey("generation_records.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("generation_records")
    op.drop_table("conversations")
