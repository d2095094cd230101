"""GCN summaries as SkyPortal has them (issue 10)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 19:02:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
