"""Sky maps pending at their URL (the notice keeps the URL, the last error, tries and the next try); tiles keep
their cumulative probability, indexed with their localization, and lose the range index (issue 12)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 00:20:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('gcnnotices', sa.Column('skymap_url', sa.Text(), nullable=True))
    op.add_column('gcnnotices', sa.Column('skymap_error', sa.Text(), nullable=True))
    op.add_column('gcnnotices', sa.Column('skymap_attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('gcnnotices', sa.Column('skymap_retry_at', sa.DateTime(), nullable=True))
    op.drop_index('ix_localizationtiles_healpix', table_name='localizationtiles', postgresql_using='spgist')
    op.add_column('localizationtiles', sa.Column('cumprob', sa.Float(), nullable=True))
    op.execute("""
        UPDATE localizationtiles t SET cumprob = r.cum
        FROM (SELECT id, sum(prob) OVER (PARTITION BY localization_id ORDER BY probdensity DESC, uniq DESC
                                         ROWS UNBOUNDED PRECEDING) AS cum
              FROM localizationtiles) r
        WHERE t.id = r.id
    """)
    op.alter_column('localizationtiles', 'cumprob', nullable=False)
    op.drop_index('ix_localizationtiles_localization_id', table_name='localizationtiles')
    op.create_index('ix_localizationtiles_localization_id_cumprob', 'localizationtiles',
                    ['localization_id', 'cumprob'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_localizationtiles_localization_id_cumprob', table_name='localizationtiles')
    op.create_index('ix_localizationtiles_localization_id', 'localizationtiles', ['localization_id'], unique=False)
    op.drop_column('localizationtiles', 'cumprob')
    op.create_index('ix_localizationtiles_healpix', 'localizationtiles', ['healpix'], unique=False,
                    postgresql_using='spgist')
    for col in ('skymap_retry_at', 'skymap_attempts', 'skymap_error', 'skymap_url'):
        op.drop_column('gcnnotices', col)
