"""Accounts the admin bootstrap (TANDEM_ADMIN_API_KEY) created are marked, so that it never
promotes an account someone else signed up with its address.

Existing databases: an `admin@localhost` without a password was made by the bootstrap (or by
`tandem eval`'s owner lookup), since sign-up always sets a password; it is marked. One with a
password was signed up by a person and stays unmarked.

Revision ID: 0013_bootstrap_admin_mark
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_bootstrap_admin_mark"
down_revision = "0012_context_notices_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("created_by_bootstrap", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    users = sa.table(
        "users",
        sa.column("email", sa.String),
        sa.column("password_hash", sa.String),
        sa.column("created_by_bootstrap", sa.Boolean),
    )
    op.execute(
        users.update()
        .where(users.c.email == "admin@localhost", users.c.password_hash.is_(None))
        .values(created_by_bootstrap=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("created_by_bootstrap")
