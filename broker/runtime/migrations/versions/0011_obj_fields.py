"""obj fields (SkyPortal drop-in, issue 9): the rest of SkyPortal's Obj columns

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 17:30:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

COLUMNS = (
    ('ra_err', sa.Float, {}),
    ('dec_err', sa.Float, {}),
    ('offset', sa.Float, {'server_default': '0'}),
    ('t0', sa.Float, {}),
    ('redshift_origin', sa.String, {}),
    ('redshift_history', JSONB, {}),
    ('summary', sa.String, {}),
    ('summary_history', JSONB, {}),
    ('dist_nearest_source', sa.Float, {}),
    ('mag_nearest_source', sa.Float, {}),
    ('e_mag_nearest_source', sa.Float, {}),
    ('transient', sa.Boolean, {'server_default': sa.false()}),
    ('varstar', sa.Boolean, {'server_default': sa.false()}),
    ('is_roid', sa.Boolean, {'server_default': sa.false()}),
    ('mpc_name', sa.String, {}),
    ('tns_name', sa.String, {}),
    ('tns_info', JSONB, {}),
    ('score', sa.Float, {}),
    ('origin', sa.String, {}),
    ('alias', lambda: sa.ARRAY(sa.String()), {}),
    ('detect_photometry_count', sa.Integer, {}),
)


def upgrade() -> None:
    for name, type_, kw in COLUMNS:
        op.add_column('objs', sa.Column(name, type_(), nullable=True, **kw))
    op.create_index('ix_objs_tns_name', 'objs', ['tns_name'])


def downgrade() -> None:
    op.drop_index('ix_objs_tns_name', table_name='objs')
    for name, _, _ in reversed(COLUMNS):
        op.drop_column('objs', name)
