"""Declarative base shared by every model module."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    # Columns never serialised into API output (secrets, internal keys).
    __private_columns__: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Column values as a JSON-ready dict (datetimes as ISO-8601 UTC)."""
        out = {}
        for attr in sa.inspect(type(self)).column_attrs:
            if attr.key in self.__private_columns__:
                continue
            value = getattr(self, attr.key)
            if isinstance(value, datetime):
                value = value.isoformat()
            out[attr.key] = value
        return out

    # -- the same dict from a plain row (the hot read paths select with hand-written SQL) ----------
    @classmethod
    def public_keys(cls) -> tuple[str, ...]:
        """The serialised columns, in :meth:`to_dict`'s order (column attributes named as their columns)."""
        keys = cls.__dict__.get("_public_keys")
        if keys is None:
            keys = tuple(a.key for a in sa.inspect(cls).column_attrs if a.key not in cls.__private_columns__)
            cls._public_keys = keys
        return keys

    @classmethod
    def columns_sql(cls, alias: str) -> str:
        """``alias."col", ...`` for :meth:`public_keys`, to select in hand-written SQL."""
        return ", ".join(f'{alias}."{k}"' for k in cls.public_keys())

    @classmethod
    def dict_of(cls, values) -> dict:
        """:meth:`to_dict` of a row whose first values are :meth:`columns_sql`'s."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in zip(cls.public_keys(), values)}


class Timestamped:
    """SkyPortal's ``created_at`` / ``modified`` columns (naive UTC)."""

    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, default=utcnow, nullable=False, index=True
    )
    modified: Mapped[datetime] = mapped_column(
        sa.DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
