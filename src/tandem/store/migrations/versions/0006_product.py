"""The chat product's own data: memories, improved answers, image attachments.

Revision ID: 0006_product
"""

revision = "0006_product"
down_revision = "0005_signals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
