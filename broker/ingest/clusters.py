"""Kafka clusters that streams read from: the configuration's ``default`` one and those admins add.

A cluster is bootstrap servers plus a security set-up, turned into librdkafka properties in one place
(:meth:`ClusterSpec.client_config`):

* ``PLAINTEXT`` or ``SSL`` (a CA certificate, optionally a client certificate and key: mutual TLS);
* ``SASL_PLAINTEXT`` / ``SASL_SSL`` with ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (user name and
  password), or ``OAUTHBEARER`` with the OAuth 2 client-credentials flow (client id and secret, token
  endpoint, optional scope): librdkafka's own OIDC support, configured as the gcn-kafka package does.

Passwords, client secrets and private keys are stored encrypted with the server's key
(:class:`broker.followup.vault.Vault`, as facility credentials are) and never returned or logged; the API
shows which ones are set. ``preset: "gcn"`` fills in NASA's GCN Kafka (``kafka.gcn.nasa.gov``, its token
endpoint) from a client id and secret, as ``gcn_kafka.Consumer(client_id, client_secret)`` does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal
from broker.errors import BrokerError, Conflict, ValidationError
from broker.followup.vault import CredentialsUnreadable, Vault
from broker.runtime.config import Config

DEFAULT = "default"  # the configuration's cluster (kafka.bootstrap_servers); never stored
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SECRET_KEYS = ("sasl_password", "oauth_client_secret", "ssl_key_pem", "ssl_key_password")
SETTING_KEYS = ("sasl_username", "oauth_client_id", "oauth_token_endpoint_url", "oauth_scope", "ssl_ca_pem",
                "ssl_certificate_pem", "options")
NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

# NASA's GCN Kafka (gcn-kafka's defaults for a domain)
GCN_DOMAINS = ("gcn.nasa.gov", "test.gcn.nasa.gov", "dev.gcn.nasa.gov")

# GCN topics whose notices the "gcn" format parses (broker.sky.gcn): JSON notices and classic VOEvents
GCN_TOPICS = {
    "igwn.gwalert": "LVK alerts (JSON with a base64 multi-order sky map)",
    "gcn.notices.swift.bat.guano": "Swift BAT-GUANO (JSON)",
    "gcn.notices.einstein_probe.wxt.alert": "Einstein Probe WXT (JSON)",
    "gcn.notices.icecube.lvk_nu_track_search": "IceCube neutrino searches for LVK events (JSON)",
    "gcn.classic.voevent.LVC_PRELIMINARY": "LVK preliminary (VOEvent; sky map by URL)",
    "gcn.classic.voevent.LVC_INITIAL": "LVK initial (VOEvent)",
    "gcn.classic.voevent.LVC_UPDATE": "LVK update (VOEvent)",
    "gcn.classic.voevent.LVC_RETRACTION": "LVK retraction (VOEvent)",
    "gcn.classic.voevent.FERMI_GBM_FLT_POS": "Fermi GBM flight position (VOEvent)",
    "gcn.classic.voevent.FERMI_GBM_GND_POS": "Fermi GBM ground position (VOEvent)",
    "gcn.classic.voevent.FERMI_GBM_FIN_POS": "Fermi GBM final position (VOEvent; sky map by URL)",
    "gcn.classic.voevent.SWIFT_BAT_GRB_POS_ACK": "Swift BAT GRB position (VOEvent)",
    "gcn.classic.voevent.SWIFT_XRT_POSITION": "Swift XRT position (VOEvent)",
    "gcn.classic.voevent.AMON_ICECUBE_GOLD": "IceCube Gold track (VOEvent)",
    "gcn.classic.voevent.AMON_ICECUBE_BRONZE": "IceCube Bronze track (VOEvent)",
}

# client properties a cluster's "options" may not set: ours to manage (the commit discipline, identity,
# security) or secret (those go in the encrypted fields)
# (sasl.kerberos.kinit.cmd and plugin.library.paths would even run programs on our machine). TLS tuning that is
# not a file or a secret stays open.
_MANAGED = re.compile(r"^(bootstrap\.servers|group\.id|client\.id|security\.protocol|sasl\..*|https\..*|"
                      r"ssl\.(?!(endpoint\.identification\.algorithm|cipher\.suites|curves\.list|sigalgs\.list)$).*|"
                      r"ssl_.*|enable\.auto\.(commit|offset\.store)|isolation\.level|"
                      r".*(password|secret|jaas|key|cmd|path|location|file).*|.*_cb|on_.*|logger|opaque|debug)$")


@dataclass
class ClusterSpec:
    """Everything a consumer needs to reach one cluster, secrets included (never logged: see ``__repr__``)."""

    name: str
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    group_id: str | None = None  # None: the configuration's kafka.group_id
    settings: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    id: int | None = None  # None: the default cluster

    def __repr__(self) -> str:
        return (f"ClusterSpec(name={self.name!r}, bootstrap_servers={self.bootstrap_servers!r}, "
                f"security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r})")

    @property
    def is_default(self) -> bool:
        return self.id is None

    def consumer_group(self, default_group: str) -> str:
        return self.group_id or default_group

    def offsets_key(self, default_group: str) -> str:
        """The key of this cluster's rows in ``ingest_offsets``: topic names are only unique per cluster."""
        group = self.consumer_group(default_group)
        return group if self.is_default else f"{group}@cluster{self.id}"

    def fingerprint(self) -> str:
        """Changes whenever anything a consumer was made from changes (a running consumer is then remade)."""
        doc = [self.name, self.bootstrap_servers, self.security_protocol, self.sasl_mechanism, self.group_id,
               self.settings, self.secrets]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def client_config(self) -> dict:
        """librdkafka properties for this cluster's address and security (no group or commit settings)."""
        s, x = self.settings, self.secrets
        conf = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                conf.update({"sasl.oauthbearer.method": "oidc",
                             "sasl.oauthbearer.client.id": s["oauth_client_id"],
                             "sasl.oauthbearer.client.secret": x["oauth_client_secret"],
                             "sasl.oauthbearer.token.endpoint.url": s["oauth_token_endpoint_url"]})
                if s.get("oauth_scope"):
                    conf["sasl.oauthbearer.scope"] = s["oauth_scope"]
                if s["oauth_token_endpoint_url"].startswith("https:"):
                    conf["https.ca.location"] = _ca_bundle()
            else:
                conf.update({"sasl.username": s["sasl_username"], "sasl.password": x["sasl_password"]})
        if self.security_protocol.endswith("SSL"):
            if s.get("ssl_ca_pem"):
                conf["ssl.ca.pem"] = s["ssl_ca_pem"]
            elif s.get("ssl_ca_location"):
                conf["ssl.ca.location"] = s["ssl_ca_location"]
            else:  # the wheel's OpenSSL may not find the system's bundle (gcn-kafka does the same)
                conf["ssl.ca.location"] = _ca_bundle()
            if s.get("ssl_certificate_pem"):
                conf["ssl.certificate.pem"] = s["ssl_certificate_pem"]
                conf["ssl.key.pem"] = x["ssl_key_pem"]
                if x.get("ssl_key_password"):
                    conf["ssl.key.password"] = x["ssl_key_password"]
        conf.update(s.get("options") or {})
        return conf


def _ca_bundle() -> str:
    import certifi

    return certifi.where()


def default_cluster(cfg: Config) -> ClusterSpec:
    """The configuration's cluster (``kafka.*``), named ``default``."""
    k = cfg.kafka
    settings, secrets = {}, {}
    if k.sasl_username is not None:
        settings["sasl_username"] = k.sasl_username
    if k.sasl_password is not None:
        secrets["sasl_password"] = k.sasl_password.get()
    if k.ssl_ca_location is not None:
        settings["ssl_ca_location"] = k.ssl_ca_location
    return ClusterSpec(DEFAULT, k.bootstrap_servers, k.security_protocol, k.sasl_mechanism, None, settings, secrets)


def spec_of_public(row: models.KafkaCluster) -> ClusterSpec:
    """A stored cluster without its secrets."""
    return ClusterSpec(row.name, row.bootstrap_servers, row.security_protocol, row.sasl_mechanism, row.group_id,
                       dict(row.settings or {}), {}, row.id)


def spec_of(row: models.KafkaCluster, vault: Vault) -> ClusterSpec:
    """A stored cluster with its secrets decrypted (:class:`CredentialsUnreadable` if the key changed)."""
    spec = spec_of_public(row)
    spec.secrets = vault.decrypt(row._secrets)
    return spec


def load_clusters(session: Session, cfg: Config, vault: Vault) -> tuple[dict[str, ClusterSpec], dict[str, str]]:
    """Every cluster by name (the default one included), and the errors of those that cannot be used (their
    secrets cannot be decrypted) by name."""
    out, errors = {DEFAULT: default_cluster(cfg)}, {}
    for row in session.execute(sa.select(models.KafkaCluster).order_by(models.KafkaCluster.id)).scalars():
        try:
            out[row.name] = spec_of(row, vault)
        except CredentialsUnreadable as exc:
            errors[row.name] = exc.message
    return out, errors


class TopicError(BrokerError):
    """A topic could not be looked up or created on its cluster (503: the cluster's side). ``failed``: the
    topics it concerns (None: all that were asked for); ``created``: those made before it failed."""

    status = 503

    def __init__(self, message: str, failed: list[str] | None = None, created: list[str] | None = None):
        super().__init__(message)
        self.failed = failed
        self.created = created or []


def _admin(spec: ClusterSpec):
    from confluent_kafka.admin import AdminClient

    return AdminClient({**spec.client_config(), "logger": logging.getLogger("skybroker.kafka"), "log_level": 2})


def ensure_topic(spec: ClusterSpec, topic: str, partitions: int, timeout: float = 30.0) -> tuple[int, bool]:
    """Create ``topic`` on the cluster with ``partitions`` partitions (the broker's replication default) unless
    it exists; returns (its partitions, whether it was created now)."""
    created, have = _ensure(spec, {topic: partitions}, timeout)
    return (partitions, True) if created else (len(have[topic].partitions), False)


def ensure_topics(spec: ClusterSpec, wanted: dict[str, int], timeout: float = 30.0) -> list[str]:
    """Create the topics of ``wanted`` ({topic: partitions}) that the cluster lacks (one metadata request
    for all); returns those created now. A topic another client made meanwhile is fine. Any failure
    (refused, unreachable, timed out) is a :class:`TopicError` naming the cluster."""
    return _ensure(spec, wanted, timeout)[0]


def _ensure(spec: ClusterSpec, wanted: dict[str, int], timeout: float) -> tuple[list[str], dict]:
    """(topics created now, the cluster's topic metadata from before)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    try:
        admin = _admin(spec)
        # every topic's metadata: asking for one by name would make a broker that auto-creates topics create
        # it, with its own default partitions
        have = admin.list_topics(timeout=timeout).topics
        missing = sorted(t for t in wanted if t not in have or have[t].error is not None)
        if not missing:
            return [], have
        futures = admin.create_topics([NewTopic(t, num_partitions=wanted[t]) for t in missing],
                                      request_timeout=timeout)
        created, failed = [], {}
        for topic, fut in futures.items():  # each topic on its own: one refused does not hide the others
            try:
                fut.result(timeout)
                created.append(topic)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    failed[topic] = exc.args[0].str()
        if failed:
            raise TopicError(f"cannot create topics on Kafka cluster '{spec.name}': "
                             + "; ".join(f"{t}: {why}" for t, why in sorted(failed.items())),
                             failed=sorted(failed), created=sorted(created))
        if len(created) < len(missing):  # made meanwhile by another client: its partitions, as they are now
            have = admin.list_topics(timeout=timeout).topics
        return sorted(created), have
    except KafkaException as exc:
        raise TopicError(f"cannot create topics {sorted(wanted)} on Kafka cluster '{spec.name}': "
                         f"{exc.args[0].str()}") from None
    except TimeoutError:
        raise TopicError(f"cannot create topics {sorted(wanted)} on Kafka cluster '{spec.name}': "
                         f"no answer within {timeout:.0f} s") from None


# -- the API (our addition): admins manage clusters --------------------------------------------------------

def _check_url(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"Invalid field '{name}': must be an http(s) URL", field=name)


def _check_pem(settings: dict, secrets: dict) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    for key in ("ssl_ca_pem", "ssl_certificate_pem"):
        if settings.get(key):
            try:
                x509.load_pem_x509_certificates(settings[key].encode())
            except ValueError as exc:
                raise ValidationError(f"Invalid field '{key}': not PEM certificates ({exc})", field=key) from None
    if secrets.get("ssl_key_pem"):
        password = secrets.get("ssl_key_password")
        try:
            load_pem_private_key(secrets["ssl_key_pem"].encode(), password.encode() if password else None)
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"Invalid field 'ssl_key_pem': not a PEM private key that ssl_key_password "
                                  f"opens ({exc})", field="ssl_key_pem") from None


def _check_options(options: dict) -> None:
    from confluent_kafka import Consumer, KafkaException

    for key, value in options.items():
        if _MANAGED.match(key):
            raise ValidationError(f"Invalid field 'options.{key}': set by skybroker or secret; use the "
                                  "cluster's own fields", field=f"options.{key}")
        if not isinstance(value, (str, int, float, bool)):
            raise ValidationError(f"Invalid field 'options.{key}': must be a string, number or boolean",
                                  field=f"options.{key}")
    if options:  # librdkafka itself says whether each property and value exist
        try:
            Consumer({"group.id": "skybroker-check", **{k: str(v).lower() if isinstance(v, bool) else v
                                                         for k, v in options.items()}}).close()
        except (KafkaException, ValueError, TypeError) as exc:
            raise ValidationError(f"Invalid field 'options': {exc}", field="options") from None


def check_spec(spec: ClusterSpec) -> None:
    """Whole-cluster checks: every field its security set-up needs, and nothing it cannot use."""
    proto, mech, s, x = spec.security_protocol, spec.sasl_mechanism, spec.settings, spec.secrets
    if proto not in PROTOCOLS:
        raise ValidationError(f"Invalid field 'security_protocol': must be one of {list(PROTOCOLS)}",
                              field="security_protocol")
    if not spec.bootstrap_servers.strip():
        raise ValidationError("Invalid field 'bootstrap_servers': must not be empty", field="bootstrap_servers")

    def need(keys, store, why):
        for key in keys:
            if not store.get(key):
                raise ValidationError(f"Missing required field '{key}': {why}", field=key)

    if proto.startswith("SASL"):
        if mech not in MECHANISMS:
            raise ValidationError(f"Invalid field 'sasl_mechanism': {proto} needs one of {list(MECHANISMS)}",
                                  field="sasl_mechanism")
        if mech == "OAUTHBEARER":
            need(("oauth_client_id", "oauth_token_endpoint_url"), s, "OAUTHBEARER uses the client-credentials flow")
            need(("oauth_client_secret",), x, "OAUTHBEARER uses the client-credentials flow")
            _check_url(s["oauth_token_endpoint_url"], "oauth_token_endpoint_url")
        else:
            need(("sasl_username",), s, f"{mech} needs a user name and password")
            need(("sasl_password",), x, f"{mech} needs a user name and password")
    elif mech is not None:
        raise ValidationError(f"Invalid field 'sasl_mechanism': {proto} uses no SASL mechanism (use SASL_SSL or "
                              "SASL_PLAINTEXT)", field="sasl_mechanism")
    if not proto.endswith("SSL"):
        for key in ("ssl_ca_pem", "ssl_certificate_pem", "ssl_key_pem"):
            if s.get(key) or x.get(key):
                raise ValidationError(f"Invalid field '{key}': {proto} does not use TLS", field=key)
    if bool(s.get("ssl_certificate_pem")) != bool(x.get("ssl_key_pem")):
        missing = "ssl_key_pem" if s.get("ssl_certificate_pem") else "ssl_certificate_pem"
        raise ValidationError(f"Missing required field '{missing}': a client certificate and its key go together",
                              field=missing)
    _check_pem(s, x)
    _check_options(s.get("options") or {})


def _apply(spec: ClusterSpec, body: dict) -> None:
    """Copy ``body``'s fields onto ``spec`` (a null secret or setting removes it)."""
    for key in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "group_id"):
        if key in body:
            setattr(spec, key, body[key])
    for keys, store in ((SETTING_KEYS, spec.settings), (SECRET_KEYS, spec.secrets)):
        for key in keys:
            if key in body:
                if body[key] is None or body[key] == {}:
                    store.pop(key, None)
                else:
                    store[key] = body[key]


def _preset(body: dict) -> dict:
    """``preset: "gcn"``: NASA's GCN Kafka for a ``domain`` (default gcn.nasa.gov), as gcn-kafka sets it up."""
    if body.get("preset") is None:
        return body
    domain = body.get("domain") or GCN_DOMAINS[0]
    if domain not in GCN_DOMAINS:
        raise ValidationError(f"Invalid field 'domain': must be one of {list(GCN_DOMAINS)}", field="domain")
    filled = {"bootstrap_servers": f"kafka.{domain}", "security_protocol": "SASL_SSL",
              "sasl_mechanism": "OAUTHBEARER", "oauth_token_endpoint_url": f"https://auth.{domain}/oauth2/token"}
    return {**filled, **{k: v for k, v in body.items() if k not in ("preset", "domain")}}


def _check_name(session: Session, name: str, exclude: int | None = None) -> None:
    if not NAME.match(name) or name == DEFAULT:
        raise ValidationError("Invalid field 'name': letters, digits, '.', '_' and '-' (at most 100), and not "
                              f"'{DEFAULT}' (the configuration's cluster)", field="name")
    stmt = sa.select(models.KafkaCluster.id).where(models.KafkaCluster.name == name)
    if exclude is not None:
        stmt = stmt.where(models.KafkaCluster.id != exclude)
    if session.execute(stmt).first():
        raise Conflict(f"A Kafka cluster named '{name}' already exists", field="name")


def _store(row: models.KafkaCluster, spec: ClusterSpec, vault: Vault) -> None:
    row.bootstrap_servers, row.security_protocol = spec.bootstrap_servers, spec.security_protocol
    row.sasl_mechanism, row.group_id, row.settings = spec.sasl_mechanism, spec.group_id, dict(spec.settings)
    row._secrets = vault.encrypt(spec.secrets) if spec.secrets else None


def create_cluster(session: Session, principal: Principal, vault: Vault, body: dict) -> models.KafkaCluster:
    principal.require("System admin")
    body = _preset(body)
    _check_name(session, body["name"])
    if "bootstrap_servers" not in body:
        raise ValidationError("Missing required field 'bootstrap_servers'", field="bootstrap_servers")
    spec = ClusterSpec(body["name"], "", "PLAINTEXT")
    _apply(spec, body)
    check_spec(spec)
    row = models.KafkaCluster(name=spec.name)
    _store(row, spec, vault)
    session.add(row)
    session.flush()
    return row


def get_cluster(session: Session, principal: Principal, cluster_id: int) -> models.KafkaCluster:
    principal.require("System admin")
    row = session.get(models.KafkaCluster, cluster_id)
    if row is None:
        raise ValidationError(f"Could not retrieve Kafka cluster with ID {cluster_id}.")
    return row


def update_cluster(session: Session, principal: Principal, vault: Vault, cluster_id: int,
                   body: dict) -> models.KafkaCluster:
    """Change some fields; secrets not named stay as they are (a secret set to null is removed). Renaming
    a cluster that streams name is refused."""
    row = get_cluster(session, principal, cluster_id)
    body = _preset(body)
    if "name" in body and body["name"] != row.name:
        _check_name(session, body["name"], exclude=row.id)
        if users := streams_using(session, row.name):
            raise ValidationError(f"Kafka cluster '{row.name}' is used by stream(s) {users}: change their "
                                  "altdata.cluster first", field="name")
        row.name = body["name"]
    try:
        spec = spec_of(row, vault)
    except CredentialsUnreadable:  # the key changed: new secrets may replace the unreadable ones
        spec = spec_of_public(row)
    _apply(spec, body)
    check_spec(spec)
    _store(row, spec, vault)
    session.flush()
    return row


def streams_using(session: Session, name: str) -> list[int]:
    """Ids of the streams whose altdata names cluster ``name``."""
    return list(session.execute(sa.select(models.Stream.id).where(
        models.Stream.altdata["cluster"].astext == name).order_by(models.Stream.id)).scalars())


def delete_cluster(session: Session, principal: Principal, cluster_id: int) -> None:
    row = get_cluster(session, principal, cluster_id)
    if users := streams_using(session, row.name):
        raise ValidationError(f"Kafka cluster '{row.name}' is used by stream(s) {users}: delete them or move "
                              "them to another cluster first")
    session.delete(row)
    session.flush()


def cluster_to_dict(row: models.KafkaCluster | ClusterSpec, vault: Vault | None = None,
                    status: dict | None = None) -> dict:
    """What the API shows of a cluster: everything but its secrets, which are only named (``secrets_set``)."""
    if isinstance(row, ClusterSpec):
        spec, out = row, {"id": None, "name": row.name}
        names = sorted(k for k in SECRET_KEYS if row.secrets.get(k))
    else:
        spec = spec_of_public(row)
        out = {"id": row.id, "name": row.name, "created_at": row.created_at.isoformat(),
               "modified": row.modified.isoformat()}
        try:
            names = sorted(k for k, v in (vault.decrypt(row._secrets) if vault else {}).items() if v)
        except CredentialsUnreadable as exc:
            names, out["secrets_error"] = [], exc.message
    out.update({"bootstrap_servers": spec.bootstrap_servers, "security_protocol": spec.security_protocol,
                "sasl_mechanism": spec.sasl_mechanism, "group_id": spec.group_id,
                **{k: spec.settings.get(k) for k in SETTING_KEYS},
                "secrets_set": names, "status": status or {}})
    if out["options"] is None:
        out["options"] = {}
    return out


def live_window_s(cfg: Config) -> float:
    """How recent a consumer's report must be for it to count as live: three reports, at least 30 s (a dead
    consumer's row is also removed by its parent)."""
    return max(30.0, 3 * cfg.ingest.stats_interval_s)


def list_clusters(session: Session, principal: Principal, cfg: Config, vault: Vault) -> list[dict]:
    """Every cluster as the API shows it, the configuration's ``default`` first (id null), each with its
    consumers' status."""
    principal.require("System admin")
    status = cluster_status(session, live_window_s(cfg))
    out = [cluster_to_dict(default_cluster(cfg), status=status.get(DEFAULT))]
    rows = session.execute(sa.select(models.KafkaCluster).order_by(models.KafkaCluster.id)).scalars()
    return out + [cluster_to_dict(row, vault, status.get(row.name)) for row in rows]


def cluster_status(session: Session, stale_after_s: float) -> dict[str, dict]:
    """Per cluster name, from the live consumers' reports: how many consume it, its total lag, and its last
    error (the newest one a live consumer reports) with per-topic errors."""
    cutoff = models.utcnow() - timedelta(seconds=stale_after_s)
    out: dict[str, dict] = {}
    for r in session.execute(sa.select(models.IngestStatus).where(models.IngestStatus.updated_at >= cutoff)
                             .order_by(models.IngestStatus.consumer)).scalars():
        st = out.setdefault(r.cluster, {"consumers": 0, "lag": 0, "error": None, "error_at": None,
                                        "topic_errors": {}})
        st["consumers"] += 1
        st["lag"] += sum((r.lag or {}).values())
        if r.error and (st["error_at"] is None or (r.error_at and r.error_at.isoformat() > st["error_at"])):
            st["error"], st["error_at"] = r.error, r.error_at.isoformat() if r.error_at else None
        st["topic_errors"].update(r.topic_errors or {})
    return out
