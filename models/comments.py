"""Comments on sources and on spectra, as SkyPortal: readable by members of their groups who can see
the object; edited or deleted by their author (or a system admin). An attachment's bytes are kept in
the row (``attachment_bytes``, never serialised)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, deferred, mapped_column, relationship

from .base import Base, Timestamped
from .groups import Group
from .users import User

group_comments = sa.Table(
    "group_comments",
    Base.metadata,
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("comment_id", sa.ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True, index=True),
)
group_comments_on_spectra = sa.Table(
    "group_comments_on_spectra",
    Base.metadata,
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("comment_id", sa.ForeignKey("comments_on_spectra.id", ondelete="CASCADE"), primary_key=True,
              index=True),
)


class CommentMixin(Timestamped):
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    attachment_name: Mapped[str | None] = mapped_column(sa.String)
    origin: Mapped[str | None] = mapped_column(sa.String)
    bot: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default="false")

    @declared_attr
    def attachment_bytes(cls) -> Mapped[bytes | None]:
        return deferred(mapped_column(sa.LargeBinary))

    @declared_attr
    def author_id(cls) -> Mapped[int]:
        return mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)

    @declared_attr
    def obj_id(cls) -> Mapped[str]:
        return mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), nullable=False, index=True)

    @declared_attr
    def author(cls) -> Mapped[User]:
        return relationship(lazy="joined")


class Comment(Base, CommentMixin):
    __tablename__ = "comments"
    __private_columns__ = ("attachment_bytes",)
    # a named conversation on the source; NULL: the main thread
    channel: Mapped[str | None] = mapped_column(sa.String, index=True)
    system: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default="false")
    groups: Mapped[list[Group]] = relationship(secondary=group_comments)


class CommentOnSpectrum(Base, CommentMixin):
    __tablename__ = "comments_on_spectra"
    __private_columns__ = ("attachment_bytes",)
    spectrum_id: Mapped[int] = mapped_column(sa.ForeignKey("spectra.id", ondelete="CASCADE"), nullable=False,
                                             index=True)
    groups: Mapped[list[Group]] = relationship(secondary=group_comments_on_spectra)
