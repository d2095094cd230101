"""Prioritisation: priorities for a set of requests from the objects' latest magnitudes or a localization's
probability density, scaled to [minimumPriority, maximumPriority]; each facility writes the priority its
own way (``FacilityAPI.priority_payload``: LCO turns it into an ipp_value) and replaces the request where
it is live and the payload changed."""

from __future__ import annotations

import models
from models.followup import FollowupStatus

from broker.access.auth import Principal
from broker.errors import ValidationError
from broker.followup.reports import (check_range, latest_magnitudes, localization_scores, priorities_by_magnitude,
                                     priorities_by_score)
from broker.followup.requests import load_request, require_owner_or_admin

FR = models.FollowupRequest


def prioritize(service, principal: Principal, body: dict) -> dict:
    """SkyPortal's PUT /api/followup_request/prioritization: ``requestIds`` (ours: ``followupRequestIds``),
    ``priorityType`` (default magnitude), ``localizationId``, ``minimumPriority`` (1), ``maximumPriority`` (5).
    ``localization`` multiplies in the distance term of a 3-D map where the object has a redshift."""
    from broker.sky.gcn import stored_skymap

    ids = body.get("requestIds") if body.get("requestIds") is not None else body.get("followupRequestIds")
    if not ids:
        raise ValidationError("requestIds is required", field="requestIds")
    if body.get("requestIds") is not None and body.get("followupRequestIds") is not None and \
            list(body["requestIds"]) != list(body["followupRequestIds"]):
        raise ValidationError("Invalid field 'followupRequestIds': it is the same as requestIds, and they differ",
                              field="followupRequestIds")
    kind = body.get("priorityType", "magnitude")
    lo, hi = float(body.get("minimumPriority", 1)), float(body.get("maximumPriority", 5))
    check_range(lo, hi)
    with service.session_factory() as session:
        reqs = [load_request(session, principal, rid) for rid in dict.fromkeys(ids)]
        for req in reqs:
            require_owner_or_admin(session, principal, req)
        objs = {r.obj_id for r in reqs}
        if kind == "magnitude":
            basis = latest_magnitudes(session, principal, objs)
            by_obj = priorities_by_magnitude(basis, lo, hi)
            why = "no detection to rank by"
        else:
            if body.get("localizationId") is None:
                raise ValidationError("localizationId is required if priorityType is localization",
                                      field="localizationId")
            loc = session.get(models.Localization, body["localizationId"])
            if loc is None:
                raise ValidationError(f"Invalid localizationId: no localization {body['localizationId']}",
                                      field="localizationId")
            basis = localization_scores(stored_skymap(loc), {r.obj_id: (r.obj.ra, r.obj.dec, r.obj.redshift) for r in reqs})
            by_obj = priorities_by_score(basis, lo, hi)
            why = "outside the localization"
    out = {}
    for req in reqs:
        if req.obj_id not in by_obj:
            out[req.id] = {"priority": req.priority, "skipped": why}
            continue
        p = round(by_obj[req.obj_id], 4)
        api = service.facility(req.allocation.instrument)
        payload = api.priority_payload(req.payload, p, lo, hi)
        active = req.status in (FollowupStatus.submitted, FollowupStatus.scheduled)
        changed = payload != req.payload
        if active and changed and api.submits:
            service.update(principal, req.id, {"payload": payload, "priority": p})
        else:
            with service.session_factory() as session, session.begin():
                row = session.get(FR, req.id)
                row.priority = p
                if row.status is FollowupStatus.pending or not api.submits:
                    row.payload = payload
        entry = {"priority": p, "basis": basis[req.obj_id], "resubmitted": bool(active and changed and api.submits)}
        if "ipp_value" in payload:
            entry["ipp_value"] = payload["ipp_value"]
        out[req.id] = entry
    return out
