"""annotations comments thumbnails spectra (SkyPortal drop-in, issue 9)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:30:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# the names SQLAlchemy's naming convention gives (truncated to PostgreSQL's 63 characters with a hash)
_LONG = {
    'group_annotations_on_spectra': 'fk_group_annotations_on_spectra_annotation_id_annotatio_ab54',
    'group_annotations_on_photometry': 'fk_group_annotations_on_photometry_annotation_id_annota_23e7',
}


def _timestamps():
    return [sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('modified', sa.DateTime(), nullable=False)]


def _group_table(name: str, target: str, key: str) -> None:
    op.create_table(name,
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column(key, sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f(f'fk_{name}_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint([key], [f'{target}.id'], name=op.f(_LONG.get(name, f'fk_{name}_{key}_{target}')),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', key, name=op.f(f'pk_{name}'))
    )
    op.create_index(op.f(f'ix_{name}_{key}'), name, [key], unique=False)


def _annotation_table(name: str, extra: list, unique: tuple, unique_name: str) -> None:
    op.create_table(name,
    *extra,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('origin', sa.String(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('obj_id', sa.String(), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f(f'fk_{name}_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f(f'fk_{name}_obj_id_objs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    sa.UniqueConstraint(*unique, name=unique_name)
    )
    for col in ('author_id', 'obj_id', 'origin', 'created_at', *[c.name for c in extra if isinstance(c, sa.Column)]):
        op.create_index(op.f(f'ix_{name}_{col}'), name, [col], unique=False)


def _comment_table(name: str, extra: list) -> None:
    op.create_table(name,
    *extra,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('attachment_name', sa.String(), nullable=True),
    sa.Column('origin', sa.String(), nullable=True),
    sa.Column('bot', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('attachment_bytes', sa.LargeBinary(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('obj_id', sa.String(), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f(f'fk_{name}_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f(f'fk_{name}_obj_id_objs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}'))
    )
    for col in ('author_id', 'obj_id', 'created_at'):
        op.create_index(op.f(f'ix_{name}_{col}'), name, [col], unique=False)


def upgrade() -> None:
    # spectra
    op.create_table('spectra',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wavelengths', postgresql.ARRAY(sa.Float()), nullable=False),
    sa.Column('fluxes', postgresql.ARRAY(sa.Float()), nullable=False),
    sa.Column('errors', postgresql.ARRAY(sa.Float()), nullable=True),
    sa.Column('units', sa.String(), nullable=True),
    sa.Column('obj_id', sa.String(), nullable=False),
    sa.Column('observed_at', sa.DateTime(), nullable=False),
    sa.Column('origin', sa.String(), nullable=True),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('label', sa.String(), nullable=True),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('followup_request_id', sa.Integer(), nullable=True),
    sa.Column('altdata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('original_file_string', sa.Text(), nullable=True),
    sa.Column('original_file_filename', sa.String(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    *_timestamps(),
    sa.CheckConstraint("type IN ('source', 'host', 'host_center')", name=op.f('ck_spectra_type')),
    sa.CheckConstraint("units IS NULL OR units IN ('Jy', 'AB', 'erg/s/cm/cm/AA')", name=op.f('ck_spectra_units')),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f('fk_spectra_obj_id_objs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], name=op.f('fk_spectra_instrument_id_instruments'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['followup_request_id'], ['followup_requests.id'],
                            name=op.f('fk_spectra_followup_request_id_followup_requests'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_spectra_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spectra'))
    )
    for col in ('observed_at', 'created_at', 'obj_id', 'owner_id', 'instrument_id'):
        op.create_index(op.f(f'ix_spectra_{col}'), 'spectra', [col], unique=False)
    op.create_table('group_spectra',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('spectrum_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_spectra_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['spectrum_id'], ['spectra.id'], name=op.f('fk_group_spectra_spectrum_id_spectra'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'spectrum_id', name=op.f('pk_group_spectra'))
    )
    op.create_index(op.f('ix_group_spectra_spectrum_id'), 'group_spectra', ['spectrum_id'], unique=False)
    op.create_table('spectrum_users',
    sa.Column('spectrum_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(), nullable=False),
    sa.Column('external', sa.String(), nullable=True),
    sa.CheckConstraint("role IN ('pi', 'reducer', 'observer')", name=op.f('ck_spectrum_users_role')),
    sa.ForeignKeyConstraint(['spectrum_id'], ['spectra.id'], name=op.f('fk_spectrum_users_spectrum_id_spectra'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_spectrum_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spectrum_id', 'user_id', 'role', name=op.f('pk_spectrum_users'))
    )
    op.create_index(op.f('ix_spectrum_users_user_id'), 'spectrum_users', ['user_id'], unique=False)

    # annotations
    _annotation_table('annotations', [], ('obj_id', 'origin'), 'uq_annotations_obj_origin')
    _annotation_table('annotations_on_spectra', [
        sa.Column('spectrum_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['spectrum_id'], ['spectra.id'],
                                name=op.f('fk_annotations_on_spectra_spectrum_id_spectra'), ondelete='CASCADE'),
    ], ('spectrum_id', 'origin'), 'uq_annotations_on_spectra_spectrum_origin')
    _annotation_table('annotations_on_photometry', [
        sa.Column('photometry_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['photometry_id'], ['photometry.id'],
                                name=op.f('fk_annotations_on_photometry_photometry_id_photometry'), ondelete='CASCADE'),
    ], ('photometry_id', 'origin'), 'uq_annotations_on_photometry_photometry_origin')
    _group_table('group_annotations', 'annotations', 'annotation_id')
    _group_table('group_annotations_on_spectra', 'annotations_on_spectra', 'annotation_id')
    _group_table('group_annotations_on_photometry', 'annotations_on_photometry', 'annotation_id')

    # comments
    _comment_table('comments', [sa.Column('channel', sa.String(), nullable=True),
                                sa.Column('system', sa.Boolean(), server_default='false', nullable=False)])
    op.create_index(op.f('ix_comments_channel'), 'comments', ['channel'], unique=False)
    _comment_table('comments_on_spectra', [
        sa.Column('spectrum_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['spectrum_id'], ['spectra.id'], name=op.f('fk_comments_on_spectra_spectrum_id_spectra'),
                                ondelete='CASCADE'),
    ])
    op.create_index(op.f('ix_comments_on_spectra_spectrum_id'), 'comments_on_spectra', ['spectrum_id'], unique=False)
    _group_table('group_comments', 'comments', 'comment_id')
    _group_table('group_comments_on_spectra', 'comments_on_spectra', 'comment_id')

    # thumbnails
    op.create_table('thumbnails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('obj_id', sa.String(), nullable=False),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('file_uri', sa.String(), nullable=True),
    sa.Column('public_url', sa.String(), nullable=True),
    sa.Column('origin', sa.String(), nullable=True),
    sa.Column('survey', sa.String(), nullable=True),
    sa.Column('is_grayscale', sa.Boolean(), nullable=True),
    sa.Column('alert_id', sa.BigInteger(), nullable=True),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    *_timestamps(),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f('fk_thumbnails_obj_id_objs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thumbnails'))
    )
    op.create_index(op.f('ix_thumbnails_created_at'), 'thumbnails', ['created_at'], unique=False)
    op.create_index('ix_thumbnails_obj_id_type', 'thumbnails', ['obj_id', 'type'], unique=False)
    op.create_index('uq_thumbnails_alert', 'thumbnails', ['obj_id', 'survey', 'type'], unique=True,
                    postgresql_where=sa.text('alert_id IS NOT NULL'))


def downgrade() -> None:
    for table in ('thumbnails', 'group_comments_on_spectra', 'group_comments', 'comments_on_spectra', 'comments',
                  'group_annotations_on_photometry', 'group_annotations_on_spectra', 'group_annotations',
                  'annotations_on_photometry', 'annotations_on_spectra', 'annotations', 'spectrum_users',
                  'group_spectra', 'spectra'):
        op.drop_table(table)
