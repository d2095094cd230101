"""Taxonomies and classifications of objects."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, utcnow
from .groups import Group

taxonomy_groups = sa.Table(
    "taxonomy_groups",
    Base.metadata,
    sa.Column("taxonomy_id", sa.ForeignKey("taxonomies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

classification_groups = sa.Table(
    "classification_groups",
    Base.metadata,
    sa.Column(
        "classification_id", sa.ForeignKey("classifications.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)


class Taxonomy(Base, Timestamped):
    """A class hierarchy (tdtax-style JSON) that classifications must come from."""

    __tablename__ = "taxonomies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    hierarchy: Mapped[dict] = mapped_column(JSONB, nullable=False)
    provenance: Mapped[str | None] = mapped_column(sa.String)
    version: Mapped[str] = mapped_column(sa.String, nullable=False)
    isLatest: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)

    groups: Mapped[list[Group]] = relationship(secondary=taxonomy_groups)

    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_taxonomies_name_version"),)


class Classification(Base, Timestamped):
    __tablename__ = "classifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    classification: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    taxonomy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("taxonomies.id", ondelete="CASCADE"), nullable=False, index=True
    )
    probability: Mapped[float | None] = mapped_column(sa.Float)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    obj_id: Mapped[str] = mapped_column(
        sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    origin: Mapped[str | None] = mapped_column(sa.String)
    ml: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)

    taxonomy: Mapped[Taxonomy] = relationship()
    groups: Mapped[list[Group]] = relationship(secondary=classification_groups)

    __table_args__ = (
        sa.CheckConstraint("probability IS NULL OR (probability >= 0 AND probability <= 1)",
                           name="probability_range"),
        # Machine classifications from a stream (no author): one row per (obj, taxonomy, class, origin),
        # updated. Users' rows (an author, ml or not) never merge with them, nor reveal them.
        sa.Index("uq_classifications_ml", "obj_id", "taxonomy_id", "classification", "origin",
                 unique=True, postgresql_where=sa.text("ml AND author_id IS NULL")),
    )


class ClassificationVote(Base):
    """A user's up (+1) or down (-1) vote on a classification."""

    __tablename__ = "classification_votes"
    id: Mapped[int] = mapped_column(primary_key=True)
    classification_id: Mapped[int] = mapped_column(
        sa.ForeignKey("classifications.id", ondelete="CASCADE"), nullable=False, index=True
    )
    voter_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    vote: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("classification_id", "voter_id", name="uq_classification_votes_voter"),
        sa.CheckConstraint("vote IN (-1, 1)", name="vote_value"),
    )
