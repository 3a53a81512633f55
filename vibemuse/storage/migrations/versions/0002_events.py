"""Events (the one total order of this server) and client transactions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("stream_position", POSITION, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(100), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(300), nullable=False),
        sa.Column("room_id", sa.String(300), nullable=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
        sa.Column("event_json", sa.Text, nullable=False),
    )
    op.create_index("ix_events_room_position", "events", ["room_id", "stream_position"])
    op.create_table(
        "client_transactions",
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("request_kind", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=True),
        sa.Column("stream_position", sa.BigInteger, nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("client_transactions")
    op.drop_index("ix_events_room_position", "events")
    op.drop_table("events")
