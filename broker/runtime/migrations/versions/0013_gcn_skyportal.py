"""gcn events as SkyPortal has them (issue 10)

Events get SkyPortal's ``trigger_id`` (later notices of one trigger join its event) and groups
(``group_ids``: empty = readable by everyone); notices get ``stream``, ``has_localization``,
``localization_ingested`` and a unique ``ivorn`` (a re-posted VOEvent is stored once: duplicates already
stored are removed, the first kept); localizations keep SkyPortal's GeoJSON ``contour``. New tables as
SkyPortal's: gcntags, gcnproperties, localizationtags, localizationproperties, gcntriggers and gcneventobjs
(sources confirmed/rejected for an event). Retracted events get the "retracted" tag; existing event
properties become their first GcnProperty row.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 17:45:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _stamps():
    return (sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('modified', sa.DateTime(), nullable=False))


def upgrade() -> None:
    op.add_column('gcnevents', sa.Column('trigger_id', sa.String(), nullable=True))
    op.add_column('gcnevents', sa.Column('group_ids', postgresql.ARRAY(sa.Integer()), nullable=False,
                                         server_default='{}'))
    op.create_index(op.f('ix_gcnevents_trigger_id'), 'gcnevents', ['trigger_id'], unique=False)

    op.add_column('gcnnotices', sa.Column('stream', sa.String(), nullable=True))
    op.add_column('gcnnotices', sa.Column('has_localization', sa.Boolean(), nullable=False,
                                          server_default='false'))
    op.add_column('gcnnotices', sa.Column('localization_ingested', sa.Boolean(), nullable=False,
                                          server_default='false'))
    op.execute("DELETE FROM gcnnotices n USING gcnnotices m WHERE n.ivorn = m.ivorn AND n.id > m.id")
    op.create_unique_constraint(op.f('uq_gcnnotices_ivorn'), 'gcnnotices', ['ivorn'])
    op.execute("UPDATE gcnnotices SET has_localization = true, localization_ingested = true "
               "WHERE id IN (SELECT notice_id FROM localizations WHERE notice_id IS NOT NULL)")

    op.add_column('localizations', sa.Column('contour', postgresql.JSONB(astext_type=sa.Text()), nullable=True))

    op.create_table('gcntags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('text', sa.String(), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['dateobs'], ['gcnevents.dateobs'], name=op.f('fk_gcntags_dateobs_gcnevents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_gcntags_sent_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcntags')),
    sa.UniqueConstraint('dateobs', 'text', name='uq_gcntags_dateobs_text')
    )
    for col in ('created_at', 'dateobs', 'text'):
        op.create_index(op.f(f'ix_gcntags_{col}'), 'gcntags', [col], unique=False)

    op.create_table('gcnproperties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    *_stamps(),
    sa.ForeignKeyConstraint(['dateobs'], ['gcnevents.dateobs'], name=op.f('fk_gcnproperties_dateobs_gcnevents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_gcnproperties_sent_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcnproperties'))
    )
    for col in ('created_at', 'dateobs'):
        op.create_index(op.f(f'ix_gcnproperties_{col}'), 'gcnproperties', [col], unique=False)

    for table in ('localizationtags', 'localizationproperties'):
        value = (sa.Column('text', sa.String(), nullable=False) if table == 'localizationtags'
                 else sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False))
        op.create_table(table,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('localization_id', sa.Integer(), nullable=False),
        value,
        *_stamps(),
        sa.ForeignKeyConstraint(['localization_id'], ['localizations.id'],
                                name=op.f(f'fk_{table}_localization_id_localizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}'))
        )
        for col in ('created_at', 'localization_id') + (('text',) if table == 'localizationtags' else ()):
            op.create_index(op.f(f'ix_{table}_{col}'), table, [col], unique=False)

    op.create_table('gcntriggers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('allocation_id', sa.Integer(), nullable=False),
    sa.Column('triggered', sa.Boolean(), nullable=False),
    *_stamps(),
    sa.ForeignKeyConstraint(['allocation_id'], ['allocations.id'], name=op.f('fk_gcntriggers_allocation_id_allocations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dateobs'], ['gcnevents.dateobs'], name=op.f('fk_gcntriggers_dateobs_gcnevents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcntriggers')),
    sa.UniqueConstraint('dateobs', 'allocation_id', name='uq_gcntriggers_dateobs_allocation')
    )
    for col in ('allocation_id', 'created_at', 'dateobs'):
        op.create_index(op.f(f'ix_gcntriggers_{col}'), 'gcntriggers', [col], unique=False)

    op.create_table('gcneventobjs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('obj_id', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False, server_default='pending'),
    sa.Column('confirmer_id', sa.Integer(), nullable=True),
    sa.Column('explanation', sa.String(), nullable=True),
    sa.Column('notes', sa.String(), nullable=True),
    *_stamps(),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'ambiguous', 'rejected')", name=op.f('ck_gcneventobjs_status')),
    sa.ForeignKeyConstraint(['confirmer_id'], ['users.id'], name=op.f('fk_gcneventobjs_confirmer_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dateobs'], ['gcnevents.dateobs'], name=op.f('fk_gcneventobjs_dateobs_gcnevents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f('fk_gcneventobjs_obj_id_objs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcneventobjs')),
    sa.UniqueConstraint('dateobs', 'obj_id', name='uq_gcneventobjs_dateobs_obj')
    )
    for col in ('created_at', 'dateobs', 'obj_id'):
        op.create_index(op.f(f'ix_gcneventobjs_{col}'), 'gcneventobjs', [col], unique=False)

    # what existing events already say, in SkyPortal's tables
    op.execute("INSERT INTO gcntags (dateobs, text, created_at, modified) "
               "SELECT dateobs, 'retracted', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' "
               "FROM gcnevents WHERE retracted")
    op.execute("INSERT INTO gcnproperties (dateobs, data, created_at, modified) "
               "SELECT dateobs, properties, created_at, modified FROM gcnevents WHERE properties <> '{}'::jsonb")


def downgrade() -> None:
    for table in ('gcneventobjs', 'gcntriggers', 'localizationproperties', 'localizationtags', 'gcnproperties',
                  'gcntags'):
        op.drop_table(table)
    op.drop_column('localizations', 'contour')
    op.drop_constraint(op.f('uq_gcnnotices_ivorn'), 'gcnnotices', type_='unique')
    for col in ('localization_ingested', 'has_localization', 'stream'):
        op.drop_column('gcnnotices', col)
    op.drop_index(op.f('ix_gcnevents_trigger_id'), table_name='gcnevents')
    op.drop_column('gcnevents', 'group_ids')
    op.drop_column('gcnevents', 'trigger_id')
