"""photometry de-duplication scoped per uploader (alert photometry: scope 0)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('photometry', sa.Column('dedup_scope', sa.BigInteger(), server_default='0', nullable=False))
    op.execute("UPDATE photometry SET dedup_scope = owner_id WHERE owner_id IS NOT NULL")
    op.drop_constraint('uq_photometry_point', 'photometry', type_='unique')
    op.create_unique_constraint('uq_photometry_point', 'photometry',
                                ['obj_id', 'filter', 'mjd', 'instrument_name', 'origin', 'dedup_scope'])


def downgrade() -> None:
    op.drop_constraint('uq_photometry_point', 'photometry', type_='unique')
    op.execute("DELETE FROM photometry p USING photometry q WHERE p.obj_id = q.obj_id AND p.filter = q.filter "
               "AND p.mjd = q.mjd AND p.instrument_name = q.instrument_name AND p.origin = q.origin "
               "AND p.dedup_scope > q.dedup_scope")
    op.create_unique_constraint('uq_photometry_point', 'photometry',
                                ['obj_id', 'filter', 'mjd', 'instrument_name', 'origin'])
    op.drop_column('photometry', 'dedup_scope')
