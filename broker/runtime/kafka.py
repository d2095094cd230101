"""A single-node Apache Kafka 4.x (KRaft) broker for development and tests.

``LocalKafka`` fetches ``org.apache.kafka:kafka_2.13`` and its runtime
dependencies from Maven Central with ``mvn`` (cached outside the repository),
formats a KRaft storage directory, starts a combined broker + controller on
127.0.0.1, waits until it answers, and stops it cleanly. It needs Java 17+ and
Maven, nothing else.
"""

from __future__ import annotations

import base64
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RUNTIME_DIR = Path(__file__).resolve().parent / "kafka_runtime"


class KafkaServiceError(RuntimeError):
    pass


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaServiceError(
            f"'{tool}' not found on PATH: the local Kafka broker needs Java 17+ and Maven "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven)"
        )
    return path


def fetch_kafka(version: str, cache_dir: Path, progress=print) -> Path:
    """Resolve Kafka ``version`` into ``cache_dir/kafka-<version>/libs`` (once); return that folder."""
    libs = Path(cache_dir) / f"kafka-{version}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = _require("mvn")
    work = libs.parent / "pom"
    work.mkdir(parents=True, exist_ok=True)
    pom = (RUNTIME_DIR / "pom.xml").read_text().replace("@KAFKA_VERSION@", version)
    (work / "pom.xml").write_text(pom)
    tmp = libs.parent / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    progress(f"Fetching Apache Kafka {version} from Maven Central (first run only, ~45 MB)...")
    cmd = [mvn, "-B", "-q", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaServiceError(f"mvn could not fetch Kafka {version}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    jars = list(tmp.glob("kafka_2.13-*.jar"))
    if not jars:
        raise KafkaServiceError(f"mvn finished but no kafka_2.13 jar is in {tmp}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(version)
    progress(f"Kafka {version} cached in {libs}")
    return libs


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
    """Block until something listens on ``host:port``; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not _port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True)
class ClientListener:
    """A secured listener for clients, beside the PLAINTEXT one (which stays for the broker itself and for
    admin tools): TLS, SASL, or SASL over TLS, as other people's clusters serve Kafka.

    ``keystore_pem``: a PEM file with the broker's private key (PKCS#8, unencrypted) and its certificate
    chain, for ``SSL``/``SASL_SSL``. ``users``: name → password, for PLAIN (in the listener's JAAS
    configuration) and SCRAM (written into the metadata log when the storage is formatted). OAUTHBEARER
    takes unsecured JWTs (``alg: none``, Kafka's default validator), as Kafka's own tests do."""

    port: int
    protocol: str = "SASL_SSL"  # SSL | SASL_PLAINTEXT | SASL_SSL
    mechanism: str | None = "SCRAM-SHA-512"
    keystore_pem: Path | None = None
    users: dict = field(default_factory=dict)
    name: str = "SECURE"

    def __post_init__(self):
        if self.protocol not in ("SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError(f"listener protocol must be SSL, SASL_PLAINTEXT or SASL_SSL, not {self.protocol!r}")
        if self.protocol.startswith("SASL") and self.mechanism not in SASL_MECHANISMS:
            raise ValueError(f"listener mechanism must be one of {SASL_MECHANISMS}, not {self.mechanism!r}")
        if self.protocol.endswith("SSL") and self.keystore_pem is None:
            raise ValueError("an SSL listener needs keystore_pem")

    def properties(self) -> dict[str, str]:
        prefix = f"listener.name.{self.name.lower()}."
        props = {}
        if self.keystore_pem is not None:
            props[prefix + "ssl.keystore.type"] = "PEM"
            props[prefix + "ssl.keystore.location"] = str(self.keystore_pem)
        if self.protocol.startswith("SASL"):
            mech = self.mechanism
            props[prefix + "sasl.enabled.mechanisms"] = mech
            if mech == "PLAIN":
                users = " ".join(f'user_{u}="{p}"' for u, p in self.users.items())
                module = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            elif mech.startswith("SCRAM"):
                module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            else:
                module = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
                          'unsecuredLoginStringClaim_sub="broker";')
            props[prefix + f"{mech.lower()}.sasl.jaas.config"] = module
        return props

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create this listener's SCRAM users."""
        if not (self.mechanism or "").startswith("SCRAM"):
            return []
        return [arg for u, p in self.users.items()
                for arg in ("--add-scram", f"{self.mechanism}=[name={u},password={p}]")]


class LocalKafka:
    """One KRaft node (``process.roles=broker,controller``) on 127.0.0.1."""

    def __init__(self, *, version: str, data_dir: Path, cache_dir: Path, port: int = 9092,
                 controller_port: int = 9093, heap: str = "512m", listener: ClientListener | None = None,
                 num_partitions: int = 1):
        """``listener``: a secured client listener besides the PLAINTEXT one on ``port``; ``num_partitions``:
        of the topics the broker creates on first use."""
        self.version = version
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.listener = listener
        self.num_partitions = num_partitions
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def secure_bootstrap_servers(self) -> str:
        """The secured client listener's address (``listener`` must be set)."""
        if self.listener is None:
            raise KafkaServiceError("this broker has no secured listener")
        return f"127.0.0.1:{self.listener.port}"

    def _properties(self) -> Path:
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}", f"CONTROLLER://127.0.0.1:{self.controller_port}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
        extra = {}
        if self.listener is not None:
            lst = self.listener
            listeners.append(f"{lst.name}://127.0.0.1:{lst.port}")
            advertised.append(f"{lst.name}://127.0.0.1:{lst.port}")
            protocols.append(f"{lst.name}:{lst.protocol}")
            extra = lst.properties()
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            **extra,
            "log.dirs": str(self.data_dir / "kraft"),
            "num.partitions": str(self.num_partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "message.max.bytes": str(16 * 1024 * 1024),
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, libs: Path, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            _require("java"), f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={RUNTIME_DIR / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def start(self, timeout: float = 120.0, progress=print) -> "LocalKafka":
        """Fetch (first time), format (first time), start, and wait until the broker answers."""
        libs = fetch_kafka(self.version, self.cache_dir, progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ports = [self.port, self.controller_port] + ([self.listener.port] if self.listener else [])
        for port in ports:
            if _port_open("127.0.0.1", port):
                raise KafkaServiceError(
                    f"port {port} on 127.0.0.1 is already in use: is another Kafka running? "
                    "Set SKYBROKER_KAFKA__LOCAL__PORT / __CONTROLLER_PORT, or KAFKA_BOOTSTRAP_SERVERS to use it"
                )
        props = self._properties()
        if not (self.data_dir / "kraft" / "meta.properties").exists():
            cluster_id = "-"
            while cluster_id.startswith("-"):  # the storage tool would read a leading '-' as an option
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            progress(f"Formatting KRaft storage in {self.data_dir / 'kraft'}")
            proc = subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                           *(self.listener.format_args() if self.listener else [])),
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise KafkaServiceError(f"kafka storage format failed:\n{proc.stdout}{proc.stderr}")
        out = open(self.log_dir / "kafka.out", "ab")
        self.proc = subprocess.Popen(
            self._java(libs, "kafka.Kafka", str(props), heap=self.heap),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop Kafka cleanly
        )
        out.close()
        (self.data_dir / "kafka.pid").write_text(str(self.proc.pid))
        progress(f"Starting Kafka {self.version} on {self.bootstrap_servers} ...")
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        progress(f"Kafka is up on {self.bootstrap_servers}")
        return self

    def wait_ready(self, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.log_dir / "kafka.out").read_text(errors="replace")[-3000:]
                raise KafkaServiceError(f"Kafka exited with code {self.proc.returncode}:\n{tail}")
            if _port_open("127.0.0.1", self.port):
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
                try:
                    md = admin.list_topics(timeout=5)
                    if md.brokers:
                        return
                except KafkaException as exc:  # the broker is still booting: retry
                    log.debug("Kafka not ready yet: %s", exc)
            time.sleep(0.5)
        raise KafkaServiceError(f"Kafka did not answer on {self.bootstrap_servers} within {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL if it does not exit in ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka did not stop in %.0fs; killing it", timeout)
                self.proc.kill()
                self.proc.wait()
        (self.data_dir / "kafka.pid").unlink(missing_ok=True)
        self.proc = None

    def __enter__(self) -> "LocalKafka":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main_foreground(kafka: LocalKafka) -> int:
    """Run until Ctrl-C / SIGTERM, then stop Kafka cleanly."""
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    kafka.start()
    print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap_servers}  (Ctrl-C to stop)", flush=True)
    try:
        while not stop["now"]:
            if kafka.proc is None or kafka.proc.poll() is not None:
                print("Kafka exited unexpectedly; see", kafka.log_dir / "kafka.out", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        print("Stopping Kafka ...", flush=True)
        kafka.stop()
    return 0


