"""Datasets: immutable, content-hashed snapshots of signals.

A snapshot's files live under $TANDEM_HOME/datasets/<id>/; these tables record which snapshots
exist, who built them from what filters, and every signal id each one read, so "which datasets
used this feedback?" is one indexed query. Signal ids carry no foreign key on purpose: a snapshot
outlives the rows it read (a user may delete their data; the snapshot is never modified).

Revision ID: 0007_datasets
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_datasets"
down_revision = "0006_product"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column(
            "created_by",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index("ix_dataset_snapshots_hash", "dataset_snapshots", ["hash"], unique=True)
    op.create_table(
        "dataset_snapshot_signals",
        sa.Column(
            "snapshot_id",
            sa.String(64),
            sa.ForeignKey("dataset_snapshots.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("signal_kind", sa.String(20), primary_key=True),
        sa.Column("signal_id", sa.String(200), primary_key=True),
    )
    op.create_index(
        "ix_dataset_snapshot_signals_signal",
        "dataset_snapshot_signals",
        ["signal_kind", "signal_id"],
    )


def downgrade() -> None:
    op.drop_table("dataset_snapshot_signals")
    op.drop_table("dataset_snapshots")
