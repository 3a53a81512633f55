"""Histories over HTTP: ``GET /api/communication/history/{roomId}``, and the query
every history endpoint shares (rooms, channels, page conversations).

Query parameters (protocol.md section 19): ``limit``; ``before`` or ``after``
(stream positions, at most one); ``kind`` (repeatable, or a comma list);
``sender``; ``since`` / ``until`` (RFC 3339 or milliseconds since the epoch);
``q`` (full-text search). A bad value is ``invalid_request`` naming it.
"""

from __future__ import annotations

import re
from datetime import datetime

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.numbers import MAX_STREAM_POSITION, ascii_whole_number, parse_whole_number
from vibemuse.services.history import DEFAULT_LIMIT, MAX_LIMIT, History, HistoryRequest

MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_KINDS, MAX_QUERY_CHARS, MAX_WORDS = 20, 200, 16
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both engines' tokenizers index


def invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_REQUEST, message)


def parse_time(name: str, raw: str) -> int:
    """RFC 3339 (with a time zone) or whole milliseconds since the epoch, to milliseconds."""
    millis = ascii_whole_number(raw)
    if millis is not None and millis <= MAX_TIME_MS:
        return millis
    match = _RFC3339.fullmatch(raw)
    if match is not None:
        day, time, fraction, zone = match.groups()
        zone = "+00:00" if zone in ("Z", "z") else zone
        try:
            moment = datetime.fromisoformat(f"{day}T{time}{zone}")
        except ValueError:
            moment = None
        if moment is not None:
            millis = int(moment.timestamp()) * 1000 + int((fraction or "0").ljust(3, "0")[:3])
            if 0 <= millis <= MAX_TIME_MS:
                return millis
    raise invalid(f"'{name}' must be an RFC 3339 date-time with a time zone (2026-01-01T12:00:00Z) "
                  "or milliseconds since the Unix epoch.")


def search_words(raw: str) -> tuple[str, ...]:
    if len(raw) > MAX_QUERY_CHARS:
        raise invalid(f"'q' is at most {MAX_QUERY_CHARS} characters.")
    words = tuple(dict.fromkeys(word.casefold() for word in _WORD.findall(raw)))
    if not words:
        raise invalid("'q' must hold at least one word (letters or digits).")
    if len(words) > MAX_WORDS:
        raise invalid(f"'q' holds at most {MAX_WORDS} different words.")
    return words


class HistoryHandler(ApiHandler):
    """The query and the answer that every history endpoint shares."""

    def history_request(self) -> HistoryRequest:
        limit = self.int_argument("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        before = self._position("before")
        after = self._position("after")
        if before is not None and after is not None:
            raise invalid("Give at most one of 'before' and 'after'.")
        kinds = tuple(dict.fromkeys(
            kind.strip().lower() for value in self.get_query_arguments("kind") for kind in value.split(",")
            if kind.strip()))
        if len(kinds) > MAX_KINDS:
            raise invalid(f"'kind' names at most {MAX_KINDS} kinds.")
        sender = self.get_query_argument("sender", None)
        if sender is not None and not 1 <= len(sender) <= 300:
            raise invalid("'sender' must be a username or a user id.")
        since, until = (self.get_query_argument(name, None, strip=False) for name in ("since", "until"))
        since_ms = parse_time("since", since) if since is not None else None
        until_ms = parse_time("until", until) if until is not None else None
        if since_ms is not None and until_ms is not None and since_ms > until_ms:
            raise invalid("'since' must not be after 'until'.")
        q = self.get_query_argument("q", None)
        return HistoryRequest(limit=limit, before=before, after=after, kinds=kinds, sender=sender,
                              since_ms=since_ms, until_ms=until_ms,
                              words=search_words(q) if q is not None else ())

    def _position(self, name: str) -> int | None:
        """A cursor: a stream position (``after`` may be 0, the start of the stream)."""
        raw = self.get_query_argument(name, None, strip=False)
        if raw is None:
            return None
        return parse_whole_number(name, raw, 0 if name == "after" else 1, MAX_STREAM_POSITION)

    def send_history(self, history: History) -> None:
        self.send_json({"events": history.events, "next": history.next})


class RoomHistoryHandler(HistoryHandler):
    async def get(self, room_id: str) -> None:
        principal = await self.principal()
        request = self.history_request()
        self.send_history(await self.context.history.room(principal, room_id, request))
