"""Alembic environment: runs on the connection `tandem.store.db.migrate` hands over."""

from alembic import context

from tandem.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `migrate()` runs migrations
    raise RuntimeError("run migrations with tandem.store.db.migrate(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
