"""Records to wire objects (the shapes in spec/v1/schemas/common.json)."""

from __future__ import annotations

from typing import Any

from vibemuse.config import Config
from vibemuse.protocol.frames import format_timestamp
from vibemuse.services.accounts import Session
from vibemuse.storage import RoomRecord, UserRecord
from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord
from vibemuse.storage.message_txns import ReportRecord, StoredMessage


def user_to_wire(user: UserRecord) -> dict[str, Any]:
    return {"id": user.user_id, "username": user.username, "role": user.role}


def room_to_wire(room: RoomRecord) -> dict[str, Any]:
    return {
        "id": room.room_id,
        "name": room.name,
        "description": room.description,
        "createdBy": room.created_by,
        "createdAt": format_timestamp(room.created_ts),
    }


def session_to_wire(session: Session) -> dict[str, Any]:
    return {
        "user": user_to_wire(session.user),
        "location": session.user.location_room_id,
        "accessToken": session.access_token,
        "expiresAt": format_timestamp(session.expires_ts),
    }


def limits_to_wire(config: Config) -> dict[str, int]:
    return {
        "maxFrameBytes": config.max_frame_bytes,
        "maxHttpBodyBytes": config.max_http_body_bytes,
        "authTimeoutMs": int(config.auth_timeout_seconds * 1000),
        "heartbeatIntervalMs": int(config.heartbeat_interval_seconds * 1000),
        "heartbeatTimeoutMs": int(config.heartbeat_timeout_seconds * 1000),
        "maxConnectionsPerUser": config.max_connections_per_user,
        "maxTextLength": config.max_text_length,
        "outboundQueueBytes": config.outbound_queue_bytes,
        "idleAfterMs": config.idle_after_seconds * 1000,
        "typingTimeoutMs": int(config.typing_timeout_seconds * 1000),
        "typingRefreshMs": int(config.typing_refresh_seconds * 1000),
        "maxPageRecipients": config.max_page_recipients,
        "resumeMaxEvents": config.resume_max_events,
        "presenceRoomLimit": config.presence_room_limit,
    }


def channel_to_wire(channel: ChannelRecord) -> dict[str, Any]:
    return {
        "id": channel.channel_id,
        "name": channel.name,
        "description": channel.description,
        "topic": channel.topic,
        "visibility": channel.visibility,
        "owner": channel.owner,
        "createdAt": format_timestamp(channel.created_ts),
        "historyVisibility": channel.history_visibility,
        "retentionDays": channel.retention_days,
    }


def member_to_wire(member: MemberRecord, online: bool, now_ms: int) -> dict[str, Any]:
    wire: dict[str, Any] = {"userId": member.user_id, "role": member.role, "online": online,
                            "muted": member.muted_until is not None and member.muted_until > now_ms}
    if member.title:
        wire["title"] = member.title
    return wire


def membership_to_wire(member: MemberRecord, channel: ChannelRecord) -> dict[str, Any]:
    wire: dict[str, Any] = {"channelId": channel.channel_id, "name": channel.name, "role": member.role}
    if member.alias:
        wire["alias"] = member.alias
    if member.title:
        wire["title"] = member.title
    return wire


def message_to_wire(stored: StoredMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"event": stored.event, "deleted": stored.redacted}
    if stored.latest_edit is not None and not stored.redacted:
        wire["latestEdit"] = stored.latest_edit
    return wire


def report_to_wire(report: ReportRecord) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": report.report_id,
        "eventId": report.event_id,
        "reporter": report.reporter,
        "reason": report.reason,
        "createdAt": format_timestamp(report.created_ts),
        "status": report.status,
    }
    if report.channel_id:
        wire["channelId"] = report.channel_id
    if report.room_id:
        wire["roomId"] = report.room_id
    if report.resolved_by:
        wire["resolvedBy"] = report.resolved_by
        wire["resolvedAt"] = format_timestamp(report.resolved_ts or 0)
        wire["resolution"] = report.resolution or ""
    return wire
