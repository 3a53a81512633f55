"""The order of channels: each channel's sequence and chain head, and every stamp.

``channels.last_seq`` and ``channels.chain_head`` are the newest stamp of the
channel's order (0 and "" before the first); ``channel_chain`` keeps every
stamp (``protocol/channel_chain.py``), on the channel's home and on every
server that holds a copy of a channel homed elsewhere, with the event it
orders.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channels", sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("channels", sa.Column("chain_head", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "channel_chain",
        sa.Column("channel_id", sa.String(300), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=False, unique=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("stamp_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_chain")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("chain_head")
        batch.drop_column("last_seq")
