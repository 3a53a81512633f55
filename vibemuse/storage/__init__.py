"""Storage: SQLAlchemy models, Alembic migrations, and the ``Storage`` interface."""

from vibemuse.storage.engine import create_database_engine
from vibemuse.storage.records import (
    Conflict,
    DatabaseUnavailable,
    NotFound,
    Receipt,
    Relocation,
    RoomRecord,
    StorageError,
    TokenRecord,
    TransactionKey,
    UserRecord,
)
from vibemuse.storage.schema import SchemaOutOfDate, ensure_schema, schema_status, upgrade
from vibemuse.storage.store import Storage

__all__ = [
    "Conflict",
    "DatabaseUnavailable",
    "NotFound",
    "Receipt",
    "Relocation",
    "RoomRecord",
    "SchemaOutOfDate",
    "Storage",
    "StorageError",
    "TokenRecord",
    "TransactionKey",
    "UserRecord",
    "create_database_engine",
    "ensure_schema",
    "schema_status",
    "upgrade",
]
