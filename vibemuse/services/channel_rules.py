"""Who may moderate a channel: one rule for a channel's home, whether the moderator is a
player of this server (``services/channels.py``) or of another (``services/channel_home.py``)."""

from __future__ import annotations

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord

MODERATION = ("kick", "ban", "unban", "invite", "mute", "unmute", "promote", "demote")
MODERATORS = ("owner", "moderator")
NEEDS_MEMBER = ("kick", "mute", "unmute", "promote", "demote")


def check_may_change(channel: ChannelRecord, actor: MemberRecord | None, admin: bool) -> None:
    """Owners, moderators and admins moderate a channel and change its settings."""
    if not admin and (actor is None or actor.role not in MODERATORS):
        raise ProtocolError(ErrorCode.FORBIDDEN, f"Only {channel.name}'s owner and moderators can do that.")


def check_moderation(channel: ChannelRecord, actor_id: str, actor: MemberRecord | None, admin: bool, action: str,
                     target_id: str, target_name: str, target_member: MemberRecord | None) -> None:
    """ProtocolError unless ``actor_id`` may take ``action`` against ``target_id`` (16.5)."""
    check_may_change(channel, actor, admin)
    if action in ("promote", "demote") and not admin and (actor is None or actor.role != "owner"):
        raise ProtocolError(ErrorCode.FORBIDDEN, "Only the owner can appoint or remove moderators.")
    if target_id == actor_id:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "You cannot do that to yourself.")
    if target_id == channel.owner and not admin:
        raise ProtocolError(ErrorCode.FORBIDDEN, "Nobody but an admin acts against the channel's owner.")
    if action in NEEDS_MEMBER and target_member is None:
        raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"{target_name} is not on {channel.name}.")


SERVER_ACTIONS = ("kick", "ban", "unban")  # what moderators do to a whole server (federation.md 10.6)


def check_server_moderation(channel: ChannelRecord, home: str, actor_server: str, actor: MemberRecord | None,
                            admin: bool, action: str, server: str, has_members: bool) -> None:
    """ProtocolError unless a moderator of ``actor_server`` may take ``action`` against every
    player of ``server`` on a channel homed on ``home``."""
    check_may_change(channel, actor, admin)
    if action not in SERVER_ACTIONS:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "A whole server can be kicked, banned or unbanned, no more.")
    if server == home:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, f"{server} is {channel.name}'s home: it cannot be removed.")
    if server == actor_server:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "You cannot do that to your own server.")
    if action == "kick" and not has_members:
        raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"No player of {server} is on {channel.name}.")
