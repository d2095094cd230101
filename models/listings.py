"""A user's lists of objects (SkyPortal's Listing): "favorites", "rejected_candidates", ... Each user reads
and writes their own (a system admin anyone's)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped


class Listing(Base, Timestamped):
    __tablename__ = "listings"
    __table_args__ = (
        sa.Index("listings_main_index", "user_id", "obj_id", "list_name", unique=True),
        sa.Index("listings_reverse_index", "list_name", "obj_id", "user_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    list_name: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    # a "watchlist" listing's search parameters (arcsec, cadence, end_of_night)
    params: Mapped[dict | None] = mapped_column(JSONB)
