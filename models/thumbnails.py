"""Thumbnails: small PNG images centred on an object (alert cutouts: new / ref / sub).

The PNG bytes live in the row (``data``, never serialised), not in files: a thumbnail is written in the
same transaction as the alert it came from (a rolled-back or redelivered batch leaves no orphan file
and writes nothing twice), it goes when its object goes (ON DELETE CASCADE), and every API process
and ingestion worker reads it from the database without a shared disk. ``public_url`` points at
``/api/thumbnail/{id}/image``, which serves the bytes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column

from .base import Base, Timestamped


class Thumbnail(Base, Timestamped):
    __tablename__ = "thumbnails"
    __private_columns__ = ("data",)
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False)
    type: Mapped[str] = mapped_column(sa.String, nullable=False)
    file_uri: Mapped[str | None] = mapped_column(sa.String)
    public_url: Mapped[str | None] = mapped_column(sa.String)
    origin: Mapped[str | None] = mapped_column(sa.String)
    survey: Mapped[str | None] = mapped_column(sa.String)
    is_grayscale: Mapped[bool | None] = mapped_column(sa.Boolean)
    # the alert whose cutout this is (ingestion); null for uploads
    alert_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    data: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))

    __table_args__ = (
        sa.Index("ix_thumbnails_obj_id_type", "obj_id", "type"),
        # ingestion keeps the first alert's cutouts of an object (as Kowalski posts them once, for a new
        # object): one per (object, survey, type), whatever the number of consumers
        sa.Index("uq_thumbnails_alert", "obj_id", "survey", "type", unique=True,
                 postgresql_where=sa.text("alert_id IS NOT NULL")),
    )
