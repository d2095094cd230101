"""Thumbnails' PNG bytes stored as they are (issue 13): PNG is compressed already, and PostgreSQL's attempt to
compress each image again (pglz) cost the ingest of a batch of new objects a third of its thumbnail write.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 02:55:00
"""

from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE thumbnails ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE thumbnails ALTER COLUMN data SET STORAGE EXTENDED")
