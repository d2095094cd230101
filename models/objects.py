"""Sky objects and what hangs off them: candidates, sources, photometry."""

from __future__ import annotations

from datetime import datetime

import healpix_alchemy
import numpy as np
import sqlalchemy as sa
from astropy import units as u
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, utcnow
from .filters import Filter
from .groups import Group
from .users import User


def healpix_index(ra, dec):
    """HEALPix index (healpix-alchemy's nested depth-29 grid) of positions.

    ``ra``, ``dec`` in degrees (scalars or arrays); returns int64 of the same shape.
    """
    from healpix_alchemy.constants import HPX

    ipix = HPX.lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)
    return np.asarray(ipix, dtype=np.int64)


class Obj(Base, Timestamped):
    """An astronomical object, keyed by its survey name (e.g. ``ZTF21abcdefg``)."""

    __tablename__ = "objs"
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    ra: Mapped[float] = mapped_column(sa.Float, nullable=False)
    # indexed: positional association scans a narrow declination band
    dec: Mapped[float] = mapped_column(sa.Float, nullable=False, index=True)
    ra_dis: Mapped[float | None] = mapped_column(sa.Float)
    dec_dis: Mapped[float | None] = mapped_column(sa.Float)
    redshift: Mapped[float | None] = mapped_column(sa.Float, index=True)
    redshift_error: Mapped[float | None] = mapped_column(sa.Float)
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    healpix: Mapped[int] = mapped_column(healpix_alchemy.Point, nullable=False, index=True)

    __table_args__ = (
        sa.CheckConstraint("ra >= 0 AND ra < 360", name="ra_range"),
        sa.CheckConstraint("dec >= -90 AND dec <= 90", name="dec_range"),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.healpix is None and self.ra is not None and self.dec is not None:
            self.healpix = int(healpix_index(self.ra, self.dec))


class Candidate(Base, Timestamped):
    """An alert on an object that passed a filter."""

    __tablename__ = "candidates"
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(
        sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    filter_id: Mapped[int] = mapped_column(
        sa.ForeignKey("filters.id", ondelete="CASCADE"), nullable=False, index=True
    )
    passed_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, index=True)
    passing_alert_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    uploader_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    obj: Mapped[Obj] = relationship()
    filter: Mapped[Filter] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("obj_id", "filter_id", "passed_at", name="uq_candidates_obj_filter_passed"),
    )


class Source(Base, Timestamped):
    """An object saved to a group."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(
        sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True
    )
    saved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    requested: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    unsaved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    unsaved_at: Mapped[datetime | None] = mapped_column(sa.DateTime)

    obj: Mapped[Obj] = relationship()
    group: Mapped[Group] = relationship()
    saved_by: Mapped[User | None] = relationship(foreign_keys=[saved_by_id])

    __table_args__ = (sa.UniqueConstraint("obj_id", "group_id", name="uq_sources_obj_group"),)


photometry_groups = sa.Table(
    "photometry_groups",
    Base.metadata,
    sa.Column("photometry_id", sa.ForeignKey("photometry.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)


class Photometry(Base, Timestamped):
    """One flux measurement (µJy-normalised through ``zp``/``magsys``) or upper limit.

    Visible to the groups in ``photometry_groups`` (uploads) and, for alert photometry, to the
    groups that can read the stream it came from (``stream_id``).
    """

    __tablename__ = "photometry"
    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: uq_photometry_point leads with obj_id
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False)
    # not indexed (the most-written table; nothing queries photometry by creation time)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, nullable=False)
    stream_id: Mapped[int | None] = mapped_column(sa.ForeignKey("streams.id", ondelete="SET NULL"))
    mjd: Mapped[float] = mapped_column(sa.Float, nullable=False)
    # Flux in the system given by zp/magsys; null for an upper limit (non-detection).
    flux: Mapped[float | None] = mapped_column(sa.Float)
    fluxerr: Mapped[float] = mapped_column(sa.Float, nullable=False)
    zp: Mapped[float] = mapped_column(sa.Float, nullable=False, default=23.9)
    magsys: Mapped[str] = mapped_column(sa.String, nullable=False, default="ab")
    filter: Mapped[str] = mapped_column(sa.String, nullable=False)
    limiting_mag: Mapped[float | None] = mapped_column(sa.Float)
    ra: Mapped[float | None] = mapped_column(sa.Float)
    dec: Mapped[float | None] = mapped_column(sa.Float)
    ra_unc: Mapped[float | None] = mapped_column(sa.Float)
    dec_unc: Mapped[float | None] = mapped_column(sa.Float)
    # Together with obj, filter, mjd and instrument, origin identifies a point: the same point
    # arriving twice (redelivery, two streams of one survey) is stored once.
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="", server_default="")
    instrument_name: Mapped[str] = mapped_column(sa.String, nullable=False, default="", server_default="")
    alert_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Whose copy of a point this is, for de-duplication: 0 for alert photometry (one copy, shared through
    # streams); the uploader's user id for uploads, so an upload never merges into a point of groups
    # the uploader cannot see (it reuses a visible one, else gets its own row). Not a foreign key: it
    # outlives its user, as the point does.
    dedup_scope: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0, server_default="0")

    groups: Mapped[list[Group]] = relationship(secondary=photometry_groups)

    __table_args__ = (
        sa.UniqueConstraint("obj_id", "filter", "mjd", "instrument_name", "origin", "dedup_scope",
                            name="uq_photometry_point"),
    )
