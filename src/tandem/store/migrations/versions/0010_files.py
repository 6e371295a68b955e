"""Files with citations: uploaded documents and their chunks with embeddings.

Embeddings are float32 bytes in a plain binary column, not a vector type: the same schema on
SQLite and PostgreSQL, searched by brute-force cosine over one chat's or profile's chunks
(docs/architecture.md says why and when pgvector would be worth it).

Revision ID: 0010_files
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_files"
down_revision = "0009_tool_calls"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("mime", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        # Chunks are searchable by keywords once stored; vectors fill in afterwards, in
        # ordinal order: this many have theirs.
        sa.Column("embedded_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_files_user_id", "files", ["user_id"])
    op.create_index("ix_files_conversation_id", "files", ["conversation_id"])
    op.create_table(
        "file_chunks",
        sa.Column(
            "file_id",
            sa.String(32),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ordinal", sa.Integer(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("locator", sa.String(200), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_table("files")
