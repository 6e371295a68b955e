"""Tool calls on generation records: which tools ran for an answer, with what input, output
and citations, so datasets and evals see them (issue 6: tools are part of the record).

Revision ID: 0009_tool_calls
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_tool_calls"
down_revision = "0008_eval_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation_records") as batch:
        batch.add_column(sa.Column("tool_calls", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("generation_records") as batch:
        batch.drop_column("tool_calls")
