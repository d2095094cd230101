"""Allocations: time on an instrument for a group, with the facility credentials (``_altdata``, stored
encrypted, never returned)."""

from __future__ import annotations

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from facility_apis.base import Credentials

from broker.access.auth import Principal, get_readable_group
from broker.errors import NoSuchRow, ValidationError
from broker.followup.vault import CredentialsUnreadable, Vault
from broker.objects.objs import user_group_ids

A, I = models.Allocation, models.Instrument
ALLOCATION_TYPES = ("triggered", "forced_photometry", "observation_plan")  # SkyPortal's


def readable_allocations(principal: Principal) -> sa.Select:
    stmt = sa.select(A)
    if not principal.is_admin:
        stmt = stmt.where(A.group_id.in_(user_group_ids(principal)))
    return stmt


def list_allocations(session: Session, principal: Principal, adapters: dict, *, instrument_id: int | None = None,
                     api_type: str | None = None, implements: str | None = None) -> list[models.Allocation]:
    """Readable allocations (SkyPortal's list parameters): on an instrument, whose instrument has a facility
    API of ``api_type``, whose adapter implements ``implements``."""
    A, I = models.Allocation, models.Instrument
    stmt = readable_allocations(principal).order_by(A.id)
    if instrument_id is not None:
        stmt = stmt.where(A.instrument_id == instrument_id)
    if api_type not in (None, "api_classname", "api_classname_obsplan"):
        raise ValidationError("Invalid apiType: must be api_classname or api_classname_obsplan", field="apiType")
    if api_type:
        stmt = stmt.where(A.instrument_id.in_(sa.select(I.id).where(getattr(I, api_type).is_not(None))))
    if implements not in (None, "submit", "update", "delete", "get"):
        raise ValidationError("Invalid apiImplements: must be submit, update, delete or get", field="apiImplements")
    rows = session.execute(stmt).scalars().all()
    if implements:
        rows = [a for a in rows if a.instrument.api_classname in adapters and
                (implements != "get" or adapters[a.instrument.api_classname].submits)]
    return rows


def get_allocation(session: Session, principal: Principal, allocation_id: int) -> models.Allocation:
    a = session.execute(readable_allocations(principal).where(A.id == allocation_id)).scalar()
    if a is None:
        raise NoSuchRow(f"Could not retrieve allocation with ID {allocation_id}")
    return a


def usable_allocation(session: Session, principal: Principal, allocation_id: int) -> models.Allocation:
    """An allocation named in a request body: readable, else a 400 naming allocation_id."""
    a = session.execute(readable_allocations(principal).where(A.id == allocation_id)).scalar()
    if a is None:
        raise ValidationError(f"Invalid allocation_id: no allocation {allocation_id} you can use",
                              field="allocation_id")
    return a


def allocation_to_dict(a: models.Allocation) -> dict:
    out = a.to_dict()  # _altdata is private: credentials never leave
    out["has_credentials"] = a._altdata is not None
    out["instrument"] = {"id": a.instrument.id, "name": a.instrument.name,
                         "api_classname": a.instrument.api_classname}
    out["group"] = {"id": a.group.id, "name": a.group.name}
    return out


def _date(value, key: str):
    try:
        return arrow.get(value).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid field '{key}': not a date", field=key) from None


def _dates(body: dict) -> dict:
    out = {}
    for key in ("start_date", "end_date"):
        if body.get(key) is not None:
            out[key] = _date(body[key], key)
    if out.get("start_date") and out.get("end_date") and out["end_date"] <= out["start_date"]:
        raise ValidationError("Invalid field 'end_date': must be after start_date", field="end_date")
    return out


def _validity_ranges(ranges) -> list | None:
    """SkyPortal's ``validity_ranges``: [{start_date, end_date}], each end after its start; stored as ISO UTC."""
    if ranges is None:
        return None
    out = []
    for k, r in enumerate(ranges):
        if not r.get("start_date") or not r.get("end_date"):
            raise ValidationError(f"Invalid field 'validity_ranges[{k}]': validity ranges must have both "
                                  "start_date and end_date defined", field=f"validity_ranges[{k}]")
        s = _date(r["start_date"], f"validity_ranges[{k}].start_date")
        e = _date(r["end_date"], f"validity_ranges[{k}].end_date")
        if e <= s:
            raise ValidationError(f"Invalid field 'validity_ranges[{k}].end_date': must be after start_date",
                                  field=f"validity_ranges[{k}].end_date")
        out.append({"start_date": s.isoformat(), "end_date": e.isoformat()})
    return out


def _altdata(body: dict, key: str) -> dict | None:
    """SkyPortal drops empty and null values; an object of nothing is no change."""
    raw = body.get(key)
    if raw is None:
        return None
    return {k: v for k, v in raw.items() if v is not None and str(v).strip() != ""}


def save_allocation(session: Session, principal: Principal, vault: Vault, body: dict,
                    allocation: models.Allocation | None = None) -> models.Allocation:
    principal.require("Manage allocations")
    if "group_id" in body:
        get_readable_group(session, principal, body["group_id"])
    if "instrument_id" in body and session.get(I, body["instrument_id"]) is None:
        raise ValidationError(f"Invalid instrument_id: no instrument with ID {body['instrument_id']}",
                              field="instrument_id")
    if body.get("allocation_admin_ids"):
        raise ValidationError("Invalid field 'allocation_admin_ids': skybroker has no allocation admins; "
                              "'Manage allocations' holders of the group manage it", field="allocation_admin_ids")
    for gid in body.get("default_share_group_ids") or []:
        get_readable_group(session, principal, gid)
    fields = {k: v for k, v in body.items() if k in ("group_id", "instrument_id", "pi", "proposal_id",
                                                      "hours_allocated", "default_share_group_ids", "types")}
    if "validity_ranges" in body:
        fields["validity_ranges"] = _validity_ranges(body["validity_ranges"])
    if fields.get("types") is None:
        fields.pop("types", None)
    fields.update(_dates({**({"start_date": allocation.start_date, "end_date": allocation.end_date}
                             if allocation else {}), **body}))
    if allocation is None:
        allocation = A(**fields)
        session.add(allocation)
    else:
        for k, v in fields.items():
            setattr(allocation, k, v)
    # SkyPortal's _altdata (API_TOKEN, API_ARCHIVE_TOKEN, PROPOSAL_ID, ...), and our older altdata
    new = {}
    for key in ("altdata", "_altdata"):
        part = _altdata(body, key)
        if part is not None:
            new.update(part)
    if "altdata" in body and body["altdata"] is None or "_altdata" in body and body["_altdata"] is None:
        allocation._altdata = None  # explicitly cleared
    if new:
        old = {}
        if allocation._altdata is not None:  # SkyPortal merges into what is stored
            try:
                old = vault.decrypt(allocation._altdata)
            except CredentialsUnreadable:
                old = {}  # unreadable credentials are replaced by the new ones
        allocation._altdata = vault.encrypt({**old, **new})
    session.flush()
    return allocation


def credentials(vault: Vault, allocation: models.Allocation) -> Credentials:
    try:
        data = vault.decrypt(allocation._altdata)
    except CredentialsUnreadable as exc:
        raise ValidationError(f"Allocation {allocation.id}: {exc.message}", field="allocation_id") from None
    if not data.get("API_TOKEN"):
        raise ValidationError(f"Allocation {allocation.id} has no facility credentials (altdata.API_TOKEN)",
                              field="allocation_id")
    return Credentials(token=data["API_TOKEN"], proposal_id=data.get("PROPOSAL_ID") or allocation.proposal_id,
                       archive_token=data.get("API_ARCHIVE_TOKEN") or data.get("ARCHIVE_TOKEN") or data["API_TOKEN"])


def check_validity(allocation: models.Allocation, start, end, field: str = "payload.start_date") -> None:
    """The request's window inside the allocation's dates and inside one of its validity ranges."""
    if (allocation.start_date and start and start < allocation.start_date) or \
            (allocation.end_date and end and end > allocation.end_date):
        raise ValidationError(f"Invalid field '{field}': allocation {allocation.id} is valid "
                              f"{allocation.start_date} – {allocation.end_date}", field=field)
    ranges = allocation.validity_ranges or []
    if ranges:
        s = start or arrow.utcnow().naive
        for r in ranges:
            rs, re_ = arrow.get(r["start_date"]).naive, arrow.get(r["end_date"]).naive
            if rs <= s <= re_ and (end is None or rs <= end <= re_):
                return
        raise ValidationError(f"Invalid field '{field}': the request's dates are not within any of allocation "
                              f"{allocation.id}'s validity ranges", field=field)
