"""Model versions: the registry's metadata, with lineage through parent_id.

Revision ID: 0003_model_versions
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_model_versions"
down_revision = "0002_profiles_and_instructions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column(
            "parent_id",
            sa.String(200),
            sa.ForeignKey("model_versions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("base_path", sa.Text(), nullable=False),
        sa.Column("formats", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_versions")
