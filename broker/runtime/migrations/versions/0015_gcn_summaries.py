"""GCN summaries as SkyPortal has them (issue 10)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 19:02:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gcnsummaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('text', sa.Unicode(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dateobs'], ['gcnevents.dateobs'], name=op.f('fk_gcnsummaries_dateobs_gcnevents'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_gcnsummaries_group_id_groups'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_gcnsummaries_sent_by_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcnsummaries')),
    )
    for col in ('created_at', 'dateobs', 'group_id', 'sent_by_id'):
        op.create_index(op.f(f'ix_gcnsummaries_{col}'), 'gcnsummaries', [col], unique=False)


def downgrade() -> None:
    op.drop_table('gcnsummaries')
