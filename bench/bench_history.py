#!/usr/bin/env python
"""History query speed on a database of 1,000,000 events, SQLite and PostgreSQL.

Usage: python bench/bench_history.py [--events N] [--runs N] [--engines sqlite,postgresql]
                                     [--pg-url URL] [--dir DIR]

Fills a fresh database with N events straight into the tables (no signing, no
server: bulk INSERT on SQLite, COPY on PostgreSQL), with a realistic mix:
rooms (say, pose, semipose, ooc, emit, arrivals and departures; a few busy
rooms, many quiet ones), channels (messages and joins), pages (with their
recipients; each user pages the same 5 friends, a fifth of pages go to a
third person too), receipts and announcements; bodies of 3-30 words drawn from a
Zipf-distributed vocabulary; ~10% of events from one chatty sender; one
event every ~35 s over ~400 days. Event JSON has the size and shape of real
signed events (hashes and signatures are random, not verifiable).

Then measures, through ``Storage.history`` (the call the HTTP handlers make:
worker thread, one query, JSON decoding), ``--runs`` times each with random
rooms/channels/cursors, the p50 and p95 latency of:

- room and channel pages of 50: the latest, and deep (``before`` = a random
  position in the older half of that room's history);
- a page conversation between two users;
- a filtered page (kind=pose + sender=the chatty user) and a time range
  (one day, somewhere in the past) in a room;
- search: the most frequent word (in ~2 events of 3, like "the"), a common
  word (~1 event of 12) and a rare word (25 events in all), in a room and on
  a channel.

SQLite: a file in ``--dir`` (default: a temporary folder, removed after).
PostgreSQL: a schema of its own in the database of ``--pg-url`` (default the
test database), dropped afterwards. Prints a table per engine and one JSON
line per engine.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import import_module
import io
import json
import os
import platform
import random
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url  # noqa: E402

from vibemuse.storage import Storage, create_database_engine, ensure_schema  # noqa: E402
from vibemuse.storage.history_txns import HistoryQuery  # noqa: E402

SERVER = "bench.localhost"
ROOMS, CHANNELS, USERS = 200, 50, 2000
CHATTY = f"@chatty:{SERVER}"
RARE_WORD, RARE_COUNT = "quixotic", 25
START_MS = 1_735_689_600_000  # 2025-01-01
STEP_MS = 35_000  # average gap between events
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "an", "el", "or", "ul", "bri", "dra", "fen",
             "gor", "hal", "jin", "kes", "lum", "mar", "nix", "pel", "quo", "ras", "sel", "tor", "ven", "wyl"]


def b64(n: int) -> str:
    return secrets.token_urlsafe(n)[:n]


class Fill:
    """The synthetic history: rows for ``events`` and ``event_recipients``."""

    def __init__(self, count: int, seed: int = 7):
        rng = random.Random(seed)
        self.rng = rng
        self.rooms = [f"!{''.join(rng.choices('ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789', k=16))}"
                      f":{SERVER}" for _ in range(ROOMS)]
        self.channels = [f"#chan{i}:{SERVER}" for i in range(CHANNELS)]
        self.users = [f"@user{i}:{SERVER}" for i in range(USERS)]
        words = list(dict.fromkeys("".join(rng.choices(SYLLABLES, k=rng.randint(1, 3))) for _ in range(12000)))
        words = [w for w in words if w != RARE_WORD][:5000]
        self.vocabulary = words
        self.word_weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf
        self.top_word = words[0]  # in about 2 events of 3 (like "the")
        self.common_word = words[19]  # in about 1 event of 12
        room_weights = [1 / (rank + 1) ** 1.1 for rank in range(ROOMS)]
        chan_weights = [1 / (rank + 1) for rank in range(CHANNELS)]
        self.events: list[tuple] = []
        self.recipients: list[tuple[str, int]] = []
        self.room_positions: dict[str, list[int]] = {room: [] for room in self.rooms}
        self.channel_positions: dict[str, list[int]] = {chan: [] for chan in self.channels}
        self.pairs: list[tuple[str, str]] = []
        self.friends: dict[str, list[str]] = {}
        rare = set(rng.sample(range(1, count + 1), RARE_COUNT))
        ts = START_MS
        bodies = self._bodies(count)
        for position in range(1, count + 1):
            ts += rng.randint(1, 2 * STEP_MS)
            sender = CHATTY if rng.random() < 0.10 else rng.choice(self.users)
            body = bodies[position - 1]
            if position in rare:
                body = body + " " + RARE_WORD
            roll = rng.random()
            room = channel = None
            if roll < 0.60:
                room = rng.choices(self.rooms, room_weights)[0]
                self.room_positions[room].append(position)
                kind_roll = rng.random()
                if kind_roll < 0.15:
                    event_type, kind, body = "vm.room.member", rng.choice(("join", "leave")), None
                else:
                    event_type = "vm.room.message"
                    kind = rng.choices(("say", "pose", "semipose", "ooc", "emit"), (50, 25, 5, 15, 5))[0]
            elif roll < 0.85:
                channel = rng.choices(self.channels, chan_weights)[0]
                self.channel_positions[channel].append(position)
                if rng.random() < 0.05:
                    event_type, kind, body = "vm.channel.member", rng.choice(("join", "leave")), None
                else:
                    event_type, kind = "vm.channel.message", "channel"
            elif roll < 0.95:
                event_type, kind = "vm.page", "page"
                other = rng.choice(self._friends(sender))  # one pages the same few people
                self.recipients.append((other, position))
                if rng.random() < 0.2:  # a group page
                    third = rng.choice(self.users)
                    if third not in (other, sender):
                        self.recipients.append((third, position))
                self.pairs.append((sender, other))
            elif roll < 0.99:
                event_type, kind, body = "vm.receipt", "delivered", None
                self.recipients.append((rng.choice(self.users), position))
            else:
                event_type, kind = "vm.system", "wall"
            self.events.append(self._row(position, event_type, sender, room, channel, kind, ts, body))
        self.first_ts, self.last_ts = START_MS, ts

    def _friends(self, user: str) -> list[str]:
        friends = self.friends.get(user)
        if friends is None:
            friends = self.friends[user] = [f for f in self.rng.sample(self.users, 6) if f != user][:5]
        return friends

    def _bodies(self, count: int) -> list[str]:
        rng = self.rng
        lengths = [rng.randint(3, 30) for _ in range(count)]
        words = rng.choices(self.vocabulary, self.word_weights, k=sum(lengths))
        bodies, at = [], 0
        for length in lengths:
            bodies.append(" ".join(words[at:at + length]))
            at += length
        return bodies

    def _row(self, position: int, event_type: str, sender: str, room: str | None, channel: str | None,
             kind: str, ts: int, body: str | None) -> tuple:
        name = sender[1:].split(":")[0]
        content: dict[str, Any] = {"kind": kind}
        if body is not None:
            content.update(body=body, speaker=name, rendered=f'{name} says, "{body}"',
                           rendered_self=f'You say, "{body}"')
        else:
            content = {"membership": kind, "speaker": name, "rendered": f"{name} has arrived."}
        event: dict[str, Any] = {"content": content, "event_id": "$" + b64(43), "hashes": {"sha256": b64(43)},
                                 "origin": SERVER, "origin_server_ts": ts, "sender": sender,
                                 "signatures": {SERVER: {"ed25519:1_bnch": b64(86)}}, "type": event_type}
        if room:
            event["room_id"] = room
        if channel:
            event["channel_id"] = channel
        return (position, event["event_id"], event_type, sender, room, channel, kind, ts,
                json.dumps(event, separators=(",", ":"), sort_keys=True), body)


COLUMNS = ("stream_position", "event_id", "event_type", "sender", "room_id", "channel_id", "kind",
           "origin_server_ts", "event_json", "body")


def fill_sqlite(path: str, fill: Fill) -> None:
    triggers = import_module("vibemuse.storage.migrations.versions.0004_history").SQLITE_FTS[1:]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    for name in ("events_fts_insert", "events_fts_delete", "events_fts_update"):
        db.execute(f"DROP TRIGGER {name}")
    db.executemany(f"INSERT INTO events ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})",
                   fill.events)
    db.executemany("INSERT INTO event_recipients (user_id, stream_position) VALUES (?, ?)", fill.recipients)
    db.execute("INSERT INTO events_fts(events_fts) VALUES ('rebuild')")
    for statement in triggers:
        db.execute(statement)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_postgresql(url: str, fill: Fill) -> None:
    engine = create_database_engine(url, pool_size=1)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
                       "AND schemaname = current_schema() AND indexname NOT IN ('events_pkey', 'events_event_id_key')")
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute("ALTER TABLE events DROP CONSTRAINT IF EXISTS events_event_id_key")
        buffer = io.StringIO()
        for row in fill.events:
            buffer.write("\t".join(_copy_value(value) for value in row) + "\n")
        buffer.seek(0)
        cursor.copy_expert(f"COPY events ({','.join(COLUMNS)}) FROM STDIN", buffer)
        buffer = io.StringIO("".join(f"{user}\t{position}\n" for user, position in fill.recipients))
        cursor.copy_expert("COPY event_recipients (user_id, stream_position) FROM STDIN", buffer)
        cursor.execute("ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (event_id)")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SELECT setval(pg_get_serial_sequence('events', 'stream_position'), %s)",
                       (len(fill.events),))
        raw.commit()
        raw.driver_connection.autocommit = True
        cursor = raw.driver_connection.cursor()
        cursor.execute("VACUUM ANALYZE events")
        cursor.execute("VACUUM ANALYZE event_recipients")
    finally:
        raw.close()
        engine.dispose()


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def cases(fill: Fill, rng: random.Random) -> dict[str, Callable[[], HistoryQuery]]:
    weighted_rooms = [room for room in fill.rooms for _ in range(max(1, len(fill.room_positions[room]) // 1000))]
    busy_channels = [chan for chan in fill.channels for _ in range(max(1, len(fill.channel_positions[chan]) // 1000))]

    def deep(positions: list[int]) -> int:
        if len(positions) < 100:
            return positions[-1] if positions else 1
        return positions[rng.randrange(50, len(positions) // 2 + 51)]  # a full page is older than it

    def day() -> tuple[int, int]:
        start = rng.randint(fill.first_ts, fill.last_ts - 86_400_000)
        return start, start + 86_400_000

    def room_query(**extra: Any) -> HistoryQuery:
        return HistoryQuery(limit=50, room_id=rng.choice(weighted_rooms), **extra)

    def room_deep() -> HistoryQuery:
        room = rng.choice(weighted_rooms)
        return HistoryQuery(limit=50, room_id=room, before=deep(fill.room_positions[room]))

    def channel_deep() -> HistoryQuery:
        chan = rng.choice(busy_channels)
        return HistoryQuery(limit=50, channel_id=chan, before=deep(fill.channel_positions[chan]))

    def time_range() -> HistoryQuery:
        since, until = day()
        return room_query(since_ms=since, until_ms=until)

    return {
        "room latest": lambda: room_query(),
        "room deep (before)": room_deep,
        "channel latest": lambda: HistoryQuery(limit=50, channel_id=rng.choice(busy_channels)),
        "channel deep (before)": channel_deep,
        "pages of a pair": lambda: HistoryQuery(limit=50, conversation=rng.choice(fill.pairs)),
        "room kind=pose + sender": lambda: room_query(kinds=("pose",), sender=CHATTY),
        "room one-day range": time_range,
        "room search top word": lambda: room_query(words=(fill.top_word,)),
        "room search common word": lambda: room_query(words=(fill.common_word,)),
        "room search rare word": lambda: room_query(words=(RARE_WORD,)),
        "channel search common word": lambda: HistoryQuery(limit=50, channel_id=rng.choice(busy_channels),
                                                           words=(fill.common_word,)),
        "channel search rare word": lambda: HistoryQuery(limit=50, channel_id=rng.choice(busy_channels),
                                                         words=(RARE_WORD,)),
    }


async def measure(storage: Storage, make: Callable[[], HistoryQuery], runs: int) -> tuple[float, float, float]:
    for _ in range(5):  # warm up
        await storage.history(make())
    times, sizes = [], []
    for _ in range(runs):
        query = make()
        start = time.perf_counter()
        page = await storage.history(query)
        times.append((time.perf_counter() - start) * 1000)
        sizes.append(len(page.events))
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], statistics.mean(sizes)


def run_engine(name: str, url: str, fill: Fill, runs: int) -> dict[str, Any]:
    engine = create_database_engine(url, pool_size=2)
    ensure_schema(engine, auto_migrate=False)
    engine.dispose()
    started = time.perf_counter()
    if name == "sqlite":
        fill_sqlite(make_url(url).database, fill)
    else:
        fill_postgresql(url, fill)
    fill_seconds = time.perf_counter() - started
    engine = create_database_engine(url, pool_size=2)
    storage = Storage(engine, threads=1)
    rng = random.Random(11)
    results = {}
    try:
        for label, make in cases(fill, rng).items():
            results[label] = asyncio.run(measure(storage, make, runs))
    finally:
        storage.close()
    print(f"\n{name}: {len(fill.events):,} events filled in {fill_seconds:.0f} s; {runs} runs per query")
    print(f"{'query':<30}{'p50 ms':>9}{'p95 ms':>9}{'events':>8}")
    for label, (p50, p95, size) in results.items():
        print(f"{label:<30}{p50:>9.2f}{p95:>9.2f}{size:>8.1f}")
    summary = {"bench": "history", "engine": name, "events": len(fill.events), "runs": runs,
               "fill_s": round(fill_seconds), "python": platform.python_version(), "cpus": os.cpu_count(),
               "p50_ms": {label: round(r[0], 2) for label, r in results.items()},
               "p95_ms": {label: round(r[1], 2) for label, r in results.items()}}
    print(json.dumps(summary))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="measurements per query")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("VIBEMUSE_TEST_DATABASE_URL",
                                                          "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--dir", help="folder for the SQLite file (default: a temporary one, removed after)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the databases (the PostgreSQL schema is printed) to look at query plans")
    args = parser.parse_args()
    started = time.perf_counter()
    fill = Fill(args.events)
    print(f"generated {len(fill.events):,} events, {len(fill.recipients):,} recipients in "
          f"{time.perf_counter() - started:.0f} s; top word {fill.top_word!r}, common word {fill.common_word!r}, rare word {RARE_WORD!r}")
    for name in args.engines.split(","):
        if name == "sqlite":
            folder = args.dir or tempfile.mkdtemp(prefix="bench_history_")
            try:
                run_engine(name, f"sqlite:///{folder}/history.db", fill, args.runs)
            finally:
                if not args.dir and not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)
        elif name == "postgresql":
            schema = f"bench_history_{os.getpid()}"
            print(f"PostgreSQL schema {schema}")
            admin = create_database_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
            separator = "&" if "?" in args.pg_url else "?"
            try:
                run_engine(name, f"{args.pg_url}{separator}options=-csearch_path%3D{schema}", fill, args.runs)
            finally:
                if not args.keep:
                    with admin.connect() as connection:
                        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()
        else:
            parser.error(f"unknown engine {name!r}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
