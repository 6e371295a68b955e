"""The chat product's own data: memories, improved answers, image attachments; the memory
switches on users and conversations; tools and knowledge files on profiles.

Revision ID: 0006_product
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_product"
down_revision = "0005_signals"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _owner() -> sa.Column:
    return sa.Column(
        "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    # Existing rows get the defaults a new row gets: memory on, no tools, no knowledge files.
    op.add_column(
        "users", sa.Column("memory_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column(
        "conversations",
        sa.Column("use_memory", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "profiles", sa.Column("tools", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column(
        "profiles",
        sa.Column("knowledge_file_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )

    op.create_table(
        "memories",
        sa.Column("id", sa.String(32), primary_key=True),
        _owner(),
        sa.Column("text", sa.String(1000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
    )
    op.create_index("ix_memories_user_id", "memories", ["user_id"])

    op.create_table(
        "improvements",
        sa.Column("id", sa.String(32), primary_key=True),
        _owner(),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "original_message_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "original_generation_id",
            sa.String(32),
            sa.ForeignKey("generation_records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "improved_message_id",
            sa.String(32),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
    )
    op.create_index("ix_improvements_user_id", "improvements", ["user_id"])
    op.create_index("ix_improvements_created_at", "improvements", ["created_at"])
    op.create_index(
        "ix_improvements_original_generation_id", "improvements", ["original_generation_id"]
    )

    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        _owner(),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("mime", sa.String(50), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_uploads_user_id", "uploads", ["user_id"])


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_table("improvements")
    op.drop_table("memories")
    op.drop_column("profiles", "knowledge_file_ids")
    op.drop_column("profiles", "tools")
    op.drop_column("conversations", "use_memory")
    op.drop_column("users", "memory_enabled")
