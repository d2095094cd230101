"""SkyPortal's listings: a user's named lists of objects ("favorites", "rejected_candidates", a "watchlist"
with search parameters). A user reads and writes their own; a system admin anyone's. The object must be
one the caller can see."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal
from broker.errors import NotFound, ValidationError
from broker.objects.objs import get_visible_obj

L = models.Listing
_LIST_NAME = re.compile(r"^\w+")  # SkyPortal's check: begins with an alphanumeric character or underscore


def _check_name(name: str) -> str:
    if not _LIST_NAME.match(name):
        raise ValidationError("Input `list_name` must begin with alphanumeric/underscore", field="list_name")
    return name


def _check_params(list_name: str, params: dict | None) -> None:
    """A watchlist's parameters, as SkyPortal checks them."""
    if list_name == "watchlist" and params is None:
        raise ValidationError("Input `params` must be provided for `watchlist`", field="params")
    if params is None or list_name != "watchlist":
        return
    if "arcsec" not in params or "cadence" not in params:
        raise ValidationError("Input `params` must contain `arcsec` and `cadence`", field="params")
    arcsec, cadence = params["arcsec"], params["cadence"]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (arcsec, cadence)):
        raise ValidationError("Inputs `params.arcsec` and `params.cadence` must be numbers", field="params")
    if arcsec <= 0 or arcsec > 3600 or cadence < 1:
        raise ValidationError("Inputs `params.arcsec` must be higher than 0 and less than 3600, and "
                              "`params.cadence` must be 1 and above", field="params")
    if "end_of_night" in params and not isinstance(params["end_of_night"], bool):
        raise ValidationError("Input `params.end_of_night` must be a boolean", field="params")


def _owner(principal: Principal, user_id: int | None) -> int:
    """Whose list a new listing goes on (SkyPortal answers 400 to a non-admin naming someone else)."""
    if user_id is None or user_id == principal.user_id:
        return principal.user_id
    if not principal.is_admin:
        raise ValidationError("Only admins can add listings to other users' accounts", field="user_id")
    return user_id


def _visible_obj(session: Session, principal: Principal, obj_id: str) -> None:
    try:
        get_visible_obj(session, principal, obj_id)
    except NotFound:
        raise ValidationError(f"Cannot find Obj with ID: {obj_id}", field="obj_id") from None


def _user_exists(session: Session, principal: Principal, user_id: int) -> None:
    if user_id != principal.user_id and session.get(models.User, user_id) is None:
        raise ValidationError(f"Invalid user_id: no user {user_id}", field="user_id")


def _readable(principal: Principal) -> sa.Select:
    stmt = sa.select(L)
    return stmt if principal.is_admin else stmt.where(L.user_id == principal.user_id)


def list_listings(session: Session, principal: Principal, user_id: int | None, list_name: str | None) -> list[dict]:
    """A user's listings (the caller's by default), optionally of one list, oldest first."""
    stmt = _readable(principal).where(L.user_id == (principal.user_id if user_id is None else user_id))
    if list_name is not None:
        stmt = stmt.where(L.list_name == list_name)
    return [row.to_dict() for row in session.execute(stmt.order_by(L.id)).scalars()]


def add_listing(session: Session, principal: Principal, body: dict) -> int:
    user_id = _owner(principal, body.get("user_id"))
    obj_id = body["obj_id"]
    _visible_obj(session, principal, obj_id)
    name = _check_name(body["list_name"])
    _check_params(name, body.get("params"))
    _user_exists(session, principal, user_id)
    row = session.execute(
        insert(L)
        .values(user_id=user_id, obj_id=obj_id, list_name=name, params=body.get("params"),
                created_at=models.utcnow(), modified=models.utcnow())
        .on_conflict_do_nothing(index_elements=[L.user_id, L.obj_id, L.list_name])
        .returning(L.id)
    ).scalar()
    if row is None:
        raise _exists(user_id, obj_id, name)
    return row


def _exists(user_id: int, obj_id: str, name: str) -> ValidationError:
    return ValidationError(f"Listing already exists with user_id={user_id}, obj_id={obj_id} and list_name={name}")


def _find(session: Session, principal: Principal, listing_id: int) -> models.Listing:
    row = session.execute(_readable(principal).where(L.id == listing_id)).scalar()
    if row is None:
        raise ValidationError(f"Cannot find listing with ID: {listing_id}")
    return row


def update_listing(session: Session, principal: Principal, listing_id: int, body: dict) -> None:
    row = _find(session, principal, listing_id)
    # each field as given (null: as it is)
    user_id, obj_id, name = (getattr(row, k) if body.get(k) is None else body[k]
                             for k in ("user_id", "obj_id", "list_name"))
    if user_id != principal.user_id and not principal.is_admin:
        raise ValidationError("Insufficient permissions.", field="user_id")
    _user_exists(session, principal, user_id)
    _visible_obj(session, principal, obj_id)
    _check_name(name)
    clash = session.execute(sa.select(L.id).where(L.user_id == user_id, L.obj_id == obj_id, L.list_name == name,
                                                  L.id != row.id)).scalar()
    if clash is not None:
        raise _exists(user_id, obj_id, name)
    row.user_id, row.obj_id, row.list_name = user_id, obj_id, name


def delete_listing(session: Session, principal: Principal, listing_id: int | None, body: dict | None) -> None:
    """By id, or by the body's obj_id and list_name (and user_id), as SkyPortal."""
    if listing_id is not None:
        row = _find(session, principal, listing_id)
    else:  # another user's listing is not found (not readable) unless the caller is an admin
        body = body or {}
        _visible_obj(session, principal, body["obj_id"])
        user_id = principal.user_id if body.get("user_id") is None else body["user_id"]
        row = session.execute(_readable(principal).where(
            L.user_id == user_id, L.obj_id == body["obj_id"], L.list_name == body["list_name"])).scalar()
        if row is None:
            raise ValidationError("Cannot delete Listing.")
    session.delete(row)


def listed_clause(principal: Principal, list_name: str, oid):
    """SQL: object ``oid`` is on the caller's list ``list_name`` (candidates' listName / listNameReject)."""
    return sa.exists().where(L.obj_id == oid, L.user_id == principal.user_id, L.list_name == list_name)
