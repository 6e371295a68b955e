"""Custom instructions (one row per user) and assistant profiles.

Revision ID: 0002_profiles_and_instructions
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_profiles_and_instructions"
down_revision = "0001_users_and_auth"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "custom_instructions",
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("about_user", sa.Text(), nullable=False),
        sa.Column("response_style", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("starters", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("sampling", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_profiles_owner_id", "profiles", ["owner_id"])


def downgrade() -> None:
    op.drop_table("profiles")
    op.drop_table("custom_instructions")
