"""Sky objects and what hangs off them: candidates, sources, photometry."""

from __future__ import annotations

import re
from datetime import datetime

import healpix_alchemy
import numpy as np
import sqlalchemy as sa
import sqlalchemy.orm
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
    ra: Mapped[float] = mapped_column(sa.Float, nullable=False, index=True)  # indexed: candidates sort by it
    # indexed: positional association scans a narrow declination band
    dec: Mapped[float] = mapped_column(sa.Float, nullable=False, index=True)
    ra_dis: Mapped[float | None] = mapped_column(sa.Float)
    dec_dis: Mapped[float | None] = mapped_column(sa.Float)
    redshift: Mapped[float | None] = mapped_column(sa.Float, index=True)
    redshift_error: Mapped[float | None] = mapped_column(sa.Float)
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    healpix: Mapped[int] = mapped_column(healpix_alchemy.Point, nullable=False, index=True)
    # SkyPortal's other Obj columns (migration 0011), with its meanings
    ra_err: Mapped[float | None] = mapped_column(sa.Float)  # error on ra at discovery [deg]
    dec_err: Mapped[float | None] = mapped_column(sa.Float)  # error on dec at discovery [deg]
    # from the nearest static object [arcsec]
    offset: Mapped[float | None] = mapped_column(sa.Float, default=0.0, server_default="0")
    t0: Mapped[float | None] = mapped_column(sa.Float)  # reference time
    redshift_origin: Mapped[str | None] = mapped_column(sa.String)
    redshift_history: Mapped[list | None] = mapped_column(JSONB)  # who set which redshift, when
    summary: Mapped[str | None] = mapped_column(sa.String)
    summary_history: Mapped[list | None] = mapped_column(JSONB)
    dist_nearest_source: Mapped[float | None] = mapped_column(sa.Float)  # [arcsec]
    mag_nearest_source: Mapped[float | None] = mapped_column(sa.Float)  # [AB mag]
    e_mag_nearest_source: Mapped[float | None] = mapped_column(sa.Float)
    transient: Mapped[bool | None] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    varstar: Mapped[bool | None] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # a moving object
    is_roid: Mapped[bool | None] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    mpc_name: Mapped[str | None] = mapped_column(sa.String)
    tns_name: Mapped[str | None] = mapped_column(sa.String, index=True)
    tns_info: Mapped[dict | None] = mapped_column(JSONB)
    score: Mapped[float | None] = mapped_column(sa.Float)  # machine-learning score
    origin: Mapped[str | None] = mapped_column(sa.String)
    alias: Mapped[list[str] | None] = mapped_column(sa.ARRAY(sa.String))
    detect_photometry_count: Mapped[int | None] = mapped_column(sa.Integer)

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
    # (obj_id leads uq_candidates_obj_filter_passed, filter_id ix_candidates_filter_passed)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False)
    filter_id: Mapped[int] = mapped_column(sa.ForeignKey("filters.id", ondelete="CASCADE"), nullable=False)
    passed_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, index=True)
    passing_alert_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    uploader_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    obj: Mapped[Obj] = relationship()
    filter: Mapped[Filter] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("obj_id", "filter_id", "passed_at", name="uq_candidates_obj_filter_passed"),
        # a filter's candidates newest first, read from the index alone (the candidates list, page by page)
        sa.Index("ix_candidates_filter_passed", "filter_id", sa.text("passed_at DESC"), "obj_id"),
    )


class CandidateFilterObj(Base):
    """A (filter, object) pair with at least one candidate row, and its latest pass; kept by triggers on
    ``candidates`` (migration 0019). No foreign keys: the triggers remove a pair when its last candidate goes."""

    __tablename__ = "candidate_filter_objs"
    filter_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    last_passed_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False)

    # a filter's objects, latest pass first: a page of the candidates list is a slice of it
    __table_args__ = (sa.Index("ix_candidate_filter_objs_latest", "filter_id", sa.text("last_passed_at DESC"),
                               "obj_id"),)


class CandidateCount(Base):
    """Objects per filter as insert-only deltas (+n for new pairs, -n for pairs gone), written by the
    triggers on ``candidates``; a filter's count is the sum of its rows. The worker folds them into one
    row per filter (broker.objects.objs.fold_candidate_counts)."""

    __tablename__ = "candidate_counts"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    filter_id: Mapped[int] = mapped_column(sa.Integer, nullable=False, index=True)
    n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


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


# photometry is partitioned (by mjd, migration 0020): nothing can hold a foreign key to its id alone, so
# the tables naming points have none; a statement trigger on photometry deletes their rows with the points.
photometry_groups = sa.Table(
    "photometry_groups",
    Base.metadata,
    sa.Column("photometry_id", sa.BigInteger, primary_key=True),
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

# photometry's partitions (migration 0020: a month each from the month before the upgrade, made ahead by the
# worker; the archive before; the default for anything else): tables of the database that the models do not list
PHOTOMETRY_PARTITION = re.compile(r"^photometry_(\d{4}_\d{2}|archive|default)$")


def not_a_partition(name, type_, parent) -> bool:
    """Alembic's ``include_name`` that leaves photometry's partitions out of a schema comparison."""
    return not (type_ == "table" and PHOTOMETRY_PARTITION.match(name or ""))


class Photometry(Base, Timestamped):
    """One flux measurement in µJy (AB, zero point 23.9, as SkyPortal stores it) or an upper limit.

    Visible to the groups in ``photometry_groups``, to the groups that read a stream in
    ``photometry_streams`` or, for alert photometry, the stream it came from (``stream_id``), and to
    its owner.
    """

    __tablename__ = "photometry"
    # the table's key is (id, mjd), as a partitioned table's must hold its partition key; id alone is unique
    # (one sequence) and is the mapper's key
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    # no index of its own: uq_photometry_point leads with obj_id
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False)
    # not indexed (the most-written table; nothing queries photometry by creation time)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, nullable=False)
    stream_id: Mapped[int | None] = mapped_column(sa.ForeignKey("streams.id", ondelete="SET NULL"))
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    mjd: Mapped[float] = mapped_column(sa.Float, primary_key=True)  # the partition key
    # Flux in µJy (AB); null for an upper limit (non-detection). zp/magsys are always 23.9/ab.
    flux: Mapped[float | None] = mapped_column(sa.Float)
    fluxerr: Mapped[float] = mapped_column(sa.Float, nullable=False)
    zp: Mapped[float] = mapped_column(sa.Float, nullable=False, default=23.9)
    magsys: Mapped[str] = mapped_column(sa.String, nullable=False, default="ab")
    filter: Mapped[str] = mapped_column(sa.String, nullable=False)
    # AB limiting magnitude, when the survey or uploader gave one
    limiting_mag: Mapped[float | None] = mapped_column(sa.Float)
    ra: Mapped[float | None] = mapped_column(sa.Float)
    dec: Mapped[float | None] = mapped_column(sa.Float)
    ra_unc: Mapped[float | None] = mapped_column(sa.Float)
    dec_unc: Mapped[float | None] = mapped_column(sa.Float)
    ref_flux: Mapped[float | None] = mapped_column(sa.Float)  # µJy
    ref_fluxerr: Mapped[float | None] = mapped_column(sa.Float)
    # what the uploader gave that the µJy columns do not keep (limiting_mag, magsys, limiting_mag_nsigma)
    original_user_data: Mapped[dict | None] = mapped_column(JSONB)
    # the upload (one request) that created the point, for bulk deletes
    upload_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True,
                                           server_default=sa.text("gen_random_uuid()::text"))
    # Together with obj, instrument, mjd, fluxerr and flux, origin identifies a point (SkyPortal's
    # deduplication index): the same point arriving twice is stored once.
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="", server_default="")
    # the instrument's name when the point was written (ours; responses name the instrument itself)
    instrument_name: Mapped[str] = mapped_column(sa.String, nullable=False, default="", server_default="")
    alert_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Whose copy of a point this is, for de-duplication: 0 for alert photometry (one copy, shared through
    # streams); the uploader's user id for uploads, so an upload never merges into a point of groups
    # the uploader cannot see (it reuses a visible one, else gets its own row). Not a foreign key: it
    # outlives its user, as the point does.
    dedup_scope: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0, server_default="0")

    groups: Mapped[list[Group]] = relationship(
        secondary=photometry_groups,
        primaryjoin=lambda: Photometry.id == sa.orm.foreign(photometry_groups.c.photometry_id),
        secondaryjoin=lambda: Group.id == sa.orm.foreign(photometry_groups.c.group_id))

    __table_args__ = (
        sa.UniqueConstraint("obj_id", "instrument_id", "origin", "mjd", "fluxerr", "flux", "dedup_scope",
                            name="uq_photometry_point", postgresql_nulls_not_distinct=True),
        {"postgresql_partition_by": "RANGE (mjd)"},
    )
    __mapper_args__ = {"primary_key": [id]}


photometry_streams = sa.Table(
    "photometry_streams",
    Base.metadata,
    sa.Column("photometry_id", sa.BigInteger, primary_key=True),
    sa.Column("stream_id", sa.ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True, index=True),
)
