"""Bans of whole servers from a channel (spec/v1/federation.md 10.6).

A row bars every player of ``server_name`` from the channel until it is
lifted; it is kept on the channel's home (which enforces it) and on every
copy (which shows it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_server_bans",
        sa.Column("channel_id", sa.String(300), sa.ForeignKey("channels.channel_id"), primary_key=True),
        sa.Column("server_name", sa.String(255), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("banned_by", sa.String(300), nullable=False),
        sa.Column("banned_ts", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_server_bans")
