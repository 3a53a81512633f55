"""Transactions over the order of channels: stamping at the home, keeping stamps elsewhere.

At a channel's **home**, ``op_sequence`` is an op of ``append_events_txn``
(run after the events are inserted): under a lock on the channel's row it
gives each new event of the channel the next sequence number, signs its
stamp (``protocol/channel_chain.py``), keeps the stamp in ``channel_chain``,
moves the channel's head, and queues the event with its stamp (as
``unsigned.channel_stamp``) for every other server taking part: the servers
of its members after the change, and of the users the events name (so a
server whose last member leaves hears of it). All in the event's database
transaction, so an event is never stored without its place in the order,
nor ordered without being relayed.

On a server holding a **copy** of a channel homed elsewhere, ``op_keep_stamps``
keeps stamps received from the home in the same transaction as their
events; ``stamped_after_txn`` reads a channel's events in order (for a
backfill request at the home).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, update

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.channel_chain import GENESIS, STAMP_KEY, chain_of, make_stamp
from vibemuse.protocol.ids import parse_user_id
from vibemuse.protocol.signing import SigningKey
from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord
from vibemuse.storage.event_txns import client_transactions, get_receipt_txn
from vibemuse.storage.event_txns import events as events_table
from vibemuse.storage.models import Channel, ChannelMember, ChannelStamp
from vibemuse.storage.outbox_txns import outbox
from vibemuse.storage.records import Receipt, TransactionKey

channels = Channel.__table__
members = ChannelMember.__table__
chain = ChannelStamp.__table__


@dataclass(frozen=True)
class Stamped:
    """An event of a channel with its stamp (as stored, without ``unsigned``)."""

    event: dict[str, Any]
    stamp: dict[str, Any]


def relayed(event: dict[str, Any], stamp: dict[str, Any]) -> dict[str, Any]:
    """The event as the home relays it: with its stamp in ``unsigned``."""
    return {**event, "unsigned": {STAMP_KEY: stamp}}


def servers_of(user_ids: Sequence[str]) -> set[str]:
    return {parse_user_id(user_id).server_name for user_id in user_ids}


def op_sequence(channel_id: str, home: str, signing_key: SigningKey, new_events: Sequence[dict[str, Any]],
                now_ms: int) -> Callable[[Connection], None]:
    """An ``after_events`` op: stamp ``new_events`` (all of ``channel_id``) in order and relay them."""

    def apply(connection: Connection) -> None:
        row = connection.execute(
            select(channels.c.last_seq, channels.c.chain_head)
            .where(channels.c.channel_id == channel_id).with_for_update()).one()
        seq, head = row.last_seq, row.chain_head
        stamps, chains = [], []
        for event in new_events:
            seq += 1
            stamp = make_stamp(channel_id, seq, event["event_id"], head if seq > 1 else GENESIS, home, signing_key)
            head = chain_of(stamp)
            stamps.append(stamp)
            chains.append(head)
        _insert_stamps(connection, channel_id, stamps, chains)
        member_ids = connection.execute(select(members.c.user_id).where(members.c.channel_id == channel_id)).scalars()
        named = [event["sender"] for event in new_events] + [
            event["content"]["target"] for event in new_events if isinstance(event["content"].get("target"), str)]
        named_servers = {event["content"]["target_server"] for event in new_events
                         if isinstance(event["content"].get("target_server"), str)}  # a server kicked, banned, leaving
        destinations = sorted((servers_of(list(member_ids)) | servers_of(named) | named_servers) - {home})
        rows = [{"destination": name, "event_id": event["event_id"], "enqueued_ts": now_ms,
                 "event_json": encode_canonical_json(relayed(event, stamp)).decode("utf-8")}
                for event, stamp in zip(new_events, stamps) for name in destinations]
        if rows:
            connection.execute(insert(outbox), rows)
        apply.destinations = tuple(destinations)  # type: ignore[attr-defined]  # whom EventWriter wakes
        apply.stamps = stamps  # type: ignore[attr-defined]

    apply.after_events = True  # type: ignore[attr-defined]
    apply.destinations = ()  # type: ignore[attr-defined]
    return apply


def op_keep_stamps(channel_id: str, stamps: Sequence[dict[str, Any]]) -> Callable[[Connection], None]:
    """An op for a copy of a channel homed elsewhere: keep stamps received from the home
    (already checked to follow the channel's head, in order) and move the head."""

    def apply(connection: Connection) -> None:
        _insert_stamps(connection, channel_id, stamps, [chain_of(stamp) for stamp in stamps])

    return apply


def _insert_stamps(connection: Connection, channel_id: str, stamps: Sequence[dict[str, Any]],
                   chains: Sequence[str]) -> None:
    """Keep ``stamps`` (consecutive, in order; ``chains`` theirs) in one statement, and move the
    channel's head to the last."""
    if not stamps:
        return
    rows = [{"channel_id": channel_id, "seq": stamp["seq"], "event_id": stamp["event_id"], "chain": link,
             "stamp_json": encode_canonical_json(stamp).decode("utf-8")} for stamp, link in zip(stamps, chains)]
    connection.execute(insert(chain), rows)
    connection.execute(update(channels).where(channels.c.channel_id == channel_id)
                       .values(last_seq=rows[-1]["seq"], chain_head=rows[-1]["chain"]))


def head_txn(connection: Connection, channel_id: str) -> tuple[int, str] | None:
    """(last_seq, chain_head) of a channel, or None if this server has no such channel."""
    row = connection.execute(select(channels.c.last_seq, channels.c.chain_head)
                             .where(channels.c.channel_id == channel_id)).first()
    return None if row is None else (row.last_seq, row.chain_head)


def stamped_after_txn(connection: Connection, channel_id: str, after_seq: int, limit: int) -> list[Stamped]:
    """The channel's events after ``after_seq``, in order, at most ``limit``, with their stamps."""
    rows = connection.execute(
        select(chain.c.stamp_json, events_table.c.event_json)
        .join(events_table, events_table.c.event_id == chain.c.event_id)
        .where(chain.c.channel_id == channel_id, chain.c.seq > after_seq)
        .order_by(chain.c.seq).limit(limit))
    return [Stamped(json.loads(row.event_json), json.loads(row.stamp_json)) for row in rows]


def stamp_of_txn(connection: Connection, event_id: str) -> dict[str, Any] | None:
    row = connection.execute(select(chain.c.stamp_json).where(chain.c.event_id == event_id)).first()
    return None if row is None else json.loads(row.stamp_json)


def op_keep_replica(channel: ChannelRecord, roster: Sequence[MemberRecord], local_server: str
                    ) -> Callable[[Connection], None]:
    """An op for a copy of a channel homed elsewhere: its settings and members as the home
    says (made on the first join; members' own aliases here are kept). Its ``name_folded``
    is ``name@home``, so it never clashes with a channel of this server's own."""
    home = channel.channel_id.split(":", 1)[1]

    def apply(connection: Connection) -> None:
        values = dict(name=channel.name, name_folded=f"{channel.name.casefold()}@{home}",
                      description=channel.description, topic=channel.topic, visibility=channel.visibility,
                      owner=channel.owner, created_ts=channel.created_ts,
                      history_visibility=channel.history_visibility)
        key = channels.c.channel_id == channel.channel_id
        if connection.execute(update(channels).where(key).values(**values)).rowcount == 0:
            seq = (connection.execute(select(func.max(channels.c.seq))).scalar() or 0) + 1
            connection.execute(insert(channels).values(channel_id=channel.channel_id, seq=seq, **values))
        listed = {member.user_id for member in roster}
        held = set(connection.execute(select(members.c.user_id).where(
            members.c.channel_id == channel.channel_id)).scalars())
        gone = held - listed
        if gone:
            connection.execute(delete(members).where(members.c.channel_id == channel.channel_id,
                                                     members.c.user_id.in_(gone)))
        for member in roster:
            where = (members.c.channel_id == channel.channel_id) & (members.c.user_id == member.user_id)
            changes = dict(role=member.role, title=member.title, muted_until=member.muted_until)
            if member.user_id not in held:
                connection.execute(insert(members).values(channel_id=channel.channel_id, user_id=member.user_id,
                                                          alias=None, joined_ts=member.joined_ts, **changes))
            else:
                connection.execute(update(members).where(where).values(**changes))

    return apply


def queue_for_home_txn(connection: Connection, event: dict[str, Any], home: str, request: TransactionKey,
                       now_ms: int) -> Receipt:
    """Queue a member's event for its channel's home (not stored here until the home relays
    it back, stamped); a retry of the same request gets the first receipt."""
    earlier = get_receipt_txn(connection, request)
    if earlier is not None:
        return earlier
    connection.execute(insert(outbox).values(
        destination=home, event_id=event["event_id"], enqueued_ts=now_ms,
        event_json=encode_canonical_json(event).decode("utf-8")))
    connection.execute(insert(client_transactions).values(
        user_id=request.user_id, request_kind=request.kind, message_id=request.message_id,
        event_id=event["event_id"], stream_position=None, created_ts=now_ms))
    return Receipt(event["event_id"], None)


def request_of_txn(connection: Connection, user_id: str, event_id: str) -> str | None:
    """The ``messageId`` of the client request of ``user_id`` that made ``event_id``, if kept."""
    row = connection.execute(select(client_transactions.c.message_id).where(
        client_transactions.c.user_id == user_id, client_transactions.c.event_id == event_id)).first()
    return None if row is None else row.message_id
