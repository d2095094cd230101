"""Users, roles, ACLs and API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, lazyload, mapped_column, relationship

from .base import Base, Timestamped


class ACL(Base):
    """An access-control permission, identified by its SkyPortal name."""

    __tablename__ = "acls"
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)


class Role(Base, Timestamped):
    """A named bundle of ACLs ("Super admin", "Full user", ...)."""

    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    acls: Mapped[list[ACL]] = relationship(secondary="role_acls", lazy="selectin")


role_acls = sa.Table(
    "role_acls",
    Base.metadata,
    sa.Column("role_id", sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("acl_id", sa.ForeignKey("acls.id", ondelete="CASCADE"), primary_key=True),
)

user_roles = sa.Table(
    "user_roles",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role_id", sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

user_acls = sa.Table(
    "user_acls",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("acl_id", sa.ForeignKey("acls.id", ondelete="CASCADE"), primary_key=True),
)

token_acls = sa.Table(
    "token_acls",
    Base.metadata,
    sa.Column("token_id", sa.ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("acl_id", sa.ForeignKey("acls.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base, Timestamped):
    """A user, with SkyPortal's columns. ``to_dict`` leaves out ``preferences`` (as SkyPortal's does)."""

    __tablename__ = "users"
    __private_columns__ = ("preferences",)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    first_name: Mapped[str | None] = mapped_column(sa.String)
    last_name: Mapped[str | None] = mapped_column(sa.String)
    bio: Mapped[str | None] = mapped_column(sa.String)
    contact_email: Mapped[str | None] = mapped_column(sa.String)
    contact_phone: Mapped[str | None] = mapped_column(sa.String)  # E.164
    oauth_uid: Mapped[str | None] = mapped_column(sa.String, unique=True)
    preferences: Mapped[dict | None] = mapped_column(JSONB)
    is_bot: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    affiliations: Mapped[list[str]] = mapped_column(
        sa.ARRAY(sa.String), nullable=False, default=list
    )
    expiration_date: Mapped[datetime | None] = mapped_column(sa.DateTime)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")
    acls: Mapped[list[ACL]] = relationship(secondary=user_acls, lazy="selectin")
    tokens: Mapped[list["Token"]] = relationship(
        back_populates="created_by", cascade="all, delete-orphan", passive_deletes=True
    )

    @classmethod
    def names_only(cls) -> tuple:
        """Loader options for a query that needs users' names only: their roles and ACLs (loaded eagerly
        by default, two more queries per statement) are left unloaded."""
        return (lazyload(cls.roles), lazyload(cls.acls))

    @property
    def permissions(self) -> set[str]:
        """Every ACL the user holds, directly or through a role."""
        perms = {a.id for a in self.acls}
        for role in self.roles:
            perms.update(a.id for a in role.acls)
        return perms

    @property
    def is_system_admin(self) -> bool:
        return "System admin" in self.permissions


class Token(Base, Timestamped):
    """An API token: a UUID string, its own ACLs (a subset of its owner's), an owner."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(
        sa.String, primary_key=True, default=lambda: str(uuid.uuid4())
    )
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_by_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_by: Mapped[User] = relationship(back_populates="tokens", lazy="joined")
    acls: Mapped[list[ACL]] = relationship(secondary=token_acls, lazy="selectin")

    __table_args__ = (sa.UniqueConstraint("created_by_id", "name", name="uq_tokens_owner_name"),)

    @property
    def permissions(self) -> set[str]:
        """Token ACLs, never more than the owner holds now."""
        owner = self.created_by.permissions
        mine = {a.id for a in self.acls}
        if "System admin" in owner:
            return mine
        return mine & owner
