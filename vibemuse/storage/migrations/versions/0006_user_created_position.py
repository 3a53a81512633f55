"""Users: the stream position at which the account was made.

Resuming (protocol.md section 5.7) replays only what the user could have
seen: nothing from before the account existed. ``created_position`` is the
newest stream position when the account was made; a ``since`` below it
counts as it. Accounts made before this revision get the newest position
among the events older than the account (0 if none).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("created_position", sa.BigInteger, nullable=False, server_default="0"))
    op.execute(
        "UPDATE users SET created_position = COALESCE((SELECT MAX(events.stream_position) FROM events "
        "WHERE events.origin_server_ts < users.created_ts), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("created_position")
