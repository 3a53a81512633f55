"""The federation outbox: events queued per destination server, and each destination's state.

``federation_outbox`` rows are written in the transaction that stores their
event and deleted once the destination answered for them; the sender
(``vibemuse/federation/sender.py``) reads them per destination in
``outbox_id`` order. ``federation_destinations`` keeps the backoff and the
figures the admin endpoint shows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ORDER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "federation_outbox",
        sa.Column("outbox_id", ORDER, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("event_json", sa.Text, nullable=False),
        sa.Column("enqueued_ts", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("destination", "event_id", name="uq_federation_outbox_destination_event"),
    )
    op.create_index("ix_federation_outbox_destination", "federation_outbox", ["destination", "outbox_id"])
    op.create_table(
        "federation_destinations",
        sa.Column("destination", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_ts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_success_ts", sa.BigInteger, nullable=True),
        sa.Column("last_contact_ts", sa.BigInteger, nullable=True),
        sa.Column("last_delivery_lag_ms", sa.BigInteger, nullable=True),
        sa.Column("delivered", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refused", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_refusal", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("federation_destinations")
    op.drop_index("ix_federation_outbox_destination", table_name="federation_outbox")
    op.drop_table("federation_outbox")
