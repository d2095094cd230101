"""Filters: a group's selection criteria over one of its streams."""

from __future__ import annotations

from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, get_readable_group, readable_filters
from broker.errors import NotFound, ValidationError
from broker.ingest.filter_lang import compile_criteria


def filter_to_dict(f: models.Filter) -> dict:
    out = f.to_dict()
    out["stream"] = f.stream.to_dict()
    out["group"] = f.group.to_dict()
    return out


def get_filter(session: Session, principal: Principal, filter_id: int) -> models.Filter:
    f = session.execute(readable_filters(principal).where(models.Filter.id == filter_id)).scalar()
    if f is None:
        raise NotFound(f"No filter with ID {filter_id}")
    return f


def _check_stream(session: Session, group: models.Group, stream_id: int) -> None:
    """One answer for a missing stream and one the group cannot read (nothing tells them apart)."""
    if stream_id not in {s.id for s in group.streams}:
        raise ValidationError(f"Invalid stream_id: group {group.id} has no access to a stream {stream_id}",
                              field="stream_id")


def create_filter(session: Session, principal: Principal, body: dict) -> models.Filter:
    """Members of the group may add filters on streams the group can read."""
    group = get_readable_group(session, principal, body["group_id"])
    _check_stream(session, group, body["stream_id"])
    if not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    compile_criteria(body.get("criteria") or {})
    f = models.Filter(
        name=body["name"], stream_id=body["stream_id"], group_id=group.id,
        criteria=body.get("criteria") or {}, autosave=body.get("autosave", False),
    )
    session.add(f)
    session.flush()
    return f


def update_filter(session: Session, principal: Principal, filter_id: int, body: dict) -> models.Filter:
    f = get_filter(session, principal, filter_id)
    group = f.group
    if "group_id" in body and body["group_id"] != f.group_id:
        group = get_readable_group(session, principal, body["group_id"])
    _check_stream(session, group, body.get("stream_id", f.stream_id))
    if "name" in body and not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    if "criteria" in body:
        compile_criteria(body["criteria"])
    for key, value in body.items():
        setattr(f, key, value)
    session.flush()
    session.refresh(f)
    return f


def delete_filter(session: Session, principal: Principal, filter_id: int) -> None:
    session.delete(get_filter(session, principal, filter_id))
    session.flush()
