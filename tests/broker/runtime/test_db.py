"""Alembic migrations on a real PostgreSQL, and the embedded server across restarts."""

import subprocess
import sys
import textwrap

import sqlalchemy as sa

import models
from broker.runtime import db


def test_upgrade_creates_every_table_on_an_empty_database(new_database, config):
    engine = db.make_engine(new_database())
    try:
        assert db.current_revision(engine) is None
        rev = db.upgrade(engine, config.admin.sitewide_group)
        assert rev == db.current_revision(engine) is not None
        tables = set(sa.inspect(engine).get_table_names())
        assert set(models.Base.metadata.tables) <= tables
        with engine.connect() as conn:
            acls = {r[0] for r in conn.execute(sa.text("SELECT id FROM acls"))}
            assert {"System admin", "Manage groups", "Upload data"} <= acls
            assert conn.execute(sa.text("SELECT name FROM groups")).scalar() == config.admin.sitewide_group
            # the healpix-alchemy point index exists on objs
            idx = {i["name"] for i in sa.inspect(conn).get_indexes("objs")}
            assert "ix_objs_healpix" in idx
    finally:
        engine.dispose()


def test_upgrade_twice_keeps_data(new_database, config):
    engine = db.make_engine(new_database())
    try:
        rev = db.upgrade(engine, config.admin.sitewide_group)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO streams (name, created_at, modified) VALUES ('kept', now(), now())"))
        assert db.upgrade(engine, config.admin.sitewide_group) == rev
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM streams WHERE name='kept'")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM groups")).scalar() == 1  # seed not doubled
    finally:
        engine.dispose()


def test_models_match_migrations(engine):
    """Autogenerate finds nothing to do: the migrations describe the models exactly."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    assert diff == []


SCRIPT = textwrap.dedent("""
    import sys
    import sqlalchemy as sa
    from pathlib import Path
    from broker.runtime.db import EmbeddedPostgres
    server = EmbeddedPostgres(Path(sys.argv[1]))
    engine = sa.create_engine(server.start())
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS survive (v text)"))
        if sys.argv[2] == "write":
            conn.execute(sa.text("INSERT INTO survive VALUES ('still here')"))
        print(conn.execute(sa.text("SELECT string_agg(v, ',') FROM survive")).scalar())
    engine.dispose()
    server.stop()
""")


def test_embedded_database_survives_a_restart(tmp_path):
    pgdata = tmp_path / "pgdata"
    first = subprocess.run([sys.executable, "-c", SCRIPT, str(pgdata), "write"],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "still here"
    assert not (pgdata / "postmaster.pid").exists()  # the server was stopped
    second = subprocess.run([sys.executable, "-c", SCRIPT, str(pgdata), "read"],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "still here"
