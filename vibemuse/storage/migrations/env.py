"""Alembic environment: runs migrations on the connection VibeMUSE hands it.

VibeMUSE drives Alembic from code (``vibemuse migrate`` and the start-up
check), never from an ini file: the caller puts an open SQLAlchemy connection
in ``config.attributes["connection"]``.
"""

from alembic import context

from vibemuse.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
