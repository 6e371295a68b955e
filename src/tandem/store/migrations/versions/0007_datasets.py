"""Datasets: immutable, content-hashed snapshots of signals.

Revision ID: 0007_datasets
"""

revision = "0007_datasets"
down_revision = "0006_product"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
