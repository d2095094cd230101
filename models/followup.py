"""Telescopes, instruments, allocations and follow-up requests with their facility exchanges."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, utcnow
from .groups import Group
from .objects import Obj
from .users import User


class FollowupStatus(str, enum.Enum):
    """Where a follow-up request stands. The facility's own words go to ``status_message``."""

    pending = "pending"  # created, not yet accepted by the facility
    submitted = "submitted"  # accepted, waiting to be scheduled
    scheduled = "scheduled"  # the facility has scheduled observations
    completed = "completed"
    expired = "expired"  # the windows passed without an observation
    failed = "failed"  # the facility gave up (e.g. failure limit reached)
    cancelled = "cancelled"
    rejected = "rejected"  # the facility refused the request (its messages in status_message)
    error = "error"  # could not be submitted (facility unavailable after retries)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({FollowupStatus.completed, FollowupStatus.expired, FollowupStatus.failed,
                               FollowupStatus.cancelled, FollowupStatus.rejected, FollowupStatus.error})

_status_enum = sa.Enum(FollowupStatus, name="followup_status", values_callable=lambda e: [m.value for m in e])


class Telescope(Base, Timestamped):
    __tablename__ = "telescopes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    nickname: Mapped[str] = mapped_column(sa.String, nullable=False)
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lon: Mapped[float | None] = mapped_column(sa.Float)
    elevation: Mapped[float | None] = mapped_column(sa.Float)
    diameter: Mapped[float] = mapped_column(sa.Float, nullable=False)  # metres
    robotic: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    fixed_location: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True,
                                                 server_default=sa.text("true"))
    # SkyPortal's other telescope columns (migration 0010)
    skycam_link: Mapped[str | None] = mapped_column(sa.String)  # the telescope's sky camera
    weather_link: Mapped[str | None] = mapped_column(sa.String)  # the preferred weather site
    mpc_obscode: Mapped[str | None] = mapped_column(sa.String)  # Minor Planet Center observatory code


class Instrument(Base, Timestamped):
    __tablename__ = "instruments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    type: Mapped[str] = mapped_column(sa.String, nullable=False)  # imager | spectrograph | imaging spectrograph
    band: Mapped[str | None] = mapped_column(sa.String)
    filters: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    telescope_id: Mapped[int] = mapped_column(sa.ForeignKey("telescopes.id", ondelete="CASCADE"), nullable=False,
                                              index=True)
    # the facility adapter that submits requests for it (e.g. "LCO") and its callback listener
    api_classname: Mapped[str | None] = mapped_column(sa.String)
    listener_classname: Mapped[str | None] = mapped_column(sa.String)
    # SkyPortal's other instrument columns (migration 0010)
    # {filter: {"limiting_magnitude", "magsys", "exposure_time"}}; keys among ``filters``
    sensitivity_data: Mapped[dict | None] = mapped_column(JSONB)
    # {"filt_change_time", "readout", "overhead_per_exposure", "slew_rate", ...}
    configuration_data: Mapped[dict | None] = mapped_column(JSONB)
    status: Mapped[dict | None] = mapped_column(JSONB)  # latest status, as the facility reports it
    last_status_update: Mapped[datetime | None] = mapped_column(sa.DateTime)
    api_classname_obsplan: Mapped[str | None] = mapped_column(sa.String)  # observation-plan adapter
    treasuremap_id: Mapped[int | None] = mapped_column(sa.Integer)  # treasuremap.space instrument id
    tns_id: Mapped[int | None] = mapped_column(sa.Integer)  # TNS instrument id
    across_id: Mapped[str | None] = mapped_column(sa.String, index=True)  # NASA ACROSS instrument UUID
    region: Mapped[str | None] = mapped_column(sa.String)  # field shape, a DS9 region string
    has_fields: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                             server_default=sa.text("false"))
    has_region: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                             server_default=sa.text("false"))

    telescope: Mapped[Telescope] = relationship(lazy="joined")


class Allocation(Base, Timestamped):
    """Time on an instrument for a group. ``_altdata`` holds encrypted facility credentials."""

    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    pi: Mapped[str | None] = mapped_column(sa.String)
    proposal_id: Mapped[str | None] = mapped_column(sa.String)
    hours_allocated: Mapped[float] = mapped_column(sa.Float, nullable=False)
    start_date: Mapped[datetime | None] = mapped_column(sa.DateTime)
    end_date: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # Fernet token of the JSON credentials; never serialised
    _altdata: Mapped[str | None] = mapped_column("altdata", sa.Text)
    # SkyPortal's: [{start_date, end_date}] a request's window must lie in; groups data is shared with; its uses
    validity_ranges: Mapped[list | None] = mapped_column(JSONB)
    default_share_group_ids: Mapped[list | None] = mapped_column(JSONB)
    types: Mapped[list] = mapped_column(JSONB, nullable=False, default=lambda: ["triggered"],
                                        server_default=sa.text("'[\"triggered\"]'::jsonb"))

    group: Mapped[Group] = relationship(lazy="joined")
    instrument: Mapped[Instrument] = relationship(lazy="joined")

    __private_columns__ = ("_altdata",)
    __table_args__ = (sa.CheckConstraint("hours_allocated >= 0", name="hours_nonnegative"),)


followup_target_groups = sa.Table(
    "followup_request_target_groups",
    Base.metadata,
    sa.Column("followuprequest_id", sa.ForeignKey("followup_requests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

followup_watchers = sa.Table(
    "followup_request_watchers",
    Base.metadata,
    sa.Column("followuprequest_id", sa.ForeignKey("followup_requests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class FollowupRequest(Base, Timestamped):
    __tablename__ = "followup_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    requester_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    status: Mapped[FollowupStatus] = mapped_column(_status_enum, nullable=False, default=FollowupStatus.pending,
                                                   index=True)
    status_message: Mapped[str | None] = mapped_column(sa.Text)
    # the facility's ids: LCO request group id, its request ids
    remote_id: Mapped[str | None] = mapped_column(sa.String, index=True)
    remote_request_ids: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    remote_name: Mapped[str | None] = mapped_column(sa.String)
    revision: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    priority: Mapped[float | None] = mapped_column(sa.Float)
    last_polled_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # observing time the facility debits (seconds), from its answer or our estimate
    duration_s: Mapped[float | None] = mapped_column(sa.Float)
    # data products of a completed request (from the facility's archive)
    frames: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    default_followup_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("default_followup_requests.id", ondelete="SET NULL"))
    # SkyPortal's: a free comment (PUT /api/followup_request/{id}/comment), who changed it last, and a status
    # set by people or a listener in SkyPortal's words (GENERICAPI, SEDMAPI; null: derived from ``status``)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    last_modified_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    status_text: Mapped[str | None] = mapped_column(sa.Text)

    obj: Mapped[Obj] = relationship(lazy="joined")
    allocation: Mapped[Allocation] = relationship(lazy="joined")
    requester: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[requester_id])
    target_groups: Mapped[list[Group]] = relationship(secondary=followup_target_groups)
    watchers: Mapped[list[User]] = relationship(secondary=followup_watchers)


class FacilityTransaction(Base):
    """One HTTP exchange with a facility, credentials redacted."""

    __tablename__ = "facility_transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow, index=True)
    followup_request_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("followup_requests.id", ondelete="CASCADE"), index=True)
    initiator_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String, nullable=False)  # submit, cancel, refresh, lookup, callback...
    request: Mapped[dict] = mapped_column(JSONB, nullable=False)  # method, url, headers (redacted), body
    response: Mapped[dict | None] = mapped_column(JSONB)  # status code, body; or the error


class FollowupStatusChange(Base):
    """A request's status history: one row each time its status (or a person's or listener's words for it)
    changes, written by a database trigger, so every path that changes it is recorded, the first status at
    insert included."""

    __tablename__ = "followup_status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    followup_request_id: Mapped[int] = mapped_column(  # (the convention's name would pass 63 characters)
        sa.ForeignKey("followup_requests.id", ondelete="CASCADE", name="fk_followup_status_changes_request"),
        nullable=False, index=True)
    status: Mapped[FollowupStatus] = mapped_column(_status_enum, nullable=False)
    status_text: Mapped[str | None] = mapped_column(sa.Text)  # a person's or listener's words for it
    status_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)


class DefaultFollowupRequest(Base, Timestamped):
    """A rule: when an object passes a filter or is saved to a group, submit this follow-up once."""

    __tablename__ = "default_followup_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    default_followup_name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    requester_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    # {"filter_ids": [...], "group_ids": [...], "classifications": [...]}: when it fires
    source_filter: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    target_group_ids: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    # SkyPortal's: a comment posted with each request it makes; the constraints checked before it submits
    # (not_if_duplicates, ...); whether higher priorities are better ("asc"); the window length in days
    comment: Mapped[str | None] = mapped_column(sa.Text)
    constraints: Mapped[dict | None] = mapped_column(JSONB)
    priority_order: Mapped[str | None] = mapped_column(sa.String)
    validity_days: Mapped[int | None] = mapped_column(sa.Integer)
    implements_update: Mapped[bool | None] = mapped_column(sa.Boolean)

    allocation: Mapped[Allocation] = relationship(lazy="joined")


class DefaultFollowupFired(Base):
    """Each (rule, object) once: the unique key makes auto-triggering idempotent."""

    __tablename__ = "default_followup_fired"
    default_followup_id: Mapped[int] = mapped_column(
        sa.ForeignKey("default_followup_requests.id", ondelete="CASCADE"), primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), primary_key=True)
    followup_request_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("followup_requests.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)
