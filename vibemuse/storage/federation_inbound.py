"""What the receiving side of federation keeps: transactions and nonces.

A transaction's answer is stored under (origin, txn_id) once it is decided,
so a repeat gets the same answer, after a restart too. A request's nonce is
claimed under (origin, nonce) with the request's ``ts``; nonces older than
the time window are pruned as new ones are claimed (a replay of such a
request is refused as expired anyway).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from vibemuse.storage.models import FederationNonce, FederationTransaction
from vibemuse.storage.store import Storage

transactions = FederationTransaction.__table__
nonces = FederationNonce.__table__


class FederationInboundStore:
    """Verbs for received transactions and nonces, on the storage's engine and threads."""

    def __init__(self, storage: Storage):
        self._storage = storage

    async def transaction_answer(self, origin: str, txn_id: str) -> dict[str, Any] | None:
        """The stored answer to (origin, txn_id), or None if it was never decided."""
        return await self._storage._read(_transaction_answer_txn, origin, txn_id)

    async def record_transaction(self, origin: str, txn_id: str, answer: dict[str, Any],
                                 now_ms: int) -> dict[str, Any]:
        """Keep the answer; if the transaction was recorded meanwhile, that answer wins."""
        try:
            await self._storage._write(_record_transaction_txn, origin, txn_id, json.dumps(answer), now_ms)
        except IntegrityError:
            pass
        stored = await self.transaction_answer(origin, txn_id)
        assert stored is not None
        return stored

    async def claim_nonce(self, origin: str, nonce: str, ts: int, oldest_ts: int) -> bool:
        """True if (origin, nonce) was not seen since ``oldest_ts``; then it is kept."""
        try:
            return await self._storage._write(_claim_nonce_txn, origin, nonce, ts, oldest_ts)
        except IntegrityError:
            return False


def _transaction_answer_txn(connection: Connection, origin: str, txn_id: str) -> dict[str, Any] | None:
    row = connection.execute(select(transactions.c.answer_json).where(
        transactions.c.origin == origin, transactions.c.txn_id == txn_id)).first()
    return None if row is None else json.loads(row.answer_json)


def _record_transaction_txn(connection: Connection, origin: str, txn_id: str, answer_json: str,
                            now_ms: int) -> None:
    connection.execute(insert(transactions).values(
        origin=origin, txn_id=txn_id, answer_json=answer_json, received_ts=now_ms))


def _claim_nonce_txn(connection: Connection, origin: str, nonce: str, ts: int, oldest_ts: int) -> bool:
    connection.execute(delete(nonces).where(nonces.c.ts < oldest_ts))
    seen = connection.execute(select(nonces.c.ts).where(
        nonces.c.origin == origin, nonces.c.nonce == nonce)).first()
    if seen is not None:
        return False
    connection.execute(insert(nonces).values(origin=origin, nonce=nonce, ts=ts))
    return True
