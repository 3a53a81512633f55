"""Users: a server-wide ban (``vibemuse admin ban``, ``POST /api/admin/users/{userId}/ban``).

``banned_ts`` is when an admin banned the account (null: not banned) and
``ban_reason`` what they gave as the reason. A banned account cannot log in
and its tokens are revoked when the ban is made.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("banned_ts", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("ban_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("ban_reason")
        batch.drop_column("banned_ts")
