"""Ingestion bookkeeping: failed alerts, cross-survey duplicates, counters, consumer status."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class FailedAlert(Base):
    """A Kafka message that could not be decoded or normalised: kept whole, then skipped."""

    __tablename__ = "failed_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    stream_id: Mapped[int | None] = mapped_column(sa.ForeignKey("streams.id", ondelete="SET NULL"), index=True)
    # the Kafka cluster's name ("default": the configuration's); topics are named per cluster
    cluster: Mapped[str] = mapped_column(sa.String, nullable=False, default="default",
                                         server_default="default")
    topic: Mapped[str] = mapped_column(sa.String, nullable=False)
    partition: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    offset: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    error: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow, index=True)

    __private_columns__ = ("raw",)
    __table_args__ = (
        sa.UniqueConstraint("cluster", "topic", "partition", "offset",
                            name="uq_failed_alerts_cluster_topic_partition_offset"),
    )


class ObjDuplicate(Base):
    """Two objects (usually from different surveys) within the association radius."""

    __tablename__ = "obj_duplicates"
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id", ondelete="CASCADE"), primary_key=True)
    duplicate_obj_id: Mapped[str] = mapped_column(
        sa.ForeignKey("objs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    separation: Mapped[float] = mapped_column(sa.Float, nullable=False)  # arcsec
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)


class IngestCounter(Base):
    """Cumulative counters per stream (filter_id 0) and per filter, updated in each batch's transaction."""

    __tablename__ = "ingest_counters"
    stream_id: Mapped[int] = mapped_column(sa.ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True)
    filter_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, default=0)
    consumed: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    ingested: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    passed: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)


class IngestStatus(Base):
    """What one consumer process last reported for one Kafka cluster: its partitions, their lag, its rate,
    and the last error the cluster gave it (cleared once the cluster answers again)."""

    __tablename__ = "ingest_status"
    consumer: Mapped[str] = mapped_column(sa.String, primary_key=True)  # host:pid
    cluster: Mapped[str] = mapped_column(sa.String, primary_key=True, default="default", server_default="default")
    topics: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    lag: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)  # "topic/partition" -> messages
    alerts_per_second: Mapped[float] = mapped_column(sa.Float, nullable=False, default=0.0)
    consumed: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    error_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    topic_errors: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict,
                                               server_default=sa.text("'{}'::jsonb"))  # topic -> error
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)


class IngestOffset(Base):
    """The next offset to write, per consumer group and partition, committed with the rows it covers.

    Kafka's committed offset is written after the database commit, so a crash between the two
    redelivers a batch the database already holds; this row lets the consumer skip it, so counters
    count every message once."""

    __tablename__ = "ingest_offsets"
    group_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    topic: Mapped[str] = mapped_column(sa.String, primary_key=True)
    partition: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, nullable=False, default=utcnow)
