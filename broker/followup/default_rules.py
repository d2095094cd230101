"""Default follow-up rules: fire at most once per (rule, object) when an object passes one of the rule's
filters or is saved to one of its groups (and, if the rule says so, is classified as one of its classes and/or
lies inside the ``cumprob`` credible region of an event at most ``max_age_days`` old, and/or its id matches
SkyPortal's ``name`` regex and/or its origin is ``origin``).

SkyPortal's ``source_filter`` (``{"name": regex, "group_id": id, "origin": ..., "classification": ...}``) is
taken as ``group_ids: [group_id]`` plus those conditions.

Firing only writes rows — the (rule, object) mark and a ``pending`` follow-up request — in the caller's
transaction, then NOTIFYs the follow-up worker, which submits it as soon as that transaction commits.
"""

from __future__ import annotations

import re
from collections import defaultdict

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from broker.errors import NoSuchRow
from models.followup import DefaultFollowupRequest as D

NOTIFY_CHANNEL = "skybroker_followup"

_FIRE = sa.text("""
    WITH due AS (  -- a rule with classifications fires only for objects classified so
        SELECT v.r, v.o
        FROM unnest(CAST(:r AS int[]), CAST(:o AS text[])) AS v(r, o)
        JOIN default_followup_requests d ON d.id = v.r
        WHERE (coalesce(jsonb_array_length(d.source_filter -> 'classifications'), 0) = 0
               OR EXISTS (SELECT 1 FROM classifications c
                          WHERE c.obj_id = v.o AND c.classification IN (
                              SELECT jsonb_array_elements_text(d.source_filter -> 'classifications'))
                            -- a classification the rule's requester can see (shared with one of their groups)
                            AND EXISTS (SELECT 1 FROM classification_groups cg
                                        JOIN group_users gu ON gu.group_id = cg.group_id
                                        WHERE cg.classification_id = c.id AND gu.user_id = d.requester_id)))
          -- SkyPortal's source_filter: the object's id matches its name regex, its origin is its origin
          AND (d.source_filter ->> 'name' IS NULL OR v.o ~ (d.source_filter ->> 'name'))
          AND (d.source_filter ->> 'origin' IS NULL
               OR EXISTS (SELECT 1 FROM objs o WHERE o.id = v.o AND o.origin = d.source_filter ->> 'origin'))
          -- and a rule with a localization condition only inside the X% region of a recent event
          AND (d.source_filter -> 'localization' IS NULL
               OR EXISTS (SELECT 1 FROM obj_localizations ol
                          JOIN localizations l ON l.id = ol.localization_id
                          JOIN gcnevents e ON e.dateobs = l.dateobs
                          WHERE ol.obj_id = v.o AND NOT e.retracted
                            AND ol.credible_level <= (d.source_filter -> 'localization' ->> 'cumprob')::float8
                            AND e.dateobs >= CAST(:now AS timestamp) - make_interval(
                                secs => (d.source_filter -> 'localization' ->> 'max_age_days')::float8 * 86400)))
    ), fired AS (
        INSERT INTO default_followup_fired (default_followup_id, obj_id, created_at)
        SELECT r, o, :now FROM due
        ON CONFLICT DO NOTHING
        RETURNING default_followup_id, obj_id
    ), made AS (
        INSERT INTO followup_requests (obj_id, allocation_id, requester_id, payload, status, remote_request_ids,
                                       revision, default_followup_id, frames, created_at, modified, comment,
                                       last_modified_by_id)
        SELECT f.obj_id, d.allocation_id, d.requester_id, d.payload, 'pending', '[]', 0, d.id, '[]', :now, :now,
               d.comment, d.requester_id
        FROM fired f JOIN default_followup_requests d ON d.id = f.default_followup_id
        RETURNING id
    )
    SELECT id FROM made
""")

# A second statement: the CTE's sub-statements cannot see each other's rows.
_LINK = sa.text("""
    UPDATE default_followup_fired AS x SET followup_request_id = f.id
    FROM followup_requests f
    WHERE f.id = ANY(CAST(:ids AS int[])) AND x.default_followup_id = f.default_followup_id
      AND x.obj_id = f.obj_id
""")


def rules_by_trigger(session: Session) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(filter id -> rule ids, group id -> rule ids)."""
    by_filter, by_group = defaultdict(list), defaultdict(list)
    R = models.DefaultFollowupRequest
    for rule_id, sf in session.execute(sa.select(R.id, R.source_filter)).all():  # (not the rules: every save asks)
        sf = sf or {}
        for fid in sf.get("filter_ids", []):
            by_filter[int(fid)].append(rule_id)
        for gid in sf.get("group_ids", []):
            by_group[int(gid)].append(rule_id)
    return dict(by_filter), dict(by_group)


def fire(session: Session, pairs: set[tuple[int, str]]) -> list[int]:
    """Mark (rule, object) pairs as fired and create their pending requests; return the new request ids."""
    if not pairs:
        return []
    rows = sorted(pairs)
    ids = session.execute(_FIRE, {"r": [p[0] for p in rows], "o": [p[1] for p in rows],
                                  "now": models.utcnow()}).scalars().all()
    if ids:
        session.execute(_LINK, {"ids": list(ids)})
        session.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return list(ids)


def fire_for_saved(session: Session, obj_id: str, group_ids) -> list[int]:
    _, by_group = rules_by_trigger(session)
    return fire(session, {(r, obj_id) for g in group_ids for r in by_group.get(g, [])})


# -- the rules themselves ----------------------------------------------------------------------------

DEFAULT_WINDOW_DAYS = 7
MAX_NAME_REGEX = 1000
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*][^)]*\)[+*{]")


def fill_window(payload: dict, days: float = DEFAULT_WINDOW_DAYS) -> dict:
    """A payload without dates gets the window [now, now + days] (default follow-up rules)."""
    now = arrow.utcnow()
    return {"start_date": now.isoformat(), "end_date": now.shift(days=days).isoformat(), **payload}


def _source_filter(session: Session, principal, sf) -> dict:
    """Ours (filter_ids, group_ids, classifications, localization) and SkyPortal's (name, group_id,
    origin, classification) in one: SkyPortal's group_id joins group_ids, its classification the
    classifications; a name regex must be valid in PostgreSQL and free of nested quantifiers."""
    import json

    from broker.errors import ValidationError

    if isinstance(sf, str):  # SkyPortal accepts the filter as a JSON string
        try:
            sf = json.loads(sf.strip('"').replace("'", '"'))
        except ValueError:
            raise ValidationError("Incorrect format for source_filter. Must be a valid json string",
                                  field="source_filter") from None
        if not isinstance(sf, dict):
            raise ValidationError("Invalid field 'source_filter': must be an object", field="source_filter")
    sf = dict(sf or {})
    if "group_id" in sf:
        try:
            gid = int(sf.pop("group_id"))
        except (TypeError, ValueError):
            raise ValidationError("The group_id provided in the source filter is not an integer.",
                                  field="source_filter.group_id") from None
        sf["group_ids"] = list(dict.fromkeys([*sf.get("group_ids", []), gid]))
    if sf.get("classification") is not None:
        sf["classifications"] = list(dict.fromkeys([*sf.get("classifications", []), str(sf.pop("classification"))]))
    name = sf.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise ValidationError("source_filter 'name' must be a string.", field="source_filter.name")
        if len(name) > MAX_NAME_REGEX:
            raise ValidationError(f"source_filter 'name' regex must be at most {MAX_NAME_REGEX} characters.",
                                  field="source_filter.name")
        if _NESTED_QUANTIFIER.search(name) or "\x00" in name:
            raise ValidationError("source_filter 'name' contains a nested quantifier that can cause catastrophic "
                                  "backtracking; please simplify the pattern.", field="source_filter.name")
        try:
            with session.begin_nested():
                session.execute(sa.text("SELECT regexp_match('', :pat)"), {"pat": name})
        except sa.exc.DataError:
            raise ValidationError(f"source_filter 'name' is not a valid regular expression: {name}",
                                  field="source_filter.name") from None
    if sf.get("origin") is not None and not isinstance(sf["origin"], str):
        raise ValidationError("source_filter 'origin' must be a string.", field="source_filter.origin")
    if not sf.get("filter_ids") and not sf.get("group_ids"):
        raise ValidationError("Invalid field 'source_filter': give group_id (SkyPortal), or filter_ids and/or "
                              "group_ids that fire the rule (skybroker fires rules on saves and filter passes, "
                              "not on a classification alone)", field="source_filter")
    return sf


RULE_CONSTRAINTS = ("not_if_duplicates", "source_group_ids", "ignore_source_group_ids", "not_if_classified",
                    "not_if_spectra_exist", "not_if_tns_classified", "not_if_tns_reported", "ignore_allocation_ids",
                    "radius")


def save_default(session: Session, principal, service, body: dict) -> D:
    """A default follow-up rule; its payload is checked now (with a window from now) as a request would be.
    SkyPortal refuses dates in a rule's payload (the window is set when it fires)."""
    from broker.access.auth import get_readable_group, readable_filters
    from broker.errors import ValidationError
    from broker.followup.allocations import usable_allocation

    allocation = usable_allocation(session, principal, body["allocation_id"])
    if allocation.instrument.api_classname is None:
        raise ValidationError("Instrument has no remote API.", field="allocation_id")
    for key in ("start_date", "end_date"):
        if key in body["payload"]:
            raise ValidationError(f"Cannot have {key} in the payload", field=f"payload.{key}")
    days = body.get("validity_days")
    service.facility(allocation.instrument).validate(
        allocation.instrument.name, fill_window(body["payload"], days or DEFAULT_WINDOW_DAYS))
    if "source_filter" not in body:
        raise ValidationError("source_filter is required", field="source_filter")
    sf = _source_filter(session, principal, body["source_filter"])
    for fid in sf.get("filter_ids", []):
        if session.execute(readable_filters(principal).where(models.Filter.id == fid)).scalar() is None:
            raise ValidationError(f"Invalid field 'source_filter.filter_ids': no accessible filter {fid}",
                                  field="source_filter.filter_ids")
    for gid in [*sf.get("group_ids", []), *body.get("target_group_ids", [])]:
        get_readable_group(session, principal, gid)
    if session.execute(sa.select(D.id).where(D.default_followup_name == body["default_followup_name"])).first():
        raise ValidationError(f"A default follow-up named '{body['default_followup_name']}' already exists",
                              field="default_followup_name")
    # SkyPortal's constraints, checked (with the owner's view) when a request the rule made is submitted
    constraints = {k: body[k] for k in RULE_CONSTRAINTS if k in body}
    for k in ("source_group_ids", "ignore_source_group_ids"):
        for gid in constraints.get(k) or []:
            get_readable_group(session, principal, gid)
    payload = body["payload"]
    rule = D(default_followup_name=body["default_followup_name"], allocation_id=allocation.id,
             requester_id=principal.user_id, payload=payload, source_filter=sf,
             target_group_ids=list(dict.fromkeys(body.get("target_group_ids", []))),
             comment=body.get("comment"), constraints=constraints or None,
             priority_order=body.get("priority_order", "asc"), validity_days=days,
             implements_update=body.get("implements_update", True))
    session.add(rule)
    session.flush()
    return rule


def readable_defaults(principal) -> sa.Select:
    from broker.followup.allocations import readable_allocations

    return sa.select(D).where(D.allocation_id.in_(readable_allocations(principal).with_only_columns(models.Allocation.id)))


def get_default(session, principal, default_id: int) -> D:
    rule = session.execute(readable_defaults(principal).where(D.id == default_id)).scalar()
    if rule is None:
        raise NoSuchRow(f"Could not retrieve default follow-up request with ID {default_id}")
    return rule


def default_to_dict(rule: D) -> dict:
    out = rule.to_dict()
    out["allocation"] = {"id": rule.allocation.id, "instrument_id": rule.allocation.instrument_id,
                         "group_id": rule.allocation.group_id}
    out["target_groups"] = [{"id": g} for g in rule.target_group_ids]
    return out


def fired_for_event(session: Session, principal, dateobs) -> list[dict]:
    """The rules with a localization condition (that the caller may read) that fired, since the event, for
    objects the caller can see inside the rule's credible region of one of the event's maps (as the rule
    fires: broker.followup.default_rules' _FIRE), unless the event was retracted: rule, object, when, and
    the request made (its SkyPortal status), newest first (the GCN event page)."""
    from broker.followup.requests import display_status
    from broker.objects.objs import visible_obj_clause

    Fd, R, OL, L = models.DefaultFollowupFired, models.FollowupRequest, models.ObjLocalization, models.Localization
    cond = D.source_filter["localization"]
    in_region = sa.exists().where(
        OL.obj_id == Fd.obj_id, OL.localization_id == L.id, L.dateobs == dateobs,
        OL.credible_level <= cond["cumprob"].astext.cast(sa.Float))
    retracted = sa.select(models.GcnEvent.retracted).where(models.GcnEvent.dateobs == dateobs).scalar_subquery()
    rows = session.execute(
        sa.select(Fd, D, R).join(D, D.id == Fd.default_followup_id).outerjoin(R, R.id == Fd.followup_request_id)
        .where(Fd.default_followup_id.in_(readable_defaults(principal).with_only_columns(D.id)),
               sa.func.jsonb_typeof(cond) == "object", Fd.created_at >= dateobs, in_region,
               visible_obj_clause(principal, Fd.obj_id), sa.not_(sa.func.coalesce(retracted, False)))
        .order_by(Fd.created_at.desc())).all()
    return [{"rule_id": rule.id, "rule": rule.default_followup_name, "obj_id": fired.obj_id,
             "fired_at": fired.created_at.isoformat(), "followup_request_id": fired.followup_request_id,
             "status": display_status(req) if req is not None else None,
             "instrument": rule.allocation.instrument.name} for fired, rule, req in rows]
