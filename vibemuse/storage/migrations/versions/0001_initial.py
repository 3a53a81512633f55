"""Initial schema: rooms, users, access tokens, server state.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("room_id", sa.String(300), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_folded", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(300), nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(300), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("location_room_id", sa.String(300), sa.ForeignKey("rooms.room_id"), nullable=False),
    )
    op.create_index("ix_users_location_room_id", "users", ["location_room_id"])
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(300), sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=False),
        sa.Column("revoked_ts", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_access_tokens_user_id", "access_tokens", ["user_id"])
    op.create_table(
        "server_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_state")
    op.drop_index("ix_access_tokens_user_id", "access_tokens")
    op.drop_table("access_tokens")
    op.drop_index("ix_users_location_room_id", "users")
    op.drop_table("users")
    op.drop_table("rooms")
