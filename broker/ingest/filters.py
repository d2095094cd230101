"""Filters: a group's selection criteria over one of its streams (SkyPortal's rules).

Members of a group read, create and delete its filters; only its admins (and System admins, holders of
"Manage groups" or "Manage users", as SkyPortal's ``has_admin_access_for_group``) edit one, and a filter never
moves to another group or stream. A missing filter and one the caller cannot read get SkyPortal's 400.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, get_readable_group, readable_filters
from broker.access.groups import is_group_admin
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.ingest.filter_lang import compile_criteria


def filter_to_dict(f: models.Filter) -> dict:
    out = f.to_dict()
    out["stream"] = f.stream.to_dict()
    out["group"] = f.group.to_dict()
    return out


def get_filter(session: Session, principal: Principal, filter_id: int) -> models.Filter:
    f = session.execute(readable_filters(principal).where(models.Filter.id == filter_id)).scalar()
    if f is None:
        raise ValidationError(f"Cannot find a filter with ID: {filter_id}.")
    return f


def _check_stream(session: Session, group: models.Group, stream_id: int) -> None:
    """One answer for a missing stream and one the group cannot read (nothing tells them apart)."""
    if stream_id not in {s.id for s in group.streams}:
        raise ValidationError(f"Invalid stream_id: group {group.id} has no access to a stream {stream_id}",
                              field="stream_id")


def _check_broker(body: dict) -> None:
    # SkyPortal's broker_id names a remote filtering broker (BOOM); skybroker runs its filters itself
    if body.get("broker_id") is not None:
        raise ValidationError(f"Invalid broker_id: no broker with ID {body['broker_id']} (skybroker runs its "
                              "filters itself; leave broker_id null)", field="broker_id")


def _with_autosave(altdata: dict | None, autosave: bool) -> dict | None:
    """SkyPortal keeps ``altdata["autoSave"]`` (the broker UI's copy) in step with ``autosave``."""
    if isinstance(altdata, dict) and "autoSave" in altdata:
        return {**altdata, "autoSave": autosave}
    return altdata


def create_filter(session: Session, principal: Principal, body: dict) -> models.Filter:
    """Members of the group may add filters on streams the group can read."""
    _check_broker(body)
    try:
        group = get_readable_group(session, principal, body["group_id"])
    except NotFound:  # not a member (or no such group): a 400 naming the field
        raise ValidationError(f"Invalid group_id: no group {body['group_id']} you are a member of",
                              field="group_id") from None
    _check_stream(session, group, body["stream_id"])
    if not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    compile_criteria(body.get("criteria") or {})
    autosave = body.get("autosave", False)
    f = models.Filter(
        name=body["name"], stream_id=body["stream_id"], group_id=group.id,
        criteria=body.get("criteria") or {}, autosave=autosave,
        altdata=_with_autosave(body.get("altdata"), autosave) if "autosave" in body else body.get("altdata"),
    )
    session.add(f)
    session.flush()
    return f


def update_filter(session: Session, principal: Principal, filter_id: int, body: dict) -> models.Filter:
    f = get_filter(session, principal, filter_id)
    if not (is_group_admin(session, principal, f.group_id) or principal.has("Manage users")):
        raise PermissionDenied("Insufficient permissions: must be a group admin or system admin to modify a filter.")
    if body.get("group_id", f.group_id) != f.group_id or body.get("stream_id", f.stream_id) != f.stream_id:
        raise ValidationError("Cannot update group_id or stream_id.",
                              field="group_id" if body.get("group_id", f.group_id) != f.group_id else "stream_id")
    if "name" in body and not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    if "criteria" in body:
        compile_criteria(body["criteria"])
    for key in ("name", "criteria"):
        if key in body:
            setattr(f, key, body[key])
    if body.get("altdata") is not None:  # SkyPortal: null leaves it as it is
        f.altdata = body["altdata"]
    if body.get("autosave") is not None:
        f.autosave = body["autosave"]
        f.altdata = _with_autosave(f.altdata, body["autosave"])
    session.flush()
    session.refresh(f)
    return f


def delete_filter(session: Session, principal: Principal, filter_id: int) -> None:
    session.delete(get_filter(session, principal, filter_id))
    session.flush()
