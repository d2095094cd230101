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

    from models.objects import not_a_partition

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": not_a_partition}),
                                models.Base.metadata)
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


def test_staging_tables_are_made_once_per_connection_and_copy_rows_fills_them(engine, session_factory):
    """A registered staging table exists on every new connection (no DDL per use); copy_rows empties it
    first, so a second use in one transaction holds only the second rows; a table no connection made
    beforehand is made on first use, and made again after that transaction rolled back."""
    from sqlalchemy.orm import Session

    ddl = "CREATE TEMP TABLE IF NOT EXISTS staging_probe (i int, name text) ON COMMIT DELETE ROWS"
    db.register_staging("staging_probe", ddl)
    try:
        fresh = db.make_engine(engine.url.render_as_string(hide_password=False))
        with Session(fresh) as s, s.begin():
            fairy = s.connection().connection
            assert "staging_probe" in fairy.info["staging"]
            assert s.execute(sa.text("SELECT to_regclass('pg_temp.staging_probe') IS NOT NULL")).scalar()
            db.copy_rows(s, ddl, "staging_probe", ("i", "name"), [(1, "a"), (2, None)])
            db.copy_rows(s, ddl, "staging_probe", ("i", "name"), [(3, "c")], analyze=True)
            assert s.execute(sa.text("SELECT i, name FROM staging_probe")).all() == [(3, "c")]
        fresh.dispose()
    finally:
        db._STAGING.pop("staging_probe")
    late = "CREATE TEMP TABLE IF NOT EXISTS staging_late (i int) ON COMMIT DELETE ROWS"
    with session_factory() as s:
        with s.begin():
            db.copy_rows(s, late, "staging_late", ("i",), [(1,), (2,)])
            assert s.execute(sa.text("SELECT count(*) FROM staging_late")).scalar() == 2
            s.rollback()
        with s.begin():
            db.copy_rows(s, late, "staging_late", ("i",), [(5,)])
            assert s.execute(sa.text("SELECT i FROM staging_late")).scalars().all() == [5]


def test_copy_text_rows_round_trips_bytes_and_awkward_strings(session_factory):
    """COPY's text format: bytes arrive as the same bytea, strings with tabs, newlines, backslashes and a
    literal \\N arrive as they were, None is NULL, floats exactly."""
    ddl = "CREATE TEMP TABLE IF NOT EXISTS staging_text (name text, data bytea, x float8) ON COMMIT DELETE ROWS"
    blob = bytes(range(256)) * 40
    rows = [("tab\there\nnew\\line\\N\r", blob, 0.1), (None, b"", None), ("", None, -1e-300)]
    with session_factory() as s, s.begin():
        db.copy_text_rows(s, ddl, "staging_text", ("name", "data", "x"), rows)
        got = s.execute(sa.text("SELECT name, data, x FROM staging_text ORDER BY x NULLS FIRST")).all()
    assert [(n, bytes(d) if d is not None else None, x) for n, d, x in got] == [rows[1], rows[2], rows[0]]


def test_literal_sql_inlines_a_condition_with_its_sub_queries_correlated(session_factory):
    """An EXISTS on the outer table stays correlated once inlined (compiled alone it would not be), and
    the text runs as part of hand-written SQL; a condition on another table is refused."""
    import pytest

    O, S = models.Obj, models.Source
    cond = sa.exists().where(S.obj_id == O.id, S.group_id == 424242)
    text = db.literal_sql(cond, O.__table__)
    assert "sources.obj_id = objs.id" in text and "424242" in text
    assert "FROM sources, objs" not in text and "FROM objs" not in text.split("FROM sources", 1)[1]
    with session_factory() as s, s.begin():
        s.add_all([O(id="literal-a", ra=1.0, dec=2.0, healpix=0), O(id="literal-b", ra=3.0, dec=4.0, healpix=0)])
        group = models.Group(name="literal-g")
        s.add(group)
        s.flush()
        gid = group.id
        s.add(S(obj_id="literal-a", group_id=gid, saved_at=models.utcnow(), active=True))
        s.flush()
        text = db.literal_sql(sa.exists().where(S.obj_id == O.id, S.group_id == gid), O.__table__)
        got = db.fetch(s, f"SELECT objs.id FROM objs WHERE objs.id LIKE 'literal-%%' AND {text} ORDER BY 1")
        assert [r[0] for r in got] == ["literal-a"]
        s.rollback()
    with pytest.raises(ValueError, match="objs"):
        db.literal_sql(S.group_id == 1, O.__table__)
