"""History: indexes for a room's or a channel's events by one sender.

``GET /api/communication/history/{roomId}?sender=...`` (and the channel
history) read one sender's events in one room, newest first. Without these,
SQLite has to pick between the room's index (and read every event of a busy
room to find a quiet sender's few) and the sender's (and read every event of
a chatty sender to find the few in a quiet room); with them it seeks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_room_sender_position", "events", ["room_id", "sender", "stream_position"])
    op.create_index("ix_events_channel_sender_position", "events", ["channel_id", "sender", "stream_position"])


def downgrade() -> None:
    op.drop_index("ix_events_channel_sender_position", "events")
    op.drop_index("ix_events_room_sender_position", "events")
