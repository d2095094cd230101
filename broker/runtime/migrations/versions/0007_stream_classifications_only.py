"""the machine-classification upsert key covers stream-made rows only (no author)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('uq_classifications_ml', table_name='classifications', postgresql_where=sa.text('ml'))
    op.create_index('uq_classifications_ml', 'classifications', ['obj_id', 'taxonomy_id', 'classification', 'origin'],
                    unique=True, postgresql_where=sa.text('ml AND author_id IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_classifications_ml', table_name='classifications',
                  postgresql_where=sa.text('ml AND author_id IS NULL'))
    op.create_index('uq_classifications_ml', 'classifications', ['obj_id', 'taxonomy_id', 'classification', 'origin'],
                    unique=True, postgresql_where=sa.text('ml'))
