"""groups instruments telescopes (SkyPortal drop-in, issue 9)

SkyPortal's remaining columns on groups, group members, streams, filters, telescopes and instruments.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:30:00
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects.postgresql import JSONB

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FALSE = sa.text("false")


def columns() -> tuple:
    """(table, new column) pairs, fresh each call (a Column belongs to one table)."""
    return (
        ("groups", sa.Column("auto_accept_requests", sa.Boolean, nullable=False, server_default=FALSE)),
        ("group_users", sa.Column("can_share_photometry", sa.Boolean, nullable=False, server_default=FALSE)),
        ("streams", sa.Column("auto_join", sa.Boolean, nullable=False, server_default=FALSE)),
        ("filters", sa.Column("altdata", JSONB, nullable=True)),
        ("telescopes", sa.Column("skycam_link", sa.String, nullable=True)),
        ("telescopes", sa.Column("weather_link", sa.String, nullable=True)),
        ("telescopes", sa.Column("mpc_obscode", sa.String, nullable=True)),
        ("instruments", sa.Column("sensitivity_data", JSONB, nullable=True)),
        ("instruments", sa.Column("configuration_data", JSONB, nullable=True)),
        ("instruments", sa.Column("status", JSONB, nullable=True)),
        ("instruments", sa.Column("last_status_update", sa.DateTime, nullable=True)),
        ("instruments", sa.Column("api_classname_obsplan", sa.String, nullable=True)),
        ("instruments", sa.Column("treasuremap_id", sa.Integer, nullable=True)),
        ("instruments", sa.Column("tns_id", sa.Integer, nullable=True)),
        ("instruments", sa.Column("across_id", sa.String, nullable=True)),
        ("instruments", sa.Column("region", sa.String, nullable=True)),
        ("instruments", sa.Column("has_fields", sa.Boolean, nullable=False, server_default=FALSE)),
        ("instruments", sa.Column("has_region", sa.Boolean, nullable=False, server_default=FALSE)),
    )


def upgrade() -> None:
    for table, column in columns():
        op.add_column(table, column)
    op.create_index("ix_instruments_across_id", "instruments", ["across_id"])
    op.create_index("ix_streams_auto_join", "streams", ["auto_join"])
    # SkyPortal's default: a telescope has a fixed location unless told otherwise
    op.alter_column("telescopes", "fixed_location", server_default=sa.text("true"))


def downgrade() -> None:
    op.alter_column("telescopes", "fixed_location", server_default=None)
    op.drop_index("ix_streams_auto_join", table_name="streams")
    op.drop_index("ix_instruments_across_id", table_name="instruments")
    for table, column in reversed(columns()):
        op.drop_column(table, column.name)
