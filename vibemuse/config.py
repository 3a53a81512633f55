"""Configuration: defaults < config file < environment < command-line flags.

The config file is TOML (``<data_dir>/vibemuse.toml`` unless ``--config``
names another); it is written with the effective server name and port the
first time a server starts with an empty data folder. Each setting can also
come from an environment variable ``VIBEMUSE_<NAME>`` (upper case), and the
most used ones from flags of ``vibemuse serve``. marshmallow checks the merged
result, so a typo or an out-of-range value stops the server with a message
that names the setting.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from vibemuse.protocol.discovery import InvalidBaseUrl, normalize_base_url, server_name_host
from vibemuse.protocol.ids import is_valid_server_name

CONFIG_FILE_NAME = "vibemuse.toml"
ENV_PREFIX = "VIBEMUSE_"


DEFAULT_RATE_LIMITS: dict[str, tuple[float, float]] = {
    "speech": (10, 2.0),  # say, pose, ooc, emit, @wall (per user)
    "channel": (10, 2.0),  # channel messages
    "page": (10, 1.0),
    "typing": (20, 4.0),
    "moves": (10, 1.0),  # joining and leaving rooms and channels
    "actions": (20, 2.0),  # edits, deletions, reports, moderation, settings
    "queries": (30, 5.0),  # who, channel_who, channel_list, get_message, ping
    "http_write": (30, 3.0),  # POST, PUT, DELETE over HTTP (per user)
    # Passwords (login, password change; protocol.md 18.1, services/login_throttle.py)
    "login_address": (20, 0.5),  # attempts from one address, right or wrong
    "login_account_address": (5, 1 / 60),  # wrong passwords for one account from one address
    "login_failures_address": (30, 1 / 30),  # wrong passwords from one address, all accounts
    "login_account": (50, 0.1),  # wrong passwords for one account from all addresses
    "register_address": (5, 1 / 60),  # registrations per address
    "handshake_address": (30, 5.0),  # WebSocket handshakes per address
    "federation_origin": (20, 10.0),  # transactions received from one server (spec/v1/federation.md)
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class Config:
    server_name: str = "localhost"
    host: str = "127.0.0.1"
    port: int = 4201
    telnet_port: int = 0  # the telnet port for MUD clients, on ``host``; 0: no telnet
    data_dir: str = "data"
    database_url: str = ""  # empty: SQLite file <data_dir>/vibemuse.db
    signing_key_path: str = ""  # empty: <data_dir>/signing.key
    auto_migrate: bool = False
    key_validity_seconds: int = 24 * 3600
    default_room_name: str = "Town Square"
    default_room_description: str = "The heart of town, where every newcomer arrives."
    token_lifetime_seconds: int = 30 * 24 * 3600
    auth_timeout_seconds: float = 10.0
    heartbeat_interval_seconds: float = 25.0
    heartbeat_timeout_seconds: float = 60.0
    max_frame_bytes: int = 64 * 1024
    max_http_body_bytes: int = 256 * 1024
    max_connections_per_user: int = 10
    max_text_length: int = 4000
    outbound_queue_bytes: int = 512 * 1024
    idle_after_seconds: int = 600
    typing_timeout_seconds: float = 6.0
    typing_refresh_seconds: float = 3.0
    recent_messages_on_join: int = 20
    max_page_recipients: int = 10
    resume_max_events: int = 1000
    # Rooms with more online users than this get no presence frames about others (spec 14.8)
    presence_room_limit: int = 100
    edit_window_seconds: int = 15 * 60
    max_connections_per_address: int = 100
    max_connections: int = 0  # server-wide; 0: from the file-descriptor limit (see vibemuse/admission.py)
    allowed_origins: tuple[str, ...] = ()  # besides the server's own origin
    tls_certificate: str = ""  # PEM file; with tls_key, the server speaks HTTPS/WSS
    tls_key: str = ""
    # Token buckets per action: burst, refill per second (see realtime/ratelimit.py)
    rate_limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    spam_flood_count: int = 20
    spam_flood_window_seconds: float = 10.0
    spam_repeat_count: int = 4
    spam_repeat_window_seconds: float = 60.0
    spam_mute_seconds: int = 60
    spam_disconnect_after: int = 20
    password_min_length: int = 8
    retention_room_days: int = 90  # days events are kept before `vibemuse archive` moves them; 0: for ever
    retention_channel_days: int = 365
    retention_page_days: int = 0
    retention_system_days: int = 0
    database_threads: int = 4
    shutdown_grace_seconds: float = 5.0
    # Federation outbox (vibemuse/federation/sender.py): the longest wait between retries, events per transaction
    federation_retry_max_seconds: int = 300
    federation_batch_size: int = 50
    log_level: str = "info"
    log_format: str = "text"  # text: one line per record; json: one JSON object per line (vibemuse/logs.py)
    # GET /metrics: empty: loopback clients only; set: anyone sending "Authorization: Bearer <metrics_token>"
    metrics_token: str = ""
    # A folder for the metrics of several processes of one server (prometheus_client's multiprocess
    # mode; also PROMETHEUS_MULTIPROC_DIR); empty: each process serves its own
    metrics_dir: str = ""
    federation: bool = True  # off: /federation/v1/* (but keys) and the well-known answer 404, nothing is sent
    # Federation: name -> base URL of known servers (wins over discovery; environment: a JSON object)
    federation_peers: dict[str, str] = field(default_factory=dict)
    public_base_url: str = ""  # what /.well-known/vibemuse/server announces; empty: from host, port and TLS
    federation_discovery_cache_seconds: int = 3600
    # Connect to non-global addresses (loopback, private, link-local...) of servers found by
    # discovery (vibemuse/federation/addresses.py); the hosts of federation_peers always are
    federation_private_addresses: bool = False
    # how long a member's message (or leave, moderation) waits for an unreachable channel home before
    # it is dropped and the player told (spec/v1/federation.md 10.3)
    federation_channel_queue_seconds: int = 600
    # Several processes as one server (README, "Scale-out"): the Redis they share frames through
    # (redis://...; empty: one process, everything in it), its pub/sub channel (empty: vibemuse:<server_name>)
    bus_url: str = ""
    bus_channel: str = ""
    workers: int = 1  # processes `vibemuse serve` starts on this machine, sharing the port

    @property
    def resolved_bus_channel(self) -> str:
        return self.bus_channel or f"vibemuse:{self.server_name}"

    @property
    def resolved_public_base_url(self) -> str:
        """``public_base_url``, or ``http(s)://host[:port]`` of this server when it is empty; a
        wildcard ``host`` (``0.0.0.0``, ``::``) gives way to the host of ``server_name``."""
        if self.public_base_url:
            return self.public_base_url
        scheme = "https" if self.tls_certificate else "http"
        host = self.host if self.host not in ("", "0.0.0.0", "::") else server_name_host(self.server_name)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = "" if self.port == (443 if scheme == "https" else 80) else f":{self.port}"
        return f"{scheme}://{host}{port}"

    # Federation, receiving side (spec/v1/federation.md)
    federation_allow: tuple[str, ...] = ()  # empty: every server not denied
    federation_deny: tuple[str, ...] = ()
    federation_request_window_seconds: int = 300

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.data_dir).resolve() / "vibemuse.db")

    @property
    def resolved_signing_key_path(self) -> Path:
        return Path(self.signing_key_path) if self.signing_key_path else Path(self.data_dir) / "signing.key"


def _server_name_ok(value: str) -> bool:
    if not is_valid_server_name(value):
        raise ValidationError("must be a host name or IP literal, with an optional :port")
    return True


class ConfigSchema(Schema):
    """Types and ranges of every setting; unknown settings are errors."""

    class Meta:
        unknown = RAISE

    server_name = fields.String(validate=_server_name_ok)
    host = fields.String(validate=validate.Length(min=1))
    port = fields.Integer(validate=validate.Range(0, 65535))
    telnet_port = fields.Integer(validate=validate.Range(0, 65535))
    data_dir = fields.String(validate=validate.Length(min=1))
    database_url = fields.String()
    signing_key_path = fields.String()
    auto_migrate = fields.Boolean()
    key_validity_seconds = fields.Integer(validate=validate.Range(60, 7 * 24 * 3600))
    default_room_name = fields.String(validate=validate.Length(min=1, max=100))
    default_room_description = fields.String(validate=validate.Length(max=4000))
    token_lifetime_seconds = fields.Integer(validate=validate.Range(60, 10 * 365 * 24 * 3600))
    auth_timeout_seconds = fields.Float(validate=validate.Range(0.05, 600))
    heartbeat_interval_seconds = fields.Float(validate=validate.Range(0.05, 3600))
    heartbeat_timeout_seconds = fields.Float(validate=validate.Range(0.1, 7200))
    max_frame_bytes = fields.Integer(validate=validate.Range(1024, 16 * 1024 * 1024))
    max_http_body_bytes = fields.Integer(validate=validate.Range(1024, 64 * 1024 * 1024))
    max_connections_per_user = fields.Integer(validate=validate.Range(1, 1000))
    max_text_length = fields.Integer(validate=validate.Range(1, 60000))
    outbound_queue_bytes = fields.Integer(validate=validate.Range(16 * 1024, 256 * 1024 * 1024))
    idle_after_seconds = fields.Integer(validate=validate.Range(1, 7 * 24 * 3600))
    typing_timeout_seconds = fields.Float(validate=validate.Range(0.5, 120))
    typing_refresh_seconds = fields.Float(validate=validate.Range(0.1, 120))
    recent_messages_on_join = fields.Integer(validate=validate.Range(0, 500))
    max_page_recipients = fields.Integer(validate=validate.Range(1, 100))
    resume_max_events = fields.Integer(validate=validate.Range(1, 100_000))
    presence_room_limit = fields.Integer(validate=validate.Range(1, 10_000_000))
    edit_window_seconds = fields.Integer(validate=validate.Range(0, 30 * 24 * 3600))
    max_connections_per_address = fields.Integer(validate=validate.Range(1, 1_000_000))
    max_connections = fields.Integer(validate=validate.Range(0, 10_000_000))
    allowed_origins = fields.Method(deserialize="_origins")
    tls_certificate = fields.String()
    tls_key = fields.String()
    rate_limits = fields.Method(deserialize="_rates")
    spam_flood_count = fields.Integer(validate=validate.Range(2, 1_000_000))
    spam_flood_window_seconds = fields.Float(validate=validate.Range(0.1, 3600))
    spam_repeat_count = fields.Integer(validate=validate.Range(2, 1_000_000))
    spam_repeat_window_seconds = fields.Float(validate=validate.Range(0.1, 3600))
    spam_mute_seconds = fields.Integer(validate=validate.Range(1, 7 * 24 * 3600))
    spam_disconnect_after = fields.Integer(validate=validate.Range(1, 1_000_000))

    def _origins(self, value: Any) -> tuple[str, ...]:
        """A list, or (from the environment) a comma-separated string, of origins like https://muse.example.org."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
            raise ValidationError("must be a list of origins")
        return tuple(item.strip().rstrip("/") for item in items if item.strip())

    def _rates(self, value: Any) -> dict[str, tuple[float, float]]:
        """A table {action = [burst, per_second]} (a JSON object in the environment), merged over the defaults."""
        value = _table(value, "action", "[burst, per_second]")
        rates = dict(DEFAULT_RATE_LIMITS)
        for action, pair in value.items():
            if action not in DEFAULT_RATE_LIMITS:
                raise ValidationError(f"unknown action {action!r} (known: {', '.join(DEFAULT_RATE_LIMITS)})")
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(x, (int, float)) and x > 0 for x in pair)):
                raise ValidationError(f"{action} must be [burst, per_second], both above 0")
            rates[action] = (float(pair[0]), float(pair[1]))
        one, every = rates["login_account_address"], rates["login_account"]
        if every[0] < one[0] or every[1] < one[1]:
            raise ValidationError("login_account must be at least as large as login_account_address, in burst "
                                  "and in refill, or one address could lock an account out")
        return rates
    password_min_length = fields.Integer(validate=validate.Range(8, 1024))
    retention_room_days = fields.Integer(validate=validate.Range(0, 36500))
    retention_channel_days = fields.Integer(validate=validate.Range(0, 36500))
    retention_page_days = fields.Integer(validate=validate.Range(0, 36500))
    retention_system_days = fields.Integer(validate=validate.Range(0, 36500))
    database_threads = fields.Integer(validate=validate.Range(1, 64))
    shutdown_grace_seconds = fields.Float(validate=validate.Range(0, 300))
    federation_retry_max_seconds = fields.Integer(validate=validate.Range(1, 24 * 3600))
    federation_batch_size = fields.Integer(validate=validate.Range(1, 50))
    log_level = fields.String(validate=validate.OneOf(["debug", "info", "warning", "error"]))
    log_format = fields.String(validate=validate.OneOf(["text", "json"]))
    metrics_token = fields.Method(deserialize="_metrics_token")
    metrics_dir = fields.String()
    federation = fields.Boolean()
    federation_peers = fields.Method(deserialize="_peers")
    public_base_url = fields.Method(deserialize="_base_url")
    federation_discovery_cache_seconds = fields.Integer(validate=validate.Range(1, 7 * 24 * 3600))
    federation_private_addresses = fields.Boolean()

    def _peers(self, value: Any) -> dict[str, str]:
        """A table {server_name = base URL} (a JSON object in the environment)."""
        value = _table(value, "server name", "base URL")
        peers = {}
        for name, url in value.items():
            if not is_valid_server_name(name):
                raise ValidationError(f"{name!r} is not a server name (a host name or IP literal, optional :port)")
            peers[name] = self._base_url(url, name)
        return peers

    def _base_url(self, value: Any, label: str = "") -> str:
        try:
            return normalize_base_url(value)
        except InvalidBaseUrl as error:
            raise ValidationError(f"{label + ': ' if label else ''}{value!r} {error}") from None

    federation_allow = fields.Method(deserialize="_server_names")
    federation_deny = fields.Method(deserialize="_server_names")
    federation_request_window_seconds = fields.Integer(validate=validate.Range(10, 3600))
    federation_channel_queue_seconds = fields.Integer(validate=validate.Range(1, 7 * 86400))
    bus_url = fields.String(validate=validate.Regexp(r"^(|rediss?://.+|unix://.+)$",
                                                     error="must be a redis://, rediss:// or unix:// URL"))
    bus_channel = fields.String(validate=validate.Length(max=200))
    workers = fields.Integer(validate=validate.Range(1, 256))

    def _metrics_token(self, value: Any) -> str:
        """Empty, or a secret of 16 to 512 printable ASCII characters (it travels in a header)."""
        if not isinstance(value, str) or (value and not (16 <= len(value) <= 512 and value.isascii()
                                                         and value.isprintable() and " " not in value)):
            raise ValidationError("must be empty or 16 to 512 printable ASCII characters without spaces")
        return value

    def _server_names(self, value: Any) -> tuple[str, ...]:
        """A list, or (from the environment) a comma-separated string, of server names."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
            raise ValidationError("must be a list of server names")
        names = tuple(item.strip() for item in items if item.strip())
        bad = [name for name in names if not is_valid_server_name(name)]
        if bad:
            raise ValidationError(f"not server names: {', '.join(bad)}")
        return names

    @post_load
    def _make(self, values: dict[str, Any], **_: Any) -> Config:
        config = Config(**values)
        if config.heartbeat_timeout_seconds <= config.heartbeat_interval_seconds:
            raise ValidationError("must be longer than heartbeat_interval_seconds", "heartbeat_timeout_seconds")
        if config.workers > 1 and not config.bus_url:
            raise ValidationError("several processes need a bus: set bus_url (redis://...) too", "workers")
        if config.bus_url and not config.resolved_database_url.startswith("postgresql"):
            raise ValidationError("several processes share one PostgreSQL database, not SQLite: set database_url "
                                  "to postgresql://...", "bus_url")
        if config.workers > 1 and config.port == 0:
            raise ValidationError("several processes share one port: give it (not 0)", "workers")
        if bool(config.tls_certificate) != bool(config.tls_key):
            raise ValidationError("tls_certificate and tls_key go together", "tls_key")
        if not config.public_base_url and config.port != 0:
            try:
                normalize_base_url(config.resolved_public_base_url)
            except InvalidBaseUrl as error:
                raise ValidationError(f"cannot be made from host and port ({error}): set it", "public_base_url")
        return config


def _table(value: Any, key: str, item: str) -> dict[str, Any]:
    """A TOML table, or (from the environment) a string holding a JSON object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError(f"must be a JSON object of {key}: {item}") from None
    if not isinstance(value, dict):
        raise ValidationError(f"must be a table of {key} = {item}")
    return value


SETTINGS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Config))


def settings_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings given as ``VIBEMUSE_<NAME>`` variables (other variables are ignored)."""
    return {name: environ[ENV_PREFIX + name.upper()] for name in SETTINGS if ENV_PREFIX + name.upper() in environ}


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def config_file_path(flags: Mapping[str, Any], environ: Mapping[str, str]) -> Path:
    explicit = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        return Path(explicit)
    data_dir = flags.get("data_dir") or environ.get(ENV_PREFIX + "DATA_DIR") or Config.data_dir
    return Path(data_dir) / CONFIG_FILE_NAME


def load_config(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> tuple[Config, Path]:
    """Merge the layers and validate them. Returns the config and its file's path
    (which may not exist yet)."""
    environ = os.environ if environ is None else environ
    path = config_file_path(flags, environ)
    if flags.get("config") and not path.exists():
        raise ConfigError(f"{path}: no such config file")
    merged: dict[str, Any] = read_config_file(path) if path.exists() else {}
    merged.update(settings_from_env(environ))
    merged.update({name: value for name, value in flags.items() if name in SETTINGS and value is not None})
    try:
        return ConfigSchema().load(merged), path
    except ValidationError as error:
        problems = "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in sorted(error.messages.items()))
        raise ConfigError(f"invalid configuration ({problems})") from None


def write_initial_config(path: Path, config: Config) -> None:
    """Write a commented config file holding the identity of this server."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# VibeMUSE configuration, written on first start.",
        "# Every setting may also be set by VIBEMUSE_<NAME> or a flag of `vibemuse serve`.",
        "# The server name is part of every user id: do not change it once users exist.",
        f"server_name = {json.dumps(config.server_name)}",
        f"host = {json.dumps(config.host)}",
        f"port = {config.port}",
        "",
        "# Defaults of the other settings, for reference:",
    ]
    defaults = Config()
    for setting in dataclasses.fields(Config):
        if setting.name not in {"server_name", "host", "port", "data_dir"}:
            lines.append(f"# {setting.name} = {_toml(getattr(defaults, setting.name))}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _toml(value: Any) -> str:
    """A value as TOML (for the commented defaults of the first config file)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    return json.dumps(value)
