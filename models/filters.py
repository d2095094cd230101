"""Filters: a group's selection criteria over one stream."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from .groups import Group
from .streams import Stream


class Filter(Base, Timestamped):
    __tablename__ = "filters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    stream_id: Mapped[int] = mapped_column(
        sa.ForeignKey("streams.id", ondelete="CASCADE"), nullable=False, index=True
    )
    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # Declarative selection criteria (empty: every alert passes).
    criteria: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    # Save passing objects as Sources of the filter's group.
    autosave: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    # SkyPortal: arbitrary JSON about the filter (migration 0010)
    altdata: Mapped[dict | None] = mapped_column(JSONB)

    stream: Mapped[Stream] = relationship(lazy="joined")
    group: Mapped[Group] = relationship(lazy="joined")
