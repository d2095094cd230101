"""Alert streams (one Kafka topic each) and who may read them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from .groups import Group
from .users import User


class Stream(Base, Timestamped):
    """A survey alert stream. ``altdata`` holds its Kafka ``topic`` and alert ``format``."""

    __tablename__ = "streams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    altdata: Mapped[dict | None] = mapped_column(JSONB)
    # SkyPortal: any user may add themselves to it, and every user sees it (migration 0010)
    auto_join: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                            server_default=sa.text("false"), index=True)

    groups: Mapped[list[Group]] = relationship(secondary="group_streams", back_populates="streams")
    stream_users: Mapped[list["StreamUser"]] = relationship(
        back_populates="stream", cascade="all, delete-orphan", passive_deletes=True
    )


class StreamUser(Base, Timestamped):
    __tablename__ = "stream_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    stream_id: Mapped[int] = mapped_column(
        sa.ForeignKey("streams.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    stream: Mapped[Stream] = relationship(back_populates="stream_users")
    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (sa.UniqueConstraint("stream_id", "user_id", name="uq_stream_users_stream_user"),)


class KafkaCluster(Base, Timestamped):
    """A Kafka cluster that streams read from (our addition to SkyPortal's schema): its bootstrap servers and
    security set-up. ``settings`` holds what is not secret (SASL user name, OAuth client id and token endpoint,
    CA and client certificates, extra client properties); ``_secrets`` the rest (passwords, client secrets,
    private keys), encrypted with the server's key, as facility credentials are. The cluster named
    ``default`` is the one in the configuration and is not stored here."""

    __tablename__ = "kafka_clusters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String, unique=True, nullable=False)
    bootstrap_servers: Mapped[str] = mapped_column(sa.String, nullable=False)
    security_protocol: Mapped[str] = mapped_column(sa.String, nullable=False, default="PLAINTEXT")
    sasl_mechanism: Mapped[str | None] = mapped_column(sa.String)
    # the consumer group on this cluster; null: the configuration's kafka.group_id
    group_id: Mapped[str | None] = mapped_column(sa.String)
    settings: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    _secrets: Mapped[str | None] = mapped_column("secrets", sa.Text)

    __private_columns__ = ("_secrets",)
