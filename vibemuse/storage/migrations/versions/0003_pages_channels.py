"""Pages (recipients, offline deliveries, haven, blocks) and channels.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("channel_id", sa.String(300), nullable=True))
    op.create_index("ix_events_channel_position", "events", ["channel_id", "stream_position"])
    op.create_table(
        "event_recipients",
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("stream_position", sa.BigInteger, primary_key=True),
    )
    op.create_table(
        "pending_deliveries",
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("stream_position", sa.BigInteger, primary_key=True),
    )
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(300), sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("haven", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("haven_message", sa.Text, nullable=True),
        sa.Column("last_paged", sa.Text, nullable=True),
    )
    op.create_table(
        "blocks",
        sa.Column("blocker", sa.String(300), primary_key=True),
        sa.Column("blocked", sa.String(300), primary_key=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_blocks_blocked", "blocks", ["blocked"])
    op.create_table(
        "channels",
        sa.Column("channel_id", sa.String(300), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False, unique=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("name_folded", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "channel_members",
        sa.Column("channel_id", sa.String(300), sa.ForeignKey("channels.channel_id"), primary_key=True),
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("alias", sa.String(32), nullable=True),
        sa.Column("title", sa.String(64), nullable=True),
        sa.Column("muted_until", sa.BigInteger, nullable=True),
        sa.Column("joined_ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_channel_members_user", "channel_members", ["user_id"])
    op.create_table(
        "channel_bans",
        sa.Column("channel_id", sa.String(300), sa.ForeignKey("channels.channel_id"), primary_key=True),
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("banned_by", sa.String(300), nullable=False),
        sa.Column("banned_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "channel_invites",
        sa.Column("channel_id", sa.String(300), sa.ForeignKey("channels.channel_id"), primary_key=True),
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("invited_by", sa.String(300), nullable=False),
        sa.Column("invited_ts", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("channel_invites", "channel_bans"):
        op.drop_table(table)
    op.drop_index("ix_channel_members_user", "channel_members")
    op.drop_table("channel_members")
    op.drop_table("channels")
    op.drop_index("ix_blocks_blocked", "blocks")
    op.drop_table("blocks")
    op.drop_table("user_settings")
    op.drop_table("pending_deliveries")
    op.drop_table("event_recipients")
    op.drop_index("ix_events_channel_position", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("channel_id")
