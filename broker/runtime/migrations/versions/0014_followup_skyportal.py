"""allocations and follow-up requests as SkyPortal has them (issue 10)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 17:50:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("allocations", sa.Column("validity_ranges", JSONB))
    op.add_column("allocations", sa.Column("default_share_group_ids", JSONB))
    op.add_column("allocations", sa.Column("types", JSONB, nullable=False,
                                           server_default=sa.text("'[\"triggered\"]'::jsonb")))
    op.add_column("followup_requests", sa.Column("comment", sa.Text))
    op.add_column("followup_requests", sa.Column("last_modified_by_id", sa.Integer,
                                                 sa.ForeignKey("users.id", ondelete="SET NULL")))
    op.add_column("followup_requests", sa.Column("status_text", sa.Text))
    for name, type_ in (("comment", sa.Text), ("constraints", JSONB), ("priority_order", sa.String),
                        ("validity_days", sa.Integer), ("implements_update", sa.Boolean)):
        op.add_column("default_followup_requests", sa.Column(name, type_))


def downgrade() -> None:
    for name in ("implements_update", "validity_days", "priority_order", "constraints", "comment"):
        op.drop_column("default_followup_requests", name)
    for name in ("status_text", "last_modified_by_id", "comment"):
        op.drop_column("followup_requests", name)
    for name in ("types", "default_share_group_ids", "validity_ranges"):
        op.drop_column("allocations", name)
