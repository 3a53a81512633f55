"""The ``vibemuse`` command: serve, migrate, and look after users.

Every subcommand reads the same configuration (defaults < config file <
``VIBEMUSE_*`` environment < flags), so ``vibemuse user create`` run beside a
server with the same ``--data-dir`` talks to that server's database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from vibemuse import SOFTWARE_NAME, __version__
from vibemuse.config import Config, ConfigError, load_config, write_initial_config
from vibemuse.logs import configure_logging

log = logging.getLogger("vibemuse")

EPILOG = """\
configuration: defaults < config file (<data-dir>/vibemuse.toml or --config)
               < VIBEMUSE_<SETTING> environment variables < flags.
examples:
  vibemuse serve                          # ./data, SQLite, http://127.0.0.1:4201
  vibemuse serve --port 4203 --data-dir data2 --server-name muse2.localhost
  vibemuse serve --telnet-port 4202          # and telnet 127.0.0.1 4202 for MUD clients
  vibemuse user create wizard --admin     # asks for the password
  vibemuse keys rotate                    # new signing key; old one still verifies
  vibemuse migrate --database-url postgresql://postgres@127.0.0.1/vibemuse
  vibemuse archive --dry-run              # how many events are past their retention
  vibemuse archive --export old.jsonl     # archive them, also appending them to old.jsonl
  VIBEMUSE_ADMIN_TOKEN=vmt_... vibemuse admin online     # who is on the running server
  vibemuse admin kick alice --reason "cool off"          # close alice's sessions (she may come back)
  vibemuse admin ban bob --reason spam  /  unban bob     # no more logins for bob
  vibemuse admin role mira builder  /  room "Town Square"
"""


def _common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", metavar="FILE", help="config file (default: <data-dir>/vibemuse.toml)")
    group.add_argument("--data-dir", metavar="DIR", help="folder for the database, key and config (default: ./data)")
    group.add_argument("--database-url", metavar="URL",
                       help="SQLAlchemy URL (default: SQLite file <data-dir>/vibemuse.db)")
    group.add_argument("--server-name", metavar="NAME",
                       help="this server's name, part of every user id (default: localhost)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vibemuse",
        description=f"{SOFTWARE_NAME} {__version__}: real-time communication server for text game worlds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the server", description="Run the server until SIGTERM or SIGINT.")
    _common_options(serve)
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 4201)")
    serve.add_argument("--telnet-port", type=int, metavar="PORT",
                       help="also serve MUD clients (telnet) on this port (default: 0, no telnet)")
    serve.add_argument("--migrate", dest="auto_migrate", action="store_const", const=True,
                       help="upgrade an out-of-date database schema instead of refusing to start")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines as text (default) or JSON")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="run N processes sharing the port (needs bus_url and PostgreSQL; default: 1)")
    serve.add_argument("--bus-url", metavar="URL", help="the Redis the processes of this server share (redis://...)")

    migrate = commands.add_parser("migrate", help="upgrade the database schema to this version's")
    _common_options(migrate)

    keys = commands.add_parser("keys", help="manage the server's signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    rotate = key_commands.add_parser(
        "rotate", help="make a new signing key; the old one stays published under old_verify_keys",
        description="Make a new signing key. The old key's public half stays published under "
        "old_verify_keys, so events it signed keep verifying. A running server picks the new key "
        "up on SIGHUP or restart.")
    _common_options(rotate)

    archive = commands.add_parser(
        "archive", help="move events past their retention into the archive",
        description="Move events older than their retention (retention_room_days, retention_channel_days "
        "or a channel's own, retention_page_days, retention_system_days; 0 keeps them for ever) from the "
        "live history into the archived_events table, signatures intact, and print how many per scope. "
        "Archived events are no longer served by the history endpoints. Safe beside a running server.")
    _common_options(archive)
    archive.add_argument("--export", metavar="FILE.jsonl",
                         help="also append each archived event to FILE as one line of JSON")
    archive.add_argument("--dry-run", action="store_true", help="only count; change nothing, write nothing")

    user = commands.add_parser("user", help="manage user accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    create = user_commands.add_parser(
        "create", help="create an account", description="Create an account. The password is asked for "
        "on a terminal, or read as one line from standard input.")
    _common_options(create)
    create.add_argument("username")
    role = create.add_mutually_exclusive_group()
    role.add_argument("--admin", dest="role", action="store_const", const="admin", help="make an admin")
    role.add_argument("--builder", dest="role", action="store_const", const="builder", help="make a builder")
    _admin_parser(commands)
    return parser


def _admin_parser(commands: Any) -> None:
    from vibemuse.admin_cli import ACTIONS

    admin = commands.add_parser(
        "admin", help="what operators do on the running server: who is on, kick, role, ban, a room",
        description="Ask the running server, over its admin HTTP API, as an admin: the token of an admin "
        "account in --token or VIBEMUSE_ADMIN_TOKEN (from POST /api/auth/login). The server is the one "
        "the configuration names (public_base_url, or host and port), or --url.")
    _common_options(admin)
    admin.add_argument("--url", metavar="URL", help="the server's base URL (default: from the configuration)")
    admin.add_argument("--token", metavar="TOKEN", help="an admin's access token (default: $VIBEMUSE_ADMIN_TOKEN)")
    admin.add_argument("--json", action="store_true", help="print the server's JSON answer as it is")
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    for name, (help_text, arguments) in ACTIONS.items():
        action = actions.add_parser(name, help=help_text, description=help_text)
        for argument, options in arguments:
            action.add_argument(argument, **options)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {key: value for key, value in vars(args).items() if value is not None}
    try:
        config, config_path = load_config(flags)
    except ConfigError as error:
        print(f"vibemuse: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    handler = {"serve": _serve, "migrate": _migrate, "user": _user, "keys": _keys, "archive": _archive,
               "admin": _admin}[args.command]
    try:
        return handler(args, config, config_path)
    except (ConfigError, OSError) as error:
        print(f"vibemuse: {error}", file=sys.stderr)
        return 1


def _prepare_data_dir(config: Config, config_path: Path) -> None:
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        write_initial_config(config_path, config)
        log.info("wrote %s", config_path)


def _serve(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    from vibemuse.app import VibeMuseServer
    from vibemuse.storage import SchemaOutOfDate

    _prepare_data_dir(config, config_path)
    if config.metrics_dir:  # before the server's metrics exist (vibemuse/metrics.py)
        from vibemuse.metrics import enable_multiprocess

        enable_multiprocess(config.metrics_dir)

    async def run() -> int:
        try:
            server = await VibeMuseServer.create(config)
        except SchemaOutOfDate as error:
            print(f"vibemuse: {error}", file=sys.stderr)
            return 3
        port = server.listen()
        # Everything made so far lives as long as the server: keep the garbage
        # collector from walking it again and again under load.
        gc.collect()
        gc.freeze()
        scheme = "https" if config.tls_certificate else "http"
        log.info("%s %s serving %s on %s://%s:%d (ws: /api/ws), at most %d connections",
                 SOFTWARE_NAME, __version__, config.server_name, scheme, config.host, port,
                 server.context.config.max_connections)
        if config.telnet_port:
            log.info("telnet for MUD clients on %s port %d", config.host, config.telnet_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, server.reload_signing_keys)
        await stop.wait()
        log.info("shutting down")
        await server.shutdown()
        return 0

    if config.workers > 1:
        return _serve_workers(config, lambda: asyncio.run(run()))
    return asyncio.run(run())


def _serve_workers(config: Config, run: Callable[[], int]) -> int:
    """Several processes (``vibemuse/workers.py``): what they must not each do at once is done first."""
    from vibemuse.federation.server_keys import load_or_create_signing_keys
    from vibemuse.storage import SchemaOutOfDate, create_database_engine, ensure_schema
    from vibemuse.workers import supervise

    load_or_create_signing_keys(str(config.resolved_signing_key_path))  # one key, made once
    engine = create_database_engine(config.resolved_database_url, pool_size=1)
    try:
        ensure_schema(engine, auto_migrate=config.auto_migrate)  # migrated once, not by N racing workers
    except SchemaOutOfDate as error:
        print(f"vibemuse: {error}", file=sys.stderr)
        return 3
    finally:
        engine.dispose()  # nothing open crosses the fork
    log.info("starting %d worker processes on port %d", config.workers, config.port)
    return supervise(config.workers, lambda index: run())


def _migrate(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    from vibemuse.storage import create_database_engine, schema_status, upgrade

    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    engine = create_database_engine(config.resolved_database_url, pool_size=1)
    before = schema_status(engine)
    upgrade(engine)
    after = schema_status(engine)
    engine.dispose()
    print(f"database schema: {before.current or 'empty'} -> {after.current}")
    return 0


def _archive(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    from vibemuse.clock import system_clock_ms
    from vibemuse.storage import create_database_engine, schema_status
    from vibemuse.storage.history_txns import RetentionPolicy, archive_expired

    engine = create_database_engine(config.resolved_database_url, pool_size=1)
    try:
        status = schema_status(engine)
        if status.current is None:
            print(f"vibemuse: no VibeMUSE database at {config.resolved_database_url}", file=sys.stderr)
            return 1
        if not status.up_to_date:
            print(f"vibemuse: the database schema is at revision {status.current}, this version needs "
                  f"{status.head}: run `vibemuse migrate` first", file=sys.stderr)
            return 3
        policy = RetentionPolicy(config.retention_room_days, config.retention_channel_days,
                                 config.retention_page_days, config.retention_system_days)
        exporting = bool(args.export) and not args.dry_run
        with open(args.export, "a", encoding="utf-8") if exporting else contextlib.nullcontext() as export:
            report = archive_expired(engine, policy, system_clock_ms(), export=export, dry_run=args.dry_run)
    finally:
        engine.dispose()
    for scope, count in report.counts.items():
        print(f"{scope}: {count}")
    verb = "would archive" if args.dry_run else "archived"
    print(f"{verb} {report.total} events" + (f", appended to {args.export}" if exporting else ""))
    return 0


def _keys(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    from vibemuse.clock import system_clock_ms
    from vibemuse.federation.server_keys import load_or_create_signing_keys, rotate_signing_key

    path = str(config.resolved_signing_key_path)
    before = load_or_create_signing_keys(path)
    after = rotate_signing_key(path, system_clock_ms())
    print(f"signing key rotated: {before.current.key_id} -> {after.current.key_id} "
          f"({len(after.old_verify_keys)} old key(s) published)")
    return 0


def _admin(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    import os

    from vibemuse.admin_cli import AdminClient, AdminError, run_action

    token = args.token or os.environ.get("VIBEMUSE_ADMIN_TOKEN", "")
    if not token:
        raise ConfigError("an admin's access token is needed: --token or VIBEMUSE_ADMIN_TOKEN")
    client = AdminClient(args.url or config.resolved_public_base_url, token)
    try:
        for line in run_action(client, args):
            print(line)
    except AdminError as error:
        print(f"vibemuse: {error}", file=sys.stderr)
        return 1
    return 0


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {username}: ")
        if first != getpass.getpass("again: "):
            raise ConfigError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _user(args: argparse.Namespace, config: Config, config_path: Path) -> int:
    from vibemuse.app import VibeMuseServer
    from vibemuse.protocol.errors import ProtocolError

    _prepare_data_dir(config, config_path)
    password = _read_password(args.username)

    async def create() -> Any:
        server = await VibeMuseServer.create(config)
        try:
            return await server.context.accounts.create_user(args.username, password, role=args.role or "player")
        finally:
            await server.shutdown()

    try:
        user = asyncio.run(create())
    except ProtocolError as error:
        print(f"vibemuse: {error.message} ({error.code})", file=sys.stderr)
        return 1
    print(f"created {user.role} {user.user_id}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
