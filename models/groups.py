"""Groups, their members and the streams they may read."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from typing import TYPE_CHECKING

from .base import Base, Timestamped
from .users import User

if TYPE_CHECKING:
    from .filters import Filter
    from .streams import Stream


class Group(Base, Timestamped):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    nickname: Mapped[str | None] = mapped_column(sa.String, unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    private: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    single_user_group: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    # SkyPortal: requests to join the group are accepted without an admin (migration 0010)
    auto_accept_requests: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                                       server_default=sa.text("false"))

    group_users: Mapped[list["GroupUser"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True
    )
    streams: Mapped[list["Stream"]] = relationship(
        secondary="group_streams", back_populates="groups"
    )
    # every filter of the group (the database deletes them with it)
    filters: Mapped[list["Filter"]] = relationship(order_by="Filter.id", viewonly=True)


class GroupUser(Base, Timestamped):
    """Membership of a user in a group: ``admin`` manages the group, ``can_save`` saves sources."""

    __tablename__ = "group_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    admin: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    can_save: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    # SkyPortal: may share others' photometry with other groups (migration 0010)
    can_share_photometry: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                                       server_default=sa.text("false"))

    group: Mapped[Group] = relationship(back_populates="group_users")
    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (sa.UniqueConstraint("group_id", "user_id", name="uq_group_users_group_user"),)


group_streams = sa.Table(
    "group_streams",
    Base.metadata,
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("stream_id", sa.ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True),
)
