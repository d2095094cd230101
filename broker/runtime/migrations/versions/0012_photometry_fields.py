"""photometry fields (SkyPortal drop-in, issue 9)

Photometry gets SkyPortal's fields (instrument_id, ref_flux/ref_fluxerr, original_user_data,
upload_id, streams) and SkyPortal's duplicate rule: a point is a duplicate only when object,
instrument, origin, mjd, fluxerr AND flux match (two detections in one exposure with different
fluxes are two points), still within one ``dedup_scope``. Fluxes are stored in µJy (AB, zp 23.9)
as SkyPortal stores them: rows uploaded with another zero point are converted. The ZTF telescope
(Palomar 1.2m Oschin) and instrument exist out of the box (also ensured by the seed).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 17:30:00
"""

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# kept in step with broker.objects.photometry.SURVEY_FACILITIES (a migration does not import the app)
_FACILITIES = (
    ("Palomar 1.2m Oschin", "P48", 33.3580556, -116.861944, 1706.0, 1.26, "ZTF", "V", '["ztfg", "ztfr", "ztfi"]'),
    ("Rubin Observatory 8.4m Simonyi", "Rubin", -30.2444, -70.7494, 2663.0, 8.4, "LSST", "optical",
     '["lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"]'),
)
_AB_MINUS_VEGA = {
    "bessellux": 0.79, "bessellb": -0.09, "bessellv": 0.02, "bessellr": 0.21, "besselli": 0.45,
    "sdssu": 0.91, "sdssg": -0.08, "sdssr": 0.16, "sdssi": 0.37, "sdssz": 0.54,
    "2massj": 0.91, "2massh": 1.39, "2massks": 1.85,
}


def upgrade() -> None:
    op.add_column('photometry', sa.Column('instrument_id', sa.Integer(), nullable=True))
    op.add_column('photometry', sa.Column('ref_flux', sa.Float(), nullable=True))
    op.add_column('photometry', sa.Column('ref_fluxerr', sa.Float(), nullable=True))
    op.add_column('photometry', sa.Column('original_user_data', postgresql.JSONB(astext_type=sa.Text()),
                                          nullable=True))
    op.add_column('photometry', sa.Column('upload_id', sa.String(), nullable=False,
                                          server_default=sa.text("gen_random_uuid()::text")))
    op.create_index('ix_photometry_upload_id', 'photometry', ['upload_id'])
    op.create_table(
        'photometry_streams',
        sa.Column('photometry_id', sa.Integer(), nullable=False),
        sa.Column('stream_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['photometry_id'], ['photometry.id'],
                                name='fk_photometry_streams_photometry_id_photometry', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['stream_id'], ['streams.id'],
                                name='fk_photometry_streams_stream_id_streams', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('photometry_id', 'stream_id', name='pk_photometry_streams'),
    )
    op.create_index('ix_photometry_streams_stream_id', 'photometry_streams', ['stream_id'])

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    # the survey facilities, then every point's instrument: by name, else one named after the point's
    # instrument_name (or "Unknown") on an "Unknown" telescope, so no point is lost
    for tel, nick, lat, lon, elev, diam, inst, band, filters in _FACILITIES:
        op.execute(sa.text("""
            INSERT INTO telescopes (name, nickname, lat, lon, elevation, diameter, robotic, fixed_location,
                                    created_at, modified)
            VALUES (:tel, :nick, :lat, :lon, :elev, :diam, true, true, :now, :now)
            ON CONFLICT (name) DO NOTHING""").bindparams(tel=tel, nick=nick, lat=lat, lon=lon, elev=elev, diam=diam,
                                                        now=now))
        op.execute(sa.text("""
            INSERT INTO instruments (name, type, band, filters, telescope_id, created_at, modified)
            SELECT :inst, 'imager', :band, CAST(:filters AS jsonb), id, :now, :now FROM telescopes WHERE name = :tel
            ON CONFLICT (name) DO NOTHING""").bindparams(inst=inst, band=band, filters=filters, tel=tel, now=now))
    op.execute(sa.text("""
        INSERT INTO telescopes (name, nickname, diameter, robotic, fixed_location, created_at, modified)
        SELECT 'Unknown', 'Unknown', 1.0, false, true, :now, :now
        WHERE EXISTS (SELECT 1 FROM photometry p WHERE NOT EXISTS (
            SELECT 1 FROM instruments i WHERE i.name = p.instrument_name))
        ON CONFLICT (name) DO NOTHING""").bindparams(now=now))
    op.execute(sa.text("""
        INSERT INTO instruments (name, type, filters, telescope_id, created_at, modified)
        SELECT COALESCE(NULLIF(p.instrument_name, ''), 'Unknown') AS n, 'imager', jsonb_agg(DISTINCT p.filter),
               (SELECT id FROM telescopes WHERE name = 'Unknown'), :now, :now
        FROM photometry p WHERE NOT EXISTS (SELECT 1 FROM instruments i WHERE i.name = p.instrument_name)
        GROUP BY n
        ON CONFLICT (name) DO NOTHING""").bindparams(now=now))
    op.execute("""
        UPDATE photometry p SET instrument_id = i.id, instrument_name = i.name FROM instruments i
        WHERE i.name = COALESCE(NULLIF(p.instrument_name, ''), 'Unknown')""")
    # fluxes in µJy, as SkyPortal stores them
    op.execute("""
        UPDATE photometry SET flux = flux * power(10, 0.4 * (23.9 - zp)),
                              fluxerr = fluxerr * power(10, 0.4 * (23.9 - zp)), zp = 23.9
        WHERE zp <> 23.9""")
    # ... in AB: Vega points in a band with a published offset (broker.objects.photometry.AB_MINUS_VEGA); the
    # rest keep their magsys (no conversion is known)
    for band, delta in _AB_MINUS_VEGA.items():
        op.execute(sa.text("""
            UPDATE photometry SET flux = flux * power(10, -0.4 * :d), fluxerr = fluxerr * power(10, -0.4 * :d),
                                  limiting_mag = limiting_mag + :d, magsys = 'ab'
            WHERE magsys = 'vega' AND filter = :band""").bindparams(d=delta, band=band))
    op.alter_column('photometry', 'instrument_id', nullable=False)
    op.create_foreign_key('fk_photometry_instrument_id_instruments', 'photometry', 'instruments',
                          ['instrument_id'], ['id'], ondelete='CASCADE')
    op.create_index('ix_photometry_instrument_id', 'photometry', ['instrument_id'])

    # SkyPortal's duplicate rule (its deduplication_index), per dedup scope; an upper limit (flux null)
    # equals another with the same key
    op.drop_constraint('uq_photometry_point', 'photometry', type_='unique')
    op.execute("""
        DELETE FROM photometry p USING photometry q
        WHERE p.id > q.id AND p.obj_id = q.obj_id AND p.instrument_id = q.instrument_id AND p.origin = q.origin
          AND p.mjd = q.mjd AND p.fluxerr = q.fluxerr AND p.flux IS NOT DISTINCT FROM q.flux
          AND p.dedup_scope = q.dedup_scope""")
    op.execute("""
        ALTER TABLE photometry ADD CONSTRAINT uq_photometry_point UNIQUE NULLS NOT DISTINCT
            (obj_id, instrument_id, origin, mjd, fluxerr, flux, dedup_scope)""")


def downgrade() -> None:
    op.drop_constraint('uq_photometry_point', 'photometry', type_='unique')
    op.execute("""
        DELETE FROM photometry p USING photometry q
        WHERE p.id > q.id AND p.obj_id = q.obj_id AND p.filter = q.filter AND p.mjd = q.mjd
          AND p.instrument_name = q.instrument_name AND p.origin = q.origin AND p.dedup_scope = q.dedup_scope""")
    op.create_unique_constraint('uq_photometry_point', 'photometry',
                                ['obj_id', 'filter', 'mjd', 'instrument_name', 'origin', 'dedup_scope'])
    op.drop_index('ix_photometry_instrument_id', table_name='photometry')
    op.drop_constraint('fk_photometry_instrument_id_instruments', 'photometry', type_='foreignkey')
    op.drop_index('ix_photometry_streams_stream_id', table_name='photometry_streams')
    op.drop_table('photometry_streams')
    op.drop_index('ix_photometry_upload_id', table_name='photometry')
    for col in ('upload_id', 'original_user_data', 'ref_fluxerr', 'ref_flux', 'instrument_id'):
        op.drop_column('photometry', col)
