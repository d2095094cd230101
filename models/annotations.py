"""Annotations: {key: value} data from one origin on a source, a spectrum or a photometry point.

As SkyPortal: one annotation per origin and resource; readable by members of its groups who can see
the object (and the spectrum / point); changed or deleted by its author (or a system admin).
Alert ingestion writes annotations without an author (``author_id`` null).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from .base import Base, Timestamped
from .groups import Group


def _group_table(name: str, fk: str) -> sa.Table:
    return sa.Table(
        name,
        Base.metadata,
        sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("annotation_id", sa.ForeignKey(f"{fk}.id", ondelete="CASCADE"), primary_key=True, index=True),
    )


group_annotations = _group_table("group_annotations", "annotations")
group_annotations_on_spectra = _group_table("group_annotations_on_spectra", "annotations_on_spectra")
group_annotations_on_photometry = _group_table("group_annotations_on_photometry", "annotations_on_photometry")


class AnnotationMixin(Timestamped):
    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)

    @declared_attr
    def author_id(cls) -> Mapped[int | None]:
        return mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def obj_id(cls) -> Mapped[str]:
        return mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)


class Annotation(Base, AnnotationMixin):
    __tablename__ = "annotations"
    groups: Mapped[list[Group]] = relationship(secondary=group_annotations)
    __table_args__ = (sa.UniqueConstraint("obj_id", "origin", name="uq_annotations_obj_origin"),)


class AnnotationOnSpectrum(Base, AnnotationMixin):
    __tablename__ = "annotations_on_spectra"
    spectrum_id: Mapped[int] = mapped_column(sa.ForeignKey("spectra.id", ondelete="CASCADE"), nullable=False,
                                             index=True)
    groups: Mapped[list[Group]] = relationship(secondary=group_annotations_on_spectra)
    __table_args__ = (sa.UniqueConstraint("spectrum_id", "origin", name="uq_annotations_on_spectra_spectrum_origin"),)


class AnnotationOnPhotometry(Base, AnnotationMixin):
    __tablename__ = "annotations_on_photometry"
    # no foreign key (photometry is partitioned, migration 0020): its trigger deletes these with the point
    photometry_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)
    groups: Mapped[list[Group]] = relationship(secondary=group_annotations_on_photometry)
    __table_args__ = (sa.UniqueConstraint("photometry_id", "origin",
                                          name="uq_annotations_on_photometry_photometry_origin"),)
