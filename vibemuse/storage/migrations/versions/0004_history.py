"""History: searchable bodies, edits and redactions, reports, the archive.

Full-text search uses each engine's own: an FTS5 table kept in step by
triggers on SQLite, a generated ``tsvector`` column with a GIN index on
PostgreSQL. Both index ``events.body``, the plain text of the latest
version of a message (empty once redacted).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE events_fts USING fts5(body, content='events', content_rowid='stream_position')",
    """CREATE TRIGGER events_fts_insert AFTER INSERT ON events WHEN new.body IS NOT NULL BEGIN
         INSERT INTO events_fts(rowid, body) VALUES (new.stream_position, new.body); END""",
    """CREATE TRIGGER events_fts_delete AFTER DELETE ON events WHEN old.body IS NOT NULL BEGIN
         INSERT INTO events_fts(events_fts, rowid, body) VALUES ('delete', old.stream_position, old.body); END""",
    """CREATE TRIGGER events_fts_update AFTER UPDATE OF body ON events BEGIN
         INSERT INTO events_fts(events_fts, rowid, body) SELECT 'delete', old.stream_position, old.body
           WHERE old.body IS NOT NULL;
         INSERT INTO events_fts(rowid, body) SELECT new.stream_position, new.body WHERE new.body IS NOT NULL; END""",
]


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("body", sa.Text, nullable=True))
        batch.add_column(sa.Column("redacted_ts", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("latest_edit_position", sa.BigInteger, nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("history_visibility", sa.String(16), nullable=False, server_default="shared"))
        batch.add_column(sa.Column("retention_days", sa.Integer, nullable=True))
    with op.batch_alter_table("channel_members") as batch:
        batch.add_column(sa.Column("joined_position", sa.BigInteger, nullable=True))
    op.create_index("ix_events_sender_position", "events", ["sender", "stream_position"])
    op.create_index("ix_events_room_ts", "events", ["room_id", "origin_server_ts"])
    op.create_index("ix_events_channel_ts", "events", ["channel_id", "origin_server_ts"])
    op.create_index("ix_events_type_position", "events", ["event_type", "stream_position"])
    op.create_index("ix_event_recipients_position", "event_recipients", ["stream_position"])
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute("ALTER TABLE events ADD COLUMN body_tsv tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED")
        op.execute("CREATE INDEX ix_events_body_tsv ON events USING gin (body_tsv)")
    op.create_table(
        "reports",
        sa.Column("report_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("reporter", sa.String(300), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_by", sa.String(300), nullable=True),
        sa.Column("resolved_ts", sa.BigInteger, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.UniqueConstraint("event_id", "reporter", name="uq_reports_event_reporter"),
    )
    op.create_index("ix_reports_status", "reports", ["status", "report_id"])
    op.create_table(
        "archived_events",
        sa.Column("stream_position", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(300), nullable=False),
        sa.Column("room_id", sa.String(300), nullable=True),
        sa.Column("channel_id", sa.String(300), nullable=True),
        sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
        sa.Column("event_json", sa.Text, nullable=False),
        sa.Column("archived_ts", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archived_events")
    op.drop_index("ix_reports_status", "reports")
    op.drop_table("reports")
    if op.get_bind().dialect.name == "sqlite":
        for name in ("events_fts_insert", "events_fts_delete", "events_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE events_fts")
    else:
        op.execute("DROP INDEX ix_events_body_tsv")
        op.execute("ALTER TABLE events DROP COLUMN body_tsv")
    for index in ("ix_event_recipients_position",):
        op.drop_index(index, "event_recipients")
    for index in ("ix_events_type_position", "ix_events_channel_ts", "ix_events_room_ts", "ix_events_sender_position"):
        op.drop_index(index, "events")
    with op.batch_alter_table("channel_members") as batch:
        batch.drop_column("joined_position")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("retention_days")
        batch.drop_column("history_visibility")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("latest_edit_position")
        batch.drop_column("redacted_ts")
        batch.drop_column("body")
