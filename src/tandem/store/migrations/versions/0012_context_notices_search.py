"""Generation records say how the conversation was fitted into the model's context and which
notices the person saw beside the answer; messages keep their plain text for search.

Revision ID: 0012_context_notices_search
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0012_context_notices_search"
down_revision = "0011_rollouts"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("generation_records") as batch:
        batch.add_column(sa.Column("context", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("notices", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    # Existing messages get their text from their parts, as new ones do on insert.
    messages = sa.table(
        "messages",
        sa.column("id", sa.String),
        sa.column("parts", sa.JSON),
        sa.column("search_text"),
    )
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            sa.select(messages.c.id, messages.c.parts)
            .where(messages.c.id > last)
            .order_by(messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for message_id, parts in rows:
            if isinstance(parts, str):
                parts = json.loads(parts)
            text = "".join(p.get("text", "") for p in parts or [] if p.get("type") == "text")
            if text:
                bind.execute(
                    messages.update().where(messages.c.id == message_id).values(search_text=text)
                )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("search_text")
    with op.batch_alter_table("generation_records") as batch:
        batch.drop_column("notices")
        batch.drop_column("context")
