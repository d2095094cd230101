"""Localization tiles keyed by (localization_id, cumprob, uniq), without a surrogate id or a foreign key (a
trigger deletes them with their localization): storing a million-tile map took 5.3 s of COPY, now ~1.4 s
(issue 12)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 00:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint('fk_localizationtiles_localization_id_localizations', 'localizationtiles', type_='foreignkey')
    op.drop_index('ix_localizationtiles_localization_id_cumprob', table_name='localizationtiles')
    op.drop_constraint('pk_localizationtiles', 'localizationtiles', type_='primary')
    op.drop_column('localizationtiles', 'id')
    op.create_primary_key('pk_localizationtiles', 'localizationtiles', ['localization_id', 'cumprob', 'uniq'])
    op.execute("""
        CREATE FUNCTION localizations_delete_tiles() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM localizationtiles WHERE localization_id = OLD.id;
            RETURN OLD;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER localizations_delete_tiles AFTER DELETE ON localizations
        FOR EACH ROW EXECUTE FUNCTION localizations_delete_tiles()
    """)
    # a map's arrays are float64/int64 bytes that do not compress: stored as they are (no pglz attempt)
    for col in ('uniq', 'probdensity', 'distmu', 'distsigma', 'distnorm'):
        op.execute(f"ALTER TABLE localizations ALTER COLUMN {col} SET STORAGE EXTERNAL")


def downgrade() -> None:
    for col in ('uniq', 'probdensity', 'distmu', 'distsigma', 'distnorm'):
        op.execute(f"ALTER TABLE localizations ALTER COLUMN {col} SET STORAGE EXTENDED")
    op.execute("DROP TRIGGER localizations_delete_tiles ON localizations")
    op.execute("DROP FUNCTION localizations_delete_tiles()")
    op.drop_constraint('pk_localizationtiles', 'localizationtiles', type_='primary')
    op.add_column('localizationtiles', sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False))
    op.create_primary_key('pk_localizationtiles', 'localizationtiles', ['id'])
    op.create_index('ix_localizationtiles_localization_id_cumprob', 'localizationtiles',
                    ['localization_id', 'cumprob'], unique=False)
    op.create_foreign_key('fk_localizationtiles_localization_id_localizations', 'localizationtiles',
                          'localizations', ['localization_id'], ['id'], ondelete='CASCADE')
