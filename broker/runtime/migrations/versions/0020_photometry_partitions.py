"""Photometry partitioned by time (issue 13): declarative range partitions on mjd, one per calendar month
from the month before the upgrade (``photometry_YYYY_MM``), ``photometry_archive`` before it (the history
alerts and uploads bring), ``photometry_default`` for what no partition holds yet. (Months before the
upgrade are not made: every partition costs the planning of each query by object.) The deduplication key already holds mjd, so it stays a constraint; the primary key
becomes (id, mjd), and ``id`` bigint (a year of LSST is billions of points; int4 ends at 2.1e9).

No foreign key can name a partitioned table's ``id`` alone, so photometry_groups, photometry_streams and
annotations_on_photometry lose theirs: a statement trigger on photometry deletes their rows with the
points. ``photometry_ensure_partitions(months_ahead)`` (SQL, below) makes the months up to now +
months_ahead, moving rows the default partition held for them; the migration calls it, and so does the
worker's maintenance loop (broker.runtime.worker.Maintenance).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 02:40:00
"""

from datetime import date, datetime, timedelta, timezone

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

REFERRERS = (  # (table, its foreign key to photometry.id)
    ('photometry_groups', 'fk_photometry_groups_photometry_id_photometry'),
    ('photometry_streams', 'fk_photometry_streams_photometry_id_photometry'),
    ('annotations_on_photometry', 'fk_annotations_on_photometry_photometry_id_photometry'),
)

ENSURE_PARTITIONS = """
CREATE FUNCTION photometry_ensure_partitions(months_ahead int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m date;
    lo int;
    hi int;
    part text;
    made int := 0;
BEGIN
    -- from last month: older months are the archive's (or, after a long stop, the default partition's)
    FOR m IN SELECT generate_series((date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date,
                                    (date_trunc('month', now() AT TIME ZONE 'UTC')
                                     + make_interval(months => months_ahead))::date,
                                    interval '1 month')::date
    LOOP
        part := 'photometry_' || to_char(m, 'YYYY_MM');
        IF to_regclass(part) IS NULL THEN
            lo := m - date '1858-11-17';  -- MJD of the month's first midnight (UTC)
            hi := (m + interval '1 month')::date - date '1858-11-17';
            EXECUTE format('CREATE TABLE %I (LIKE photometry INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            -- what the default partition took for this month moves (same ids: nothing that names a point changes)
            EXECUTE format('WITH moved AS (DELETE FROM photometry_default WHERE mjd >= %s AND mjd < %s RETURNING *) '
                           'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE photometry ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, lo, hi);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
"""

DELETE_TRIGGER = """
CREATE FUNCTION photometry_delete_dependents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM photometry_groups WHERE photometry_id IN (SELECT id FROM old_rows);
    DELETE FROM photometry_streams WHERE photometry_id IN (SELECT id FROM old_rows);
    DELETE FROM annotations_on_photometry WHERE photometry_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER photometry_delete_dependents AFTER DELETE ON photometry
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION photometry_delete_dependents();
"""


def _keys_and_indexes(primary_key: str) -> None:
    """photometry's key, deduplication constraint, indexes and foreign keys (made after its rows are in)."""
    op.execute(f"ALTER TABLE photometry ADD CONSTRAINT pk_photometry PRIMARY KEY ({primary_key})")
    op.execute("ALTER TABLE photometry ADD CONSTRAINT uq_photometry_point UNIQUE NULLS NOT DISTINCT "
               "(obj_id, instrument_id, origin, mjd, fluxerr, flux, dedup_scope)")
    op.execute("CREATE INDEX ix_photometry_instrument_id ON photometry (instrument_id)")
    op.execute("CREATE INDEX ix_photometry_upload_id ON photometry (upload_id)")
    for col, ref, action in (('instrument_id', 'instruments', 'CASCADE'), ('obj_id', 'objs', 'CASCADE'),
                             ('owner_id', 'users', 'SET NULL'), ('stream_id', 'streams', 'SET NULL')):
        op.execute(f"ALTER TABLE photometry ADD CONSTRAINT fk_photometry_{col}_{ref} FOREIGN KEY ({col}) "
                   f"REFERENCES {ref}(id) ON DELETE {action}")


def upgrade() -> None:
    for table, fk in REFERRERS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {fk}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN photometry_id TYPE bigint")
    op.execute("ALTER SEQUENCE photometry_id_seq AS bigint OWNED BY NONE")
    op.execute("ALTER TABLE photometry RENAME TO photometry_unparted")
    op.execute("CREATE TABLE photometry (LIKE photometry_unparted INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
               "PARTITION BY RANGE (mjd)")
    op.execute("ALTER TABLE photometry ALTER COLUMN id TYPE bigint")
    start = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (start - timedelta(days=1)).replace(day=1)  # the month before this one
    start_mjd = (start.date() - date(1858, 11, 17)).days
    op.execute(f"CREATE TABLE photometry_archive PARTITION OF photometry FOR VALUES FROM (MINVALUE) TO ({start_mjd})")
    op.execute("CREATE TABLE photometry_default PARTITION OF photometry DEFAULT")
    op.execute(ENSURE_PARTITIONS)
    op.execute("SELECT photometry_ensure_partitions(3)")
    op.execute("INSERT INTO photometry SELECT * FROM photometry_unparted")
    op.execute("DROP TABLE photometry_unparted")
    op.execute("ALTER SEQUENCE photometry_id_seq OWNED BY photometry.id")
    _keys_and_indexes("id, mjd")
    op.execute(DELETE_TRIGGER)
    op.execute("ANALYZE photometry")  # the copied rows' statistics, for the plans that follow at once


def downgrade() -> None:
    op.execute("DROP TRIGGER photometry_delete_dependents ON photometry")
    op.execute("DROP FUNCTION photometry_delete_dependents()")
    op.execute("ALTER SEQUENCE photometry_id_seq OWNED BY NONE")
    op.execute("CREATE TABLE photometry_unparted (LIKE photometry INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute("INSERT INTO photometry_unparted SELECT * FROM photometry")
    op.execute("DROP TABLE photometry")
    op.execute("DROP FUNCTION photometry_ensure_partitions(int)")
    op.execute("ALTER TABLE photometry_unparted RENAME TO photometry")
    op.execute("ALTER SEQUENCE photometry_id_seq OWNED BY photometry.id")
    _keys_and_indexes("id")
    for table, fk in REFERRERS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {fk} FOREIGN KEY (photometry_id) REFERENCES photometry(id) "
                   f"ON DELETE CASCADE")
