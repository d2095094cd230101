"""Typed, frozen configuration loaded once at start-up.

Defaults come from ``config.yaml``; the environment overrides them:

* ``SKYBROKER_<SECTION>__<KEY>`` (``__`` separates nesting levels, e.g.
  ``SKYBROKER_KAFKA__LOCAL__PORT=19092``),
* ``DATABASE_URL`` for ``database.url`` and ``KAFKA_BOOTSTRAP_SERVERS`` for
  ``kafka.bootstrap_servers``.

Every field of the dataclasses below must be present in the YAML file; a
missing or malformed setting raises :class:`ConfigError` naming it. Secrets are
wrapped in :class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

ENV_PREFIX = "SKYBROKER_"
ENV_ALIASES = {
    "DATABASE_URL": ("database", "url"),
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
}
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the setting."""


class Secret:
    """A string that never shows itself in logs, reprs or API output."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    public_url: str | None
    default_num_per_page: int
    max_num_per_page: int
    # threads that run handlers' database work off the IOLoop; 0 runs it on the IOLoop (the old design,
    # kept as bench/api_load.py's baseline)
    handler_threads: int = 4
    # API server processes sharing the port (SO_REUSEPORT, as SkyPortal runs several Tornado processes);
    # 1 = the API in the main process only
    processes: int = 1
    # how often (ms) Python hands the interpreter lock between an API process's threads: a request waiting
    # on the database gets it back within this after its answer, even beside a CPU-bound bulk upload
    switch_interval_ms: float = 1.0
    # the web pages' sign-in cookie carries the Secure attribute (HTTPS only; browsers accept it on localhost)
    secure_cookies: bool = True

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class DatabaseConfig:
    url: Secret | None
    pool_size: int
    echo: bool
    # how often the worker folds the candidate count deltas and makes photometry's monthly partitions
    # (broker.runtime.worker.Maintenance), and how many months ahead of now it makes them
    maintenance_interval_s: float = 300.0
    partitions_ahead_months: int = 3
    # the planner's cost of a random page read, set on our connections (null: the server's setting)
    random_page_cost: float | None = 1.1

    @property
    def embedded(self) -> bool:
        return self.url is None


@dataclass(frozen=True)
class LocalKafkaConfig:
    enabled: bool
    version: str
    port: int
    controller_port: int
    heap: str


@dataclass(frozen=True)
class KafkaConfig:
    """The ``default`` cluster (streams that name no other); more clusters are managed through the API."""

    bootstrap_servers: str
    group_id: str
    local: LocalKafkaConfig
    # partitions of a topic skybroker creates (replay; a stream's altdata.partitions overrides it), and of
    # topics the local broker creates on first use: consumers in one group share a topic by its partitions
    topic_partitions: int = 4
    # ingest creates its streams' missing topics on this cluster (off: a managed cluster whose topics are made
    # elsewhere)
    create_topics: bool = True
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_ca_location: str | None = None


@dataclass(frozen=True)
class IngestConfig:
    batch_size: int
    batch_timeout_ms: int
    association_radius_arcsec: float
    crossmatch_recent_days: float
    refresh_interval_s: float
    stats_interval_s: float
    processes: int


@dataclass(frozen=True)
class LCOConfig:
    url: str
    archive_url: str
    timeout_s: float
    retries: int
    demo_token: Secret | None
    simulator_port: int


@dataclass(frozen=True)
class SEDMConfig:
    """The SEDM queue (facility_apis/sedm.py); url null: nothing is sent (SkyPortal's behaviour without
    app.sedm_endpoint), statuses arrive at /api/facility."""

    url: str | None
    timeout_s: float


@dataclass(frozen=True)
class FacilitiesConfig:
    """One section per facility adapter (facility_apis/registry.py): each adapter reads its own."""

    poll_interval_s: float
    lco: LCOConfig
    sedm: SEDMConfig = SEDMConfig(url=None, timeout_s=30.0)


@dataclass(frozen=True)
class GcnConfig:
    """Sky maps that notices point to by URL: fetched in the background when ``fetch_skymaps`` is on."""

    fetch_skymaps: bool = False
    fetch_interval_s: float = 30.0


@dataclass(frozen=True)
class PathsConfig:
    data_dir: Path
    cache_dir: Path


@dataclass(frozen=True)
class SecretsConfig:
    encryption_key: Secret | None


@dataclass(frozen=True)
class AdminConfig:
    username: str
    sitewide_group: str


@dataclass(frozen=True)
class LoggingConfig:
    level: str


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    database: DatabaseConfig
    kafka: KafkaConfig
    ingest: IngestConfig
    facilities: FacilitiesConfig
    gcn: GcnConfig
    paths: PathsConfig
    secrets: SecretsConfig
    admin: AdminConfig
    logging: LoggingConfig

    def replace(self, **sections: Any) -> "Config":
        """A copy with some sections replaced (``cfg.replace(server=...)``)."""
        return dataclasses.replace(self, **sections)


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert ``value`` (from YAML or an environment string) to ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("", "null", "none")):
            if type(None) in args:
                return None
            raise ConfigError(f"setting {name} must not be empty")
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, name)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"setting {name} must be a mapping, got {type(value).__name__}")
        return _build(annotation, value, name)
    if value is None:
        raise ConfigError(f"setting {name} must not be null")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"setting {name} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"setting {name} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"setting {name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"setting {name} must be a string")
        return str(value)
    if annotation is Path:
        return Path(os.path.expanduser(str(value)))
    if annotation is Secret:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"setting {name} must be a string")
        return Secret(str(value))
    raise ConfigError(f"setting {name} has an unsupported type {annotation!r}")


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting {prefix}.{key}".lstrip("."))
    for field in dataclasses.fields(cls):
        name = f"{prefix}.{field.name}".lstrip(".")
        if field.name not in data:
            raise ConfigError(f"missing setting {name}")
        kwargs[field.name] = _coerce(data[field.name], hints[field.name], name)
    return cls(**kwargs)


def _set_path(tree: dict, path: tuple[str, ...], value: Any, source: str) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError(f"{source} names unknown setting {'.'.join(path)}")
        node = child
    if path[-1] not in node:
        raise ConfigError(f"{source} names unknown setting {'.'.join(path)}")
    node[path[-1]] = value


def _validate(cfg: Config) -> None:
    for name, port in (
        ("server.port", cfg.server.port),
        ("kafka.local.port", cfg.kafka.local.port),
        ("kafka.local.controller_port", cfg.kafka.local.controller_port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(f"setting {name} must be a port number 0-65535, got {port}")
    if cfg.server.max_num_per_page < 1:
        raise ConfigError("setting server.max_num_per_page must be at least 1")
    if not 1 <= cfg.server.default_num_per_page <= cfg.server.max_num_per_page:
        raise ConfigError(
            "setting server.default_num_per_page must be between 1 and server.max_num_per_page"
        )
    for name, value in (("ingest.batch_size", cfg.ingest.batch_size),
                        ("ingest.batch_timeout_ms", cfg.ingest.batch_timeout_ms),
                        ("ingest.processes", cfg.ingest.processes),
                        ("kafka.topic_partitions", cfg.kafka.topic_partitions),
                        ("server.processes", cfg.server.processes)):
        if value < 1:
            raise ConfigError(f"setting {name} must be at least 1, got {value}")
    d = cfg.database
    if d.maintenance_interval_s <= 0 or d.partitions_ahead_months < 0:
        raise ConfigError("settings database.maintenance_interval_s must be positive and "
                          "database.partitions_ahead_months at least 0")
    if d.random_page_cost is not None and not 0 < d.random_page_cost <= 100:
        raise ConfigError("setting database.random_page_cost must be in (0, 100], or null")
    if not 0 < cfg.server.switch_interval_ms <= 1000:
        raise ConfigError("setting server.switch_interval_ms must be in (0, 1000]")
    if cfg.facilities.lco.retries < 1:
        raise ConfigError("setting facilities.lco.retries must be at least 1")
    if cfg.facilities.lco.timeout_s <= 0 or cfg.facilities.poll_interval_s <= 0:
        raise ConfigError("settings facilities.lco.timeout_s and facilities.poll_interval_s must be positive")
    if cfg.ingest.association_radius_arcsec <= 0:
        raise ConfigError("setting ingest.association_radius_arcsec must be positive")
    if cfg.logging.level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"setting logging.level must be one of {sorted(_LOG_LEVELS)}")
    k = cfg.kafka
    if k.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ConfigError("setting kafka.security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    if k.security_protocol.startswith("SASL"):
        if k.sasl_mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ConfigError("setting kafka.sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with "
                              f"{k.security_protocol} (OAuth clusters are added through /api/kafka_clusters)")
        if k.sasl_username is None or k.sasl_password is None:
            raise ConfigError("settings kafka.sasl_username and kafka.sasl_password are needed with "
                              f"{k.security_protocol}")
    if not k.group_id.strip():
        raise ConfigError("setting kafka.group_id must not be empty")
    if cfg.database.url is not None and not cfg.database.url.get().startswith("postgresql"):
        raise ConfigError("setting database.url must be a postgresql:// URL (skybroker needs PostgreSQL)")


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``config.yaml`` (or ``path``) and apply environment overrides."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get("SKYBROKER_CONFIG") or (
            "config.yaml" if Path("config.yaml").is_file() else REPO_CONFIG
        )
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of sections")

    for key, value in env.items():
        if key == "SKYBROKER_CONFIG":
            continue
        if key.startswith(ENV_PREFIX):
            parts = tuple(p.lower() for p in key[len(ENV_PREFIX):].split("__"))
            _set_path(raw, parts, value, f"environment variable {key}")
    for key, parts in ENV_ALIASES.items():
        if env.get(key):
            _set_path(raw, parts, env[key], f"environment variable {key}")

    cfg = _build(Config, raw, "")
    _validate(cfg)
    return cfg
