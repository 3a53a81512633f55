"""The tables, as SQLAlchemy 2.x declarative models.

Alembic migrations in ``migrations/versions`` create and change these tables;
the models are what queries are written against. Times are integers of
milliseconds since the epoch (UTC), the same unit the protocol uses.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Room(Base):
    __tablename__ = "rooms"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_folded: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_ts: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    location_room_id: Mapped[str] = mapped_column(ForeignKey("rooms.room_id"), index=True)
    # The newest stream position when the account was made: resuming replays nothing older.
    created_position: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # A server-wide ban by an admin: when, and the reason given (null: not banned)
    banned_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ban_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class AccessToken(Base):
    __tablename__ = "access_tokens"
    __table_args__ = (Index("ix_access_tokens_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    expires_ts: Mapped[int] = mapped_column(BigInteger)
    revoked_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ServerState(Base):
    """Small facts about this server that must survive restarts (e.g. the default room)."""

    __tablename__ = "server_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


POSITION = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """Every event this server keeps, in its one total order (``stream_position``).

    ``event_json`` is the signed event in canonical JSON, without ``unsigned``
    (which is rebuilt when the event is read). The other columns are copies of
    event fields that queries filter on.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_room_position", "room_id", "stream_position"),
        Index("ix_events_channel_position", "channel_id", "stream_position"),
        Index("ix_events_sender_position", "sender", "stream_position"),
        Index("ix_events_room_ts", "room_id", "origin_server_ts"),
        Index("ix_events_channel_ts", "channel_id", "origin_server_ts"),
        Index("ix_events_type_position", "event_type", "stream_position"),
        Index("ix_events_room_sender_position", "room_id", "sender", "stream_position"),
        Index("ix_events_channel_sender_position", "channel_id", "sender", "stream_position"),
    )

    stream_position: Mapped[int] = mapped_column(POSITION, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(300))
    room_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    channel_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # content.kind (say, pose, page, channel, wall ...); content.membership for member events
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    origin_server_ts: Mapped[int] = mapped_column(BigInteger)
    event_json: Mapped[str] = mapped_column(Text)
    # The plain text of the latest version of a message, for search and filters
    # (null for events without text, emptied by a redaction).
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    redacted_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    latest_edit_position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ClientTransaction(Base):
    """A client's ``messageId`` that was acted on, so a retry gets the same ack.

    Keyed by user, kind of request (the frame type) and ``messageId``: the
    same id on another kind of request is another request."""

    __tablename__ = "client_transactions"

    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    request_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    stream_position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_ts: Mapped[int] = mapped_column(BigInteger)


class EventRecipient(Base):
    """Who a page (or receipt) is addressed to: one row per recipient."""

    __tablename__ = "event_recipients"
    __table_args__ = (Index("ix_event_recipients_position", "stream_position"),)

    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    stream_position: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class PendingDelivery(Base):
    """An event for a user who was offline when it was made; removed once delivered."""

    __tablename__ = "pending_deliveries"

    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    stream_position: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class UserSettings(Base):
    __tablename__ = "user_settings"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    haven: Mapped[bool] = mapped_column(Boolean, default=False)
    haven_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_paged: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of user ids


class Block(Base):
    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_blocked", "blocked"),)

    blocker: Mapped[str] = mapped_column(String(300), primary_key=True)
    blocked: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_ts: Mapped[int] = mapped_column(BigInteger)


class Channel(Base):
    __tablename__ = "channels"

    channel_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(32))
    name_folded: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16))  # public | private
    owner: Mapped[str] = mapped_column(String(300))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    # shared: members read all history; joined: members read only what came after they joined
    history_visibility: Mapped[str] = mapped_column(String(16), server_default="shared")
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the server's setting
    # the newest stamp of the channel's order (protocol/channel_chain.py): 0 and "" before the first
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    chain_head: Mapped[str] = mapped_column(String(64), server_default="")


class ChannelStamp(Base):
    """One stamp of a channel's order: the home's signed (seq, event, predecessor), kept by the
    home and by every server holding a copy of the channel."""

    __tablename__ = "channel_chain"

    channel_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    chain: Mapped[str] = mapped_column(String(64))
    stamp_json: Mapped[str] = mapped_column(Text)


class ChannelMember(Base):
    __tablename__ = "channel_members"
    __table_args__ = (Index("ix_channel_members_user", "user_id"),)

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.channel_id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # member | moderator | owner
    alias: Mapped[str | None] = mapped_column(String(32), nullable=True)
    title: Mapped[str | None] = mapped_column(String(64), nullable=True)
    muted_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    joined_ts: Mapped[int] = mapped_column(BigInteger)
    joined_position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the stream position of the join


class ChannelBan(Base):
    __tablename__ = "channel_bans"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.channel_id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    banned_by: Mapped[str] = mapped_column(String(300))
    banned_ts: Mapped[int] = mapped_column(BigInteger)


class ChannelServerBan(Base):
    """A whole server barred from a channel (federation.md 10.6)."""

    __tablename__ = "channel_server_bans"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.channel_id"), primary_key=True)
    server_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    banned_by: Mapped[str] = mapped_column(String(300))
    banned_ts: Mapped[int] = mapped_column(BigInteger)


class ChannelInvite(Base):
    __tablename__ = "channel_invites"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.channel_id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    invited_by: Mapped[str] = mapped_column(String(300))
    invited_ts: Mapped[int] = mapped_column(BigInteger)


class Report(Base):
    """A user's report of a message, for moderators and admins to resolve."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("event_id", "reporter", name="uq_reports_event_reporter"),
        Index("ix_reports_status", "status", "report_id"),
    )

    report_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100))
    reporter: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    created_ts: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    resolved_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    resolved_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class ArchivedEvent(Base):
    """Events past their retention, moved out of the live tables (signatures intact)."""

    __tablename__ = "archived_events"

    stream_position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(300))
    room_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    channel_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    origin_server_ts: Mapped[int] = mapped_column(BigInteger)
    event_json: Mapped[str] = mapped_column(Text)
    archived_ts: Mapped[int] = mapped_column(BigInteger)


class OutboxEntry(Base):
    """An event waiting to be sent to one other server (``federation/sender.py``).

    Written in the transaction that stores the event; removed once the
    destination has answered for it (accepted or refused). ``outbox_id`` is one
    order over all destinations; each destination's rows are sent in it.
    """

    __tablename__ = "federation_outbox"
    __table_args__ = (
        UniqueConstraint("destination", "event_id", name="uq_federation_outbox_destination_event"),
        Index("ix_federation_outbox_destination", "destination", "outbox_id"),
    )

    outbox_id: Mapped[int] = mapped_column(POSITION, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(100))
    event_json: Mapped[str] = mapped_column(Text)
    enqueued_ts: Mapped[int] = mapped_column(BigInteger)


class FederationDestination(Base):
    """How sending to one other server goes: backoff, last success, what it refused."""

    __tablename__ = "federation_destinations"

    destination: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")  # consecutive
    next_attempt_ts: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_success_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_contact_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_delivery_lag_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    delivered: Mapped[int] = mapped_column(BigInteger, server_default="0")  # events accepted, all time
    refused: Mapped[int] = mapped_column(BigInteger, server_default="0")  # events refused, all time
    last_refusal: Mapped[str | None] = mapped_column(Text, nullable=True)  # "<event_id> <code>"
class FederationTransaction(Base):
    """A transaction received from another server, with the answer it got,
    so a repeat of the same (origin, txn_id) gets the same answer, across
    restarts too."""

    __tablename__ = "federation_transactions"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    txn_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer_json: Mapped[str] = mapped_column(Text)
    received_ts: Mapped[int] = mapped_column(BigInteger)


class FederationNonce(Base):
    """A nonce of a signed request from another server, kept while a replay
    of that request would still be inside the time window."""

    __tablename__ = "federation_nonces"
    __table_args__ = (Index("ix_federation_nonces_ts", "ts"),)

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
