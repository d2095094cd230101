"""Spectra (SkyPortal's ``spectra``), the groups that see them and their points of contact."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .base import Base, Timestamped
from .followup import Instrument
from .groups import Group
from .users import User

group_spectra = sa.Table(
    "group_spectra",
    Base.metadata,
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("spectrum_id", sa.ForeignKey("spectra.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# SkyPortal's spectrum_pis / spectrum_reducers / spectrum_observers in one table: ``role`` says which.
# ``external`` is the free-text external_pi / external_reducer / external_observer.
spectrum_users = sa.Table(
    "spectrum_users",
    Base.metadata,
    sa.Column("spectrum_id", sa.ForeignKey("spectra.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("role", sa.String, primary_key=True),
    sa.Column("external", sa.String),
    sa.CheckConstraint("role IN ('pi', 'reducer', 'observer')", name="role"),
)


class Spectrum(Base, Timestamped):
    """Flux against wavelength of an object, readable by the members of its groups; the owner
    (or a system admin) may change or delete it."""

    __tablename__ = "spectra"
    __private_columns__ = ("original_file_string",)
    id: Mapped[int] = mapped_column(primary_key=True)
    wavelengths: Mapped[list[float]] = mapped_column(ARRAY(sa.Float), nullable=False)
    fluxes: Mapped[list[float]] = mapped_column(ARRAY(sa.Float), nullable=False)
    errors: Mapped[list[float] | None] = mapped_column(ARRAY(sa.Float))
    units: Mapped[str | None] = mapped_column(sa.String)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)
    observed_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, index=True)
    origin: Mapped[str | None] = mapped_column(sa.String)
    type: Mapped[str] = mapped_column(sa.String, nullable=False, default="source")
    label: Mapped[str | None] = mapped_column(sa.String)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    followup_request_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("followup_requests.id", ondelete="SET NULL"))
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    # the uploaded file, opt-in in responses (includeOriginalFile)
    original_file_string: Mapped[str | None] = deferred(mapped_column(sa.Text))
    original_file_filename: Mapped[str | None] = mapped_column(sa.String)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)

    instrument: Mapped[Instrument] = relationship(lazy="joined")
    groups: Mapped[list[Group]] = relationship(secondary=group_spectra)
    owner: Mapped[User] = relationship(foreign_keys=[owner_id])

    __table_args__ = (
        sa.CheckConstraint("type IN ('source', 'host', 'host_center')", name="type"),
        sa.CheckConstraint("units IS NULL OR units IN ('Jy', 'AB', 'erg/s/cm/cm/AA')", name="units"),
    )
