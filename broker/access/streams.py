"""Alert streams and their users."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal
from broker.errors import Conflict, ValidationError


def stream_to_dict(stream: models.Stream, status: dict | None = None) -> dict:
    """SkyPortal's stream; with ``status`` (:func:`broker.ingest.clusters.cluster_status`), a stream Kafka
    reads also gets ``ingest_status`` (our addition): its cluster, how many consumers read it, and the
    cluster's or its topics' current errors (e.g. credentials refused), null when all is well."""
    out = stream.to_dict()
    alt = stream.altdata or {}
    if status is not None and alt.get("topic") and alt.get("format"):
        from broker.ingest.pipeline import subscription

        cluster = alt.get("cluster") or "default"
        st = status.get(cluster) or {}
        sub = subscription(alt["topic"], models.utcnow().date())
        mine = {t: e for t, e in (st.get("topic_errors") or {}).items()
                if (re.search(sub, t) if sub.startswith("^") else t == sub)}
        out["ingest_status"] = {"cluster": cluster, "consumers": st.get("consumers", 0), "error": st.get("error"),
                                "error_at": st.get("error_at"), "topic_errors": mine}
    return out


def _check_name(session: Session, name: str, exclude: int | None = None) -> None:
    if not name.strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    stmt = sa.select(models.Stream.id).where(models.Stream.name == name)
    if exclude is not None:
        stmt = stmt.where(models.Stream.id != exclude)
    if session.execute(stmt).first():
        raise Conflict(f"A stream named '{name}' already exists", field="name")


TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def check_topic(topic: str) -> None:
    """A Kafka topic name; a pattern (``^…``, a regular expression); or a name with ``{date}`` in it."""
    if topic.startswith("^"):
        try:
            re.compile(topic)
        except re.error as exc:
            raise ValidationError(f"Invalid field 'altdata.topic': not a regular expression ({exc})",
                                  field="altdata.topic") from None
        return
    if not TOPIC_NAME.match(topic.replace("{date}", "0")):
        raise ValidationError("Invalid field 'altdata.topic': a topic name (letters, digits, '.', '_', '-'), "
                              "a pattern starting with '^', or a name with {date} in it", field="altdata.topic")


def check_altdata(session: Session, altdata: dict | None) -> None:
    """A stream Kafka reads needs both ``topic`` and ``format``; its ``cluster`` must exist and its
    ``start`` must be one we know; a classification map needs a taxonomy that holds every class it names."""
    from broker.ingest.decoding import FORMATS
    from broker.ingest.pipeline import parse_start, taxonomy_class_names

    if not altdata:
        return
    has_topic, has_format = "topic" in altdata, "format" in altdata
    if has_topic != has_format:
        missing = "format" if has_topic else "topic"
        raise ValidationError(f"Missing required field 'altdata.{missing}': a stream needs both topic and format",
                              field=f"altdata.{missing}")
    if has_format and altdata["format"] not in FORMATS:
        raise ValidationError(f"Invalid value for field 'altdata.format': must be one of {list(FORMATS)}",
                              field="altdata.format")
    if has_topic:
        check_topic(altdata["topic"])
    elif "cluster" in altdata or "start" in altdata:
        raise ValidationError("Missing required field 'altdata.topic': cluster and start belong to a stream "
                              "Kafka reads", field="altdata.topic")
    cluster = altdata.get("cluster")
    if cluster not in (None, "default") and session.execute(
            sa.select(models.KafkaCluster.id).where(models.KafkaCluster.name == cluster)).first() is None:
        raise ValidationError(f"Invalid field 'altdata.cluster': no Kafka cluster named '{cluster}'",
                              field="altdata.cluster")
    parse_start(altdata.get("start"))
    cls = altdata.get("classifications")
    if cls is not None:
        tax = session.get(models.Taxonomy, cls["taxonomy_id"])
        if tax is None:
            raise ValidationError(f"Invalid field 'altdata.classifications.taxonomy_id': no taxonomy with ID "
                                  f"{cls['taxonomy_id']}", field="altdata.classifications.taxonomy_id")
        known = taxonomy_class_names(tax.hierarchy)
        for score, name in (cls.get("scores") or {}).items():
            if name not in known:
                raise ValidationError(
                    f"Invalid field 'altdata.classifications.scores.{score}': class '{name}' is not in "
                    f"taxonomy '{tax.name}'", field=f"altdata.classifications.scores.{score}")


def readable_streams(principal: Principal) -> sa.Select:
    """Streams the caller may read (as SkyPortal): all for a System admin, else those granted to them and every
    auto-join stream."""
    stmt = sa.select(models.Stream)
    if not principal.is_admin:
        stmt = stmt.where(sa.or_(
            models.Stream.auto_join.is_(True),
            models.Stream.id.in_(sa.select(models.StreamUser.stream_id)
                                 .where(models.StreamUser.user_id == principal.user_id))))
    return stmt


def get_stream(session: Session, principal: Principal, stream_id: int) -> models.Stream:
    """A stream the caller may read; SkyPortal's 400 otherwise."""
    stream = session.execute(readable_streams(principal).where(models.Stream.id == stream_id)).scalar()
    if stream is None:
        raise ValidationError(f"Could not retrieve stream with ID {stream_id}.")
    return stream


def create_stream(session: Session, principal: Principal, body: dict) -> models.Stream:
    principal.require("Manage streams")
    _check_name(session, body["name"])
    check_altdata(session, body.get("altdata"))
    stream = models.Stream(name=body["name"], altdata=body.get("altdata"), auto_join=body.get("auto_join", False))
    session.add(stream)
    session.flush()
    # The creator can read what they created.
    session.add(models.StreamUser(stream_id=stream.id, user_id=principal.user_id))
    session.flush()
    return stream


def update_stream(session: Session, principal: Principal, stream_id: int, body: dict) -> models.Stream:
    principal.require("Manage streams")
    stream = get_stream(session, principal, stream_id)
    if "name" in body:
        _check_name(session, body["name"], exclude=stream.id)
    if "altdata" in body:
        check_altdata(session, body["altdata"])
    for key, value in body.items():
        if key == "auto_join" and value is None:  # SkyPortal: null leaves it as it is
            continue
        setattr(stream, key, value)
    session.flush()
    return stream


def delete_stream(session: Session, principal: Principal, stream_id: int) -> None:
    principal.require("Manage streams")
    session.delete(get_stream(session, principal, stream_id))
    session.flush()


def add_user(session: Session, principal: Principal, stream_id: int, user_id: int) -> models.StreamUser:
    """Stream managers grant anyone access; any user may add themselves to an auto-join stream."""
    stream = session.get(models.Stream, stream_id)
    if stream is None:
        raise ValidationError(f"Could not retrieve stream with ID {stream_id}.")
    if not principal.has("Manage streams") and not (user_id == principal.user_id and stream.auto_join):
        raise ValidationError("Insufficient permissions: only system admins can grant stream access to other "
                              "users or to non-auto-join streams.")
    if session.get(models.User, user_id) is None:
        raise ValidationError(f"Invalid user_id: no user with ID {user_id}", field="user_id")
    exists = session.execute(
        sa.select(models.StreamUser).where(models.StreamUser.stream_id == stream_id,
                                           models.StreamUser.user_id == user_id)
    ).scalar()
    if exists is not None:
        raise Conflict("Specified user already has access to this stream.", field="user_id")
    su = models.StreamUser(stream_id=stream_id, user_id=user_id)
    session.add(su)
    session.flush()
    return su


def remove_user(session: Session, principal: Principal, stream_id: int, user_id: int) -> None:
    """Revoke a user's access; not while one of their groups has the stream (SkyPortal's rule)."""
    principal.require("Manage streams")
    su = session.execute(
        sa.select(models.StreamUser).where(models.StreamUser.stream_id == stream_id,
                                           models.StreamUser.user_id == user_id)
    ).scalar()
    if su is None:
        raise ValidationError(f"Stream user does not exist: user {user_id} has no access to stream {stream_id}.")
    needed_by = session.execute(
        sa.select(models.GroupUser.group_id)
        .join(models.group_streams, models.group_streams.c.group_id == models.GroupUser.group_id)
        .where(models.GroupUser.user_id == user_id, models.group_streams.c.stream_id == stream_id)
        .order_by(models.GroupUser.group_id)
    ).scalars().all()
    if needed_by:
        raise ValidationError(f"Stream user does not exist or cannot be removed: user {user_id} is in group(s) "
                              f"{needed_by} that need stream {stream_id}; remove them from those groups first.")
    session.delete(su)
    session.flush()
