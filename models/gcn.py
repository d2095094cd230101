"""GCN events, their notices and localizations (sky maps) with HEALPix tiles for SQL queries."""

from __future__ import annotations

from datetime import datetime

import healpix_alchemy
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    # SkyPortal's trigger_id (TrigID / Burst_Id, or the poster's): later notices of one trigger join its event
    trigger_id: Mapped[str | None] = mapped_column(sa.String, index=True)
    # SkyPortal's event groups: empty = readable by everyone, else only by members of these groups
    group_ids: Mapped[list] = mapped_column(ARRAY(sa.Integer), nullable=False, default=list,
                                            server_default="{}")

    notices: Mapped[list["GcnNotice"]] = relationship(back_populates="event", cascade="all, delete-orphan",
                                                      passive_deletes=True, order_by="GcnNotice.id")
    localizations: Mapped[list["Localization"]] = relationship(back_populates="event", cascade="all, delete-orphan",
                                                               passive_deletes=True, order_by="Localization.id")
    gcn_tags: Mapped[list["GcnTag"]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                    order_by="GcnTag.id")
    gcn_properties: Mapped[list["GcnProperty"]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                               order_by="GcnProperty.id")
    gcn_triggers: Mapped[list["GcnTrigger"]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                            order_by="GcnTrigger.id")

    @property
    def tags(self) -> list[str]:
        return list(dict.fromkeys(t.text for t in self.gcn_tags))


class GcnNotice(Base, Timestamped):
    """Every raw notice, kept as received."""

    __tablename__ = "gcnnotices"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    ivorn: Mapped[str | None] = mapped_column(sa.String, unique=True)  # a notice is stored once
    notice_type: Mapped[str] = mapped_column(sa.String, nullable=False)  # e.g. LVC_PRELIMINARY, SWIFT_XRT_POSITION
    notice_format: Mapped[str] = mapped_column(sa.String, nullable=False)  # json | voevent | dictionary
    date: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # deferred: loaded when read (an LVK notice carries its sky map), never by listings
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, deferred=True)
    stream: Mapped[str | None] = mapped_column(sa.String)  # mission, e.g. SWIFT, LVC, WXT
    has_localization: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                                   server_default="false")
    localization_ingested: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                                        server_default="false")
    # a map the notice points to by URL (pending until fetched or POSTed; broker/sky/pending.py): the URL,
    # the last fetch error, how many tries, and when to try again
    skymap_url: Mapped[str | None] = mapped_column(sa.Text)
    skymap_error: Mapped[str | None] = mapped_column(sa.Text)
    skymap_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    skymap_retry_at: Mapped[datetime | None] = mapped_column(sa.DateTime)

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
    # maps of millions of pixels; deferred: loaded only when the map is read, never by listings
    uniq: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, deferred=True)
    probdensity: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, deferred=True)
    distmu: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    distsigma: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    distnorm: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    area_50: Mapped[float | None] = mapped_column(sa.Float)  # deg²
    area_90: Mapped[float | None] = mapped_column(sa.Float)
    notice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gcnnotices.id", ondelete="SET NULL"))
    contour: Mapped[dict | None] = mapped_column(JSONB, deferred=True)  # SkyPortal's GeoJSON 50%/90% contours

    event: Mapped[GcnEvent] = relationship(back_populates="localizations")
    tags: Mapped[list["LocalizationTag"]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                         order_by="LocalizationTag.id")
    properties: Mapped[list["LocalizationProperty"]] = relationship(cascade="all, delete-orphan",
                                                                    passive_deletes=True,
                                                                    order_by="LocalizationProperty.id")
    __private_columns__ = ("uniq", "probdensity", "distmu", "distsigma", "distnorm", "contour")
    __table_args__ = (sa.UniqueConstraint("dateobs", "localization_name", name="uq_localizations_dateobs_name"),)


class LocalizationTile(Base):
    """One tile of a localization: its depth-29 HEALPix range, probability, and the probability of it and
    every tile ranked before it (density, then UNIQ, descending: the kernel's ranking).

    Written only by ``broker.sky.gcn._write_tiles`` (binary COPY), in the transaction that creates the
    localization. The key (localization_id, cumprob, uniq) is the one index: a credible region is a range
    scan of it. There is no foreign key: its per-row check was most of the cost of storing a map of a million
    tiles; the rows go with their localization by the trigger ``localizations_delete_tiles`` (migration 0018)."""

    __tablename__ = "localizationtiles"
    localization_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    cumprob: Mapped[float] = mapped_column(sa.Float, primary_key=True)
    uniq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    healpix: Mapped[object] = mapped_column(healpix_alchemy.Tile, nullable=False)
    probdensity: Mapped[float] = mapped_column(sa.Float, nullable=False)
    prob: Mapped[float] = mapped_column(sa.Float, nullable=False)  # probdensity × pixel area


class ObjLocalization(Base):
    """An object inside a localization: its credible level and the map's density there."""

    __tablename__ = "obj_localizations"
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), primary_key=True)
    localization_id: Mapped[int] = mapped_column(sa.ForeignKey("localizations.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    credible_level: Mapped[float] = mapped_column(sa.Float, nullable=False)
    probdensity: Mapped[float] = mapped_column(sa.Float, nullable=False)


class GcnTag(Base, Timestamped):
    """A qualitative tag of an event (GW, GRB, Fermi, retracted, ...), as SkyPortal's GcnTag."""

    __tablename__ = "gcntags"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    text: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    sent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (sa.UniqueConstraint("dateobs", "text", name="uq_gcntags_dateobs_text"),)


class GcnProperty(Base, Timestamped):
    """Properties of an event from one notice or poster (FAR, classification, ...), as SkyPortal's."""

    __tablename__ = "gcnproperties"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)
    sent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class LocalizationTag(Base, Timestamped):
    """A tag of a localization (e.g. "< 1000 sq. deg."), as SkyPortal's."""

    __tablename__ = "localizationtags"
    id: Mapped[int] = mapped_column(primary_key=True)
    localization_id: Mapped[int] = mapped_column(sa.ForeignKey("localizations.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    text: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)


class LocalizationProperty(Base, Timestamped):
    """Properties of a localization (area_90, probability_500, distmean, ...), as SkyPortal's."""

    __tablename__ = "localizationproperties"
    id: Mapped[int] = mapped_column(primary_key=True)
    localization_id: Mapped[int] = mapped_column(sa.ForeignKey("localizations.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)


class GcnTrigger(Base, Timestamped):
    """Whether an allocation was triggered (or passed) for an event, as SkyPortal's GcnTrigger."""

    __tablename__ = "gcntriggers"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    triggered: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    __table_args__ = (sa.UniqueConstraint("dateobs", "allocation_id", name="uq_gcntriggers_dateobs_allocation"),)


GCN_EVENT_OBJ_STATUSES = ("pending", "confirmed", "ambiguous", "rejected")


class GcnEventObj(Base, Timestamped):
    """A source confirmed, rejected (...) as the counterpart of an event: SkyPortal's sources_in_gcn."""

    __tablename__ = "gcneventobjs"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="pending", server_default="pending")
    confirmer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    explanation: Mapped[str | None] = mapped_column(sa.String)
    notes: Mapped[str | None] = mapped_column(sa.String)
    __table_args__ = (sa.UniqueConstraint("dateobs", "obj_id", name="uq_gcneventobjs_dateobs_obj"),
                      sa.CheckConstraint("status IN ('pending', 'confirmed', 'ambiguous', 'rejected')",
                                         name="status"))


class GcnSummary(Base, Timestamped):
    """A text summary of an event (header, sources in a localization and their photometry) that a user wrote
    for one of their groups: SkyPortal's GcnSummary. Readable by the group's members."""

    __tablename__ = "gcnsummaries"
    id: Mapped[int] = mapped_column(primary_key=True)
    dateobs: Mapped[datetime] = mapped_column(sa.ForeignKey("gcnevents.dateobs", ondelete="CASCADE"),
                                              nullable=False, index=True)
    sent_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False,
                                          index=True)
    title: Mapped[str] = mapped_column(sa.String, nullable=False)
    text: Mapped[str] = mapped_column(sa.Unicode, nullable=False)
