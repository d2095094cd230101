"""per-partition offsets committed with the rows (exact counters across redelivery)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_offsets',
    sa.Column('group_id', sa.String(), nullable=False),
    sa.Column('topic', sa.String(), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('group_id', 'topic', 'partition', name=op.f('pk_ingest_offsets'))
    )


def downgrade() -> None:
    op.drop_table('ingest_offsets')
