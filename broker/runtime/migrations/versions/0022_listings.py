"""SkyPortal's listings (issue 14): a user's named lists of objects, e.g. the scanning page's
"rejected_candidates" that candidate lists leave out with listNameReject.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 05:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE",
                                                       name="fk_listings_user_id_users"), nullable=False),
        sa.Column("obj_id", sa.String, sa.ForeignKey("objs.id", ondelete="CASCADE",
                                                     name="fk_listings_obj_id_objs"), nullable=False),
        sa.Column("list_name", sa.String, nullable=False),
        sa.Column("params", JSONB),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("modified", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_listings"),
    )
    op.create_index("ix_listings_user_id", "listings", ["user_id"])
    op.create_index("ix_listings_obj_id", "listings", ["obj_id"])
    op.create_index("ix_listings_list_name", "listings", ["list_name"])
    op.create_index("ix_listings_created_at", "listings", ["created_at"])
    op.create_index("listings_main_index", "listings", ["user_id", "obj_id", "list_name"], unique=True)
    op.create_index("listings_reverse_index", "listings", ["list_name", "obj_id", "user_id"], unique=True)


def downgrade() -> None:
    op.drop_table("listings")
