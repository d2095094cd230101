"""GCN events, their notices and localizations (sky maps) with HEALPix tiles for SQL queries."""

from __future__ import annotations

from datetime import datetime

import healpix_alchemy
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped


class GcnEvent(Base, Timestamped):
    """An astrophysical event, keyed (as SkyPortal) by its time ``dateobs``."""

    __tablename__ = "gcnevents"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.DateTime, unique=True, nullable=False)
    aliases: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)  # e.g. ["LVK#S190425z"]
    retracted: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    properties: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)  # FAR, classification, ...

    notices: Mapped[list["GcnNotice"]] = relationship(back_populates="event", cascade="all, delete-orphan",
                                                      passive_deletes=True, order_by="GcnNotice.id")
    localizations: Mapped[list["Localization"]] = relationship(back_populates="event", cascade="all, delete-orphan",
                                                               passive_deletes=True, order_by="Localization.id")


class GcnNotice(Base, Timestamped):
    """Every raw notice, kept as received."""

    __tablename__ = "gcnnotices"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    ivorn: Mapped[str | None] = mapped_column(sa.String)
    notice_type: Mapped[str] = mapped_column(sa.String, nullable=False)  # e.g. PRELIMINARY, LVC_INITIAL
    notice_format: Mapped[str] = mapped_column(sa.String, nullable=False)  # json | voevent
    date: Mapped[datetime | None] = mapped_column(sa.DateTime)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)

    event: Mapped[GcnEvent] = relationship(back_populates="notices")
    __private_columns__ = ("content",)


class Localization(Base, Timestamped):
    """A multi-order sky map (UNIQ + probability density [1/sr], optional distance layers)."""

    __tablename__ = "localizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    localization_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    # the map's arrays as little-endian int64 / float64 bytes (numpy tobytes): compact and fast for
    # maps of millions of pixels
    uniq: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    probdensity: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    distmu: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    distsigma: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    distnorm: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    area_50: Mapped[float | None] = mapped_column(sa.Float)  # deg²
    area_90: Mapped[float | None] = mapped_column(sa.Float)
    notice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gcnnotices.id", ondelete="SET NULL"))

    event: Mapped[GcnEvent] = relationship(back_populates="localizations")
    __private_columns__ = ("uniq", "probdensity", "distmu", "distsigma", "distnorm")
    __table_args__ = (sa.UniqueConstraint("dateobs", "localization_name", name="uq_localizations_dateobs_name"),)


class LocalizationTile(Base):
    """One pixel of a localization as a depth-29 HEALPix range, with its probability and greedy rank."""

    __tablename__ = "localizationtiles"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    localization_id: Mapped[int] = mapped_column(sa.ForeignKey("localizations.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    healpix: Mapped[object] = mapped_column(healpix_alchemy.Tile, nullable=False, index=True)
    probdensity: Mapped[float] = mapped_column(sa.Float, nullable=False)
    prob: Mapped[float] = mapped_column(sa.Float, nullable=False)  # probdensity × pixel area
    uniq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


class ObjLocalization(Base):
    """An object inside a localization: its credible level and the map's density there."""

    __tablename__ = "obj_localizations"
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), primary_key=True)
    localization_id: Mapped[int] = mapped_column(sa.ForeignKey("localizations.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    credible_level: Mapped[float] = mapped_column(sa.Float, nullable=False)
    probdensity: Mapped[float] = mapped_column(sa.Float, nullable=False)
