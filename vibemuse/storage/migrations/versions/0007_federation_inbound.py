"""Federation, receiving side: transactions received (with their answers)
and the nonces of signed requests seen within the time window.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_transactions",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("txn_id", sa.String(64), primary_key=True),
        sa.Column("answer_json", sa.Text, nullable=False),
        sa.Column("received_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "federation_nonces",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_federation_nonces_ts", "federation_nonces", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_federation_nonces_ts", "federation_nonces")
    op.drop_table("federation_nonces")
    op.drop_table("federation_transactions")
