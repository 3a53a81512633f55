"""Storage: SQLAlchemy models, Alembic migrations, and the ``Storage`` interface."""

from vibemuse.storage.engine import create_database_engine
from vibemuse.storage.records import Conflict, NotFound, RoomRecord, StorageError, TokenRecord, UserRecord
from vibemuse.storage.schema import SchemaOutOfDate, ensure_schema, schema_status, upgrade
from vibemuse.storage.store import Storage

__all__ = [
    "Conflict",
    "NotFound",
    "RoomRecord",
    "SchemaOutOfDate",
    "Storage",
    "StorageError",
    "TokenRecord",
    "UserRecord",
    "create_database_engine",
    "ensure_schema",
    "schema_status",
    "upgrade",
]
