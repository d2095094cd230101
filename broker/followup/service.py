"""The follow-up request service: create, submit, update, cancel, poll and take callbacks, dispatching to
facility adapters by the instrument's ``api_classname`` (``facility_apis.registry``).

Database work happens here, in short transactions; HTTP happens in the facility adapters, between
them, never inside an adapter-opened session. Every exchange is recorded as a FacilityTransaction.
A request row is committed (``pending``) before it is submitted, so no failure goes unseen.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import models
from facility_apis import registry
from facility_apis.base import (Credentials, FacilityAPI, FacilityCredentialsError, FacilityError, FacilityNotFound,
                                FacilityRejected, FacilityStatus, FacilityUnavailable)
from models.followup import TERMINAL_STATUSES, FollowupStatus

from broker.access.auth import Principal, get_readable_group, readable_groups_named
from broker.errors import BrokerError, NoSuchRow, ServiceUnavailable, ValidationError
from broker.followup.allocations import check_validity, credentials, usable_allocation
from broker.followup.default_rules import fill_window
from broker.followup.requests import load_request, require_owner_or_admin, status_from_text
from broker.followup.vault import Vault
from broker.objects.objs import get_visible_obj, user_group_ids
from broker.runtime.config import Config
from broker.runtime.db import is_outage

log = logging.getLogger("skybroker.followup")
A, FR = models.Allocation, models.FollowupRequest

# SkyPortal's constraints on POST /api/followup_request (top level; some may also sit in the payload)
CONSTRAINT_KEYS = ("not_if_duplicates", "source_group_ids", "ignore_source_group_ids", "not_if_classified",
                   "not_if_spectra_exist", "not_if_tns_classified", "not_if_tns_reported", "ignore_allocation_ids",
                   "not_if_assignment_exists")


def _ours(status: FacilityStatus) -> FollowupStatus:
    return FollowupStatus(status.value)


def _within(ra: float, dec: float, radius_deg: float):
    """SQL: objects within ``radius_deg`` of (ra, dec) (haversine; a declination band first)."""
    O = models.Obj
    r = math.radians
    hav = (sa.func.power(sa.func.sin((sa.func.radians(O.dec) - r(dec)) / 2), 2)
           + math.cos(r(dec)) * sa.func.cos(sa.func.radians(O.dec))
           * sa.func.power(sa.func.sin((sa.func.radians(O.ra) - r(ra)) / 2), 2))
    return sa.and_(O.dec.between(dec - radius_deg, dec + radius_deg),
                   2 * sa.func.asin(sa.func.sqrt(sa.func.least(hav, 1.0))) <= r(radius_deg))


@dataclass
class FollowupService:
    """Follow-up operations; holds the config, the credential vault and the facility adapters (by
    ``api_classname``: every registered one, overridden by any given)."""

    cfg: Config
    vault: Vault
    facilities: dict[str, FacilityAPI]
    session_factory: sessionmaker
    adapters: dict[str, FacilityAPI] = field(init=False)

    def __post_init__(self):
        self.adapters = registry.build(self.cfg.facilities)
        for key, api in self.facilities.items():
            self.adapters[key] = registry.configure(api, self.cfg.facilities)
        self.facilities = self.adapters

    # -- helpers ---------------------------------------------------------------------------------
    def facility(self, instrument: models.Instrument) -> FacilityAPI:
        api = self.adapters.get(instrument.api_classname or "")
        if api is None:
            raise ValidationError(f"Instrument '{instrument.name}' has no facility API "
                                  f"(api_classname {instrument.api_classname!r}; known: {sorted(self.adapters)})",
                                  field="allocation_id")
        return api

    def connect(self, api: FacilityAPI, allocation: models.Allocation, archive: bool = False):
        """(credentials, the adapter's client for them)."""
        if api.needs_credentials:
            creds = credentials(self.vault, allocation)
        else:
            creds = Credentials(token="", proposal_id=allocation.proposal_id)
        try:
            client = api.client(creds.archive_token if archive else creds.token, archive=archive)
        except FacilityUnavailable as exc:
            raise ServiceUnavailable(f"The facility is not configured: {exc.message}") from None
        return creds, client

    def form_schema(self, instrument: models.Instrument) -> dict:
        return self.facility(instrument).form_schema(instrument.name)

    @staticmethod
    def record(session: Session, client, request_id: int | None, initiator: int | None) -> None:
        for ex in getattr(client, "exchanges", []):
            session.add(models.FacilityTransaction(followup_request_id=request_id, initiator_id=initiator,
                                                   action=ex.action, request=ex.request, response=ex.response))
        if hasattr(client, "exchanges"):
            client.exchanges.clear()

    # -- create ----------------------------------------------------------------------------------
    def ignored_by_constraints(self, session: Session, principal: Principal, obj: models.Obj, allocation_id: int,
                               c: dict, exclude_id: int | None = None) -> str | None:
        """SkyPortal's optional constraints: why the request is not submitted, or None. Spatial ones look at
        objects within ``radius`` arcsec (default 0.5). Each looks only at what the requester can see."""
        from broker.objects.objs import visible_classifications_stmt, visible_obj_clause

        radius = float(c.get("radius", 0.5) if c.get("radius") is not None else 0.5)
        if not 0 <= radius <= 3600:
            raise ValidationError("Invalid field 'radius': must be between 0 and 3600 arcsec", field="radius")
        near = sa.select(models.Obj.id).where(_within(obj.ra, obj.dec, radius / 3600.0),
                                              visible_obj_clause(principal))
        S = models.Source
        wanted = [g.id for g in readable_groups_named(session, principal, c.get("source_group_ids") or [],
                                                      "source_group_ids")]
        if wanted:
            saved = set(session.execute(sa.select(S.group_id).where(
                S.obj_id == obj.id, S.group_id.in_(wanted), S.active)).scalars())
            if saved != set(wanted):
                return ("There is no source for one or more of the source_group_ids specified as a constraint, "
                        "not submitting request.")
        if c.get("not_if_duplicates"):
            from broker.followup.requests import readable_requests

            allocs = list(dict.fromkeys([allocation_id, *(c.get("ignore_allocation_ids") or [])]))
            existing = session.execute(readable_requests(principal).where(
                FR.allocation_id.in_(allocs), FR.obj_id.in_(near), FR.id != (exclude_id or -1),
                FR.status.in_([FollowupStatus.pending, FollowupStatus.submitted, FollowupStatus.scheduled,
                               FollowupStatus.completed])).limit(1)).scalar()
            if existing is not None:
                if existing.allocation_id == allocation_id:
                    return "There is already a follow-up request for this source and allocation, not submitting request."
                return ("There is already a follow-up request for this source and one of the ignore_allocation_ids, "
                        "not submitting request.")
        groups = [g.id for g in readable_groups_named(session, principal, c.get("ignore_source_group_ids") or [],
                                                      "ignore_source_group_ids")]
        if groups and session.execute(sa.select(S.id).where(
                S.obj_id.in_(near), S.group_id.in_(groups), S.active)).first():
            return ("There is a source for one or more of the ignore_source_group_ids specified as a constraint, "
                    "not submitting request.")
        C = models.Classification
        if c.get("not_if_classified") and session.execute(
                visible_classifications_stmt(principal).where(C.obj_id.in_(near), C.ml.is_(False))).first():
            return "Source has already been classified, not submitting request (as per constraint)."
        if c.get("not_if_spectra_exist") and session.execute(
                sa.select(models.Spectrum.id).where(models.Spectrum.obj_id.in_(near))).first():
            return "Source has already been observed spectroscopically, not submitting request (as per constraint)."
        O = models.Obj
        if c.get("not_if_tns_classified") and session.execute(
                sa.select(O.id).where(O.id.in_(near), O.tns_name.startswith("SN"))).first():
            return (f"Source within {radius} arcsec has already been classified in TNS, not submitting request "
                    "(as per constraint).")
        hours = c.get("not_if_tns_reported")
        if hours is not None:
            for oid, info in session.execute(sa.select(O.id, O.tns_info).where(
                    O.id.in_(near), O.tns_name.is_not(None), O.tns_name != "")).all():
                when = (info or {}).get("discoverydate")
                try:
                    age = (arrow.utcnow() - arrow.get(when)).total_seconds() / 3600 if when else None
                except (arrow.parser.ParserError, ValueError, TypeError):
                    age = None
                if age is not None and age > float(hours):
                    return (f"A Source within {radius} arcsec ({oid}) has already been reported to TNS {age:.1f} "
                            "hours ago, not submitting request (as per constraint).")
        if c.get("not_if_assignment_exists"):
            raise ValidationError("Invalid field 'not_if_assignment_exists': skybroker keeps no observing-run "
                                  "assignments", field="not_if_assignment_exists")
        return None

    def check_request(self, session: Session, principal: Principal, body: dict) -> tuple[models.Allocation, FacilityAPI]:
        get_visible_obj(session, principal, body["obj_id"])
        allocation = usable_allocation(session, principal, body["allocation_id"])
        api = self.facility(allocation.instrument)
        api.validate(allocation.instrument.name, body["payload"])
        p = body["payload"]
        start = arrow.get(p["start_date"]).to("utc").naive if p.get("start_date") else None
        end = arrow.get(p["end_date"]).to("utc").naive if p.get("end_date") else None
        check_validity(allocation, start, end)
        for gid in body.get("target_group_ids", []):
            get_readable_group(session, principal, gid)
        return allocation, api

    def create(self, principal: Principal, body: dict, default_followup_id: int | None = None) -> dict:
        """Check, store as pending, submit, record. Returns {"id", "request_status"} or, when a constraint
        says not to, SkyPortal's {"id": None, "ignored": True, "message": ...}."""
        payload = body["payload"]
        constraints = {k: body[k] for k in (*CONSTRAINT_KEYS, "radius") if k in body}
        for k in ("not_if_duplicates", "not_if_classified", "not_if_spectra_exist", "ignore_source_group_ids"):
            if k in payload and k not in constraints:  # constraints may also sit in the payload
                constraints[k] = payload[k]
        with self.session_factory() as session, session.begin():
            allocation, _ = self.check_request(session, principal, body)
            obj = session.get(models.Obj, body["obj_id"])
            why = self.ignored_by_constraints(session, principal, obj, allocation.id, constraints)
            if why:
                return {"id": None, "ignored": True, "message": why}
            req = FR(obj_id=body["obj_id"], allocation_id=allocation.id, requester_id=principal.user_id,
                     last_modified_by_id=principal.user_id, payload=payload, status=FollowupStatus.pending,
                     priority=body.get("priority"), comment=body.get("comment"),
                     default_followup_id=default_followup_id,
                     target_groups=[session.get(models.Group, g)
                                    for g in dict.fromkeys(body.get("target_group_ids", []))],
                     watchers=[session.get(models.User, principal.user_id)])
            for uid in body.get("watcher_ids") or []:
                user = session.get(models.User, uid)
                if user is None:
                    raise ValidationError(f"Invalid field 'watcher_ids': no user {uid}", field="watcher_ids")
                if user not in req.watchers:
                    req.watchers.append(user)
            session.add(req)
            session.flush()
            rid = req.id
        self.submit(rid, initiator=principal.user_id, raise_errors=True)
        from broker.followup.requests import display_status

        with self.session_factory() as session, session.begin():
            req = session.get(FR, rid)
            if body.get("status") and not self.facility(req.allocation.instrument).submits:
                # GENERICAPI: the requester's initial status stands (a facility that submits answers itself)
                req.status, req.status_text = status_from_text(body["status"], "status"), body["status"].strip()
            return {"id": rid, "request_status": display_status(req)}

    def retrieve(self, principal: Principal, request_id: int) -> dict:
        """SkyPortal's GET /api/photometry_request/{id}: ask the facility now (status, and frames once completed)."""
        from broker.followup.requests import display_status

        with self.session_factory() as session:
            req = load_request(session, principal, request_id)
            api = self.facility(req.allocation.instrument)
            if not api.submits or not req.remote_request_ids:
                raise ValidationError("Cannot retrieve requests on this instrument." if not api.submits else
                                      f"Follow-up request {request_id} has nothing at the facility to retrieve")
        self.refresh(request_id)
        with self.session_factory() as session, session.begin():
            req = session.get(FR, request_id)
            req.last_modified_by_id = principal.user_id
            return {"id": req.id, "request_status": display_status(req), "frames": list(req.frames)}

    # -- submit / cancel / update / refresh -----------------------------------------------------------
    def _claim(self, session: Session, request_id: int) -> models.FollowupRequest | None:
        """Lock the row for the length of the exchange; another worker skips it."""
        return session.execute(sa.select(FR).where(FR.id == request_id).with_for_update(skip_locked=True,
                                                                                          of=FR)).scalar()

    @staticmethod
    def remote_name(req: models.FollowupRequest, revision: int | None = None) -> str:
        """The unique name a revision of a request has at the facility (how it is looked up)."""
        return f"{req.obj_id}-sb{req.id}r{req.revision if revision is None else revision}"[-50:]

    def submit(self, request_id: int, *, initiator: int | None = None,
               raise_errors: bool = False) -> FollowupStatus | None:
        """Submit a pending request (the adapter looks it up by its unique name first, so a lost reply
        never makes a second group). Anything but a database outage that stops it marks the row
        ``error`` with the reason, so no request stays pending for ever and no loop dies of it;
        ``raise_errors`` (the API) raises that reason as the caller's error."""
        try:
            status, error = self._submit(request_id, initiator)
        except BrokerError as exc:  # before the facility: no adapter, unreadable credentials, a payload refused
            self._mark_error(request_id, exc.message, {FollowupStatus.pending})
            status, error = FollowupStatus.error, exc
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("follow-up %d: submission failed", request_id)
            self._mark_error(request_id, f"could not be submitted: {type(exc).__name__}", {FollowupStatus.pending})
            status, error = FollowupStatus.error, ServiceUnavailable(
                f"Follow-up request {request_id} could not be submitted ({type(exc).__name__}); it is marked error")
        if error is not None:
            log.warning("follow-up %d: %s", request_id, error)
            if raise_errors:
                raise error
        return status

    def _mark_error(self, request_id: int, message: str, statuses) -> None:
        """Mark the request ``error`` with ``message`` if it is (still) in one of ``statuses``."""
        with self.session_factory() as session, session.begin():
            req = session.get(FR, request_id)
            if req is not None and req.status in statuses:
                req.status, req.status_message, req.status_text = FollowupStatus.error, message[:1000], None

    def _submit(self, request_id: int, initiator: int | None) -> tuple[FollowupStatus | None, BrokerError | None]:
        """One submission in one transaction: the status it left, and what the facility objected (if).
        A row that still carries the remote id of an earlier revision is an update: the adapter's
        ``update`` replaces that one (LCO: cancel it, then submit the new revision, looked up by name)."""
        with self.session_factory() as session, session.begin():
            req = self._claim(session, request_id)
            if req is None or req.status is not FollowupStatus.pending:
                return None, None
            api = self.facility(req.allocation.instrument)
            why = self._rule_constraints(session, req)
            if why:  # SkyPortal does not submit it; the row stays, saying why
                req.status, req.status_message = FollowupStatus.cancelled, why
                req.status_text = f"not submitted: {why}"
                return req.status, None
            creds, client = self.connect(api, req.allocation)
            name = self.remote_name(req)
            if "start_date" not in req.payload:  # rule-made: the window opens now, for the rule's validity_days
                rule = session.get(models.DefaultFollowupRequest, req.default_followup_id) \
                    if req.default_followup_id else None
                req.payload = fill_window(req.payload, *([rule.validity_days] if rule and rule.validity_days else []))
            group = api.build(req.allocation.instrument.name, req.payload, obj_id=req.obj_id, ra=req.obj.ra,
                              dec=req.obj.dec, proposal=creds.proposal_id or "", name=name)
            error: BrokerError | None = None
            try:
                if req.remote_id is not None:
                    result = api.update(client, req.remote_id, group)
                else:
                    result = api.submit(client, group)
                req.status, req.status_message, req.status_text = _ours(result.status), result.message, None
                req.remote_id, req.remote_request_ids, req.remote_name = (result.remote_id,
                                                                          result.remote_request_ids, result.name)
                req.duration_s = api.duration(group)
            except FacilityRejected as exc:
                req.status, req.status_message = FollowupStatus.rejected, f"rejected by the facility: {exc.message}"
                error = ValidationError(f"The facility rejected the request: {exc.message}", field="payload",
                                        errors=api.form_errors(req.allocation.instrument.name, exc.body))
            except FacilityCredentialsError as exc:
                req.status, req.status_message = FollowupStatus.error, exc.message
                error = ValidationError(f"Allocation {req.allocation_id}: the facility refused its credentials",
                                        field="allocation_id")
            except FacilityUnavailable as exc:
                req.status, req.status_message = FollowupStatus.error, f"facility unavailable: {exc.message}"
                error = ServiceUnavailable(f"The facility is unavailable: {exc.message}")
            if error is not None:
                req.status_text = None
            self.record(session, client, req.id, initiator)
            return req.status, error

    def _rule_constraints(self, session: Session, req: models.FollowupRequest) -> str | None:
        """A rule-made request's first submission: the rule's constraints (not_if_duplicates, ...), judged
        with what the rule's owner can see; why not to submit, or None."""
        if req.default_followup_id is None or req.revision != 0 or req.remote_id is not None \
                or req.requester is None:
            return None
        rule = session.get(models.DefaultFollowupRequest, req.default_followup_id)
        if rule is None or not rule.constraints:
            return None
        owner = Principal(user_id=req.requester.id, username=req.requester.username, token_id="",
                          permissions=frozenset())
        return self.ignored_by_constraints(session, owner, req.obj, req.allocation_id, rule.constraints,
                                           exclude_id=req.id)

    def _cancel_superseded(self, session: Session, req: models.FollowupRequest, api: FacilityAPI, client) -> None:
        """Before a new revision goes out: cancel whatever earlier revisions reached the facility, found by
        their names (a row in ``error`` may have lost the reply of a submission the facility kept)."""
        for revision in range(req.revision + 1):
            found = api.lookup(client, self.remote_name(req, revision))
            if found is not None and not found.status.terminal:
                try:
                    api.cancel(client, found.remote_id)
                except FacilityRejected:
                    pass  # finished meanwhile: nothing to cancel

    def cancel(self, principal: Principal, request_id: int) -> None:
        """Cancel at the facility (if it is there and not finished); the row stays, as cancelled
        (SkyPortal's "deleted")."""
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            require_owner_or_admin(session, principal, req)
            if req.status in TERMINAL_STATUSES:
                raise ValidationError(f"Follow-up request {request_id} is already {req.status.value}")
            if req.remote_id:
                api = self.facility(req.allocation.instrument)
                _, client = self.connect(api, req.allocation)
                try:
                    api.cancel(client, req.remote_id)
                except FacilityRejected as exc:  # finished meanwhile: refresh tells what it became
                    self.record(session, client, req.id, principal.user_id)
                    raise ValidationError(f"The facility cannot cancel it: {exc.message}") from None
                except FacilityUnavailable as exc:
                    self.record(session, client, req.id, principal.user_id)
                    raise ServiceUnavailable(f"The facility is unavailable: {exc.message}") from None
                self.record(session, client, req.id, principal.user_id)
            req.status, req.status_message, req.status_text = (FollowupStatus.cancelled,
                                                               f"cancelled by {principal.username}", None)
            req.last_modified_by_id = principal.user_id

    def set_status(self, principal: Principal, request_id: int, body: dict) -> None:
        """SkyPortal's PUT with ``status``: set by a person, no facility interaction (GENERICAPI's way)."""
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            require_owner_or_admin(session, principal, req)
            text = body["status"].strip()
            req.status = status_from_text(text, "status")
            req.status_text, req.status_message = text, f"set by {principal.username}"
            req.last_modified_by_id = principal.user_id
            if "comment" in body:
                req.comment = body["comment"]
            if body.get("priority") is not None:
                req.priority = body["priority"]
            if "payload" in body:
                req.payload = body["payload"]

    def update(self, principal: Principal, request_id: int, body: dict) -> FollowupStatus | None:
        """A new payload (and/or priority, target groups): the adapter's ``update`` replaces the request at
        the facility (LCO cannot edit a request group: it cancels it and submits the new revision)."""
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            require_owner_or_admin(session, principal, req)
            if req.status in (FollowupStatus.completed, FollowupStatus.cancelled):
                raise ValidationError(f"Follow-up request {request_id} is {req.status.value}: it cannot change")
            if body.get("obj_id") not in (None, req.obj_id):
                raise ValidationError(f"Invalid field 'obj_id': follow-up request {request_id} is for {req.obj_id}",
                                      field="obj_id")
            if body.get("allocation_id") not in (None, req.allocation_id):
                raise ValidationError(f"Invalid field 'allocation_id': follow-up request {request_id} uses "
                                      f"allocation {req.allocation_id}", field="allocation_id")
            payload = body.get("payload", req.payload)
            api = self.facility(req.allocation.instrument)
            api.validate(req.allocation.instrument.name, payload)
            if payload.get("start_date") or payload.get("end_date"):
                check_validity(req.allocation,
                               arrow.get(payload["start_date"]).to("utc").naive if payload.get("start_date") else None,
                               arrow.get(payload["end_date"]).to("utc").naive if payload.get("end_date") else None)
            if body.get("target_group_ids") is not None:
                req.target_groups = [get_readable_group(session, principal, g)
                                     for g in dict.fromkeys(body["target_group_ids"])]
            live = req.remote_id and req.status not in TERMINAL_STATUSES
            if not live and api.submits:  # never confirmed (error) or ended: no earlier revision may stay live
                _, client = self.connect(api, req.allocation)
                try:
                    self._cancel_superseded(session, req, api, client)
                except FacilityUnavailable as exc:
                    self.record(session, client, req.id, principal.user_id)
                    raise ServiceUnavailable(f"The facility is unavailable: {exc.message}") from None
                self.record(session, client, req.id, principal.user_id)
            req.payload = payload
            if body.get("priority") is not None:
                req.priority = body["priority"]
            if "comment" in body:
                req.comment = body["comment"]
            req.last_modified_by_id = principal.user_id
            req.revision += 1
            req.status, req.status_message, req.status_text = FollowupStatus.pending, "resubmitting after an update", None
            if not live:
                req.remote_id = None
            req.remote_request_ids = []
        return self.submit(request_id, initiator=principal.user_id, raise_errors=True)

    def refresh(self, request_id: int) -> FollowupStatus | None:
        """Poll the facility for one submitted request; fetch its frames once completed."""
        with self.session_factory() as session, session.begin():
            req = self._claim(session, request_id)
            if req is None or req.status in TERMINAL_STATUSES or not req.remote_request_ids:
                return None
            api = self.facility(req.allocation.instrument)
            creds, client = self.connect(api, req.allocation)
            try:
                result = api.refresh(client, req.remote_request_ids)
            except (FacilityUnavailable, FacilityNotFound, FacilityCredentialsError) as exc:
                self.record(session, client, req.id, None)
                req.last_polled_at = models.utcnow()
                log.warning("follow-up %d: refresh failed: %s", req.id, exc)
                return req.status
            new = _ours(result.status)
            if new is not req.status:
                req.status_text = None
            req.status, req.status_message = new, result.message
            req.last_polled_at = models.utcnow()
            self.record(session, client, req.id, None)
            if new is FollowupStatus.completed:
                self._attach_frames(session, req, api)
            return req.status

    def _attach_frames(self, session: Session, req: models.FollowupRequest, api) -> None:
        try:
            _, archive = self.connect(api, req.allocation, archive=True)
        except ServiceUnavailable as exc:
            log.warning("follow-up %d: no archive: %s", req.id, exc)
            return
        try:
            frames = api.frames(archive, req.remote_request_ids)
        except FacilityError as exc:
            log.warning("follow-up %d: archive unavailable: %s", req.id, exc)
            self.record(session, archive, req.id, None)
            return
        req.frames = [vars(f) for f in frames]
        self.record(session, archive, req.id, None)

    def fetch_frames(self, principal: Principal, request_id: int) -> list[dict]:
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            if req.status is not FollowupStatus.completed:
                raise ValidationError(f"Follow-up request {request_id} is {req.status.value}, not completed")
            self._attach_frames(session, req, self.facility(req.allocation.instrument))
            return list(req.frames)

    # -- the worker's rounds --------------------------------------------------------------------------
    def submit_pending(self, older_than_s: float = 0.0) -> int:
        """Submit rule-made pending requests (and any pending for longer than ``older_than_s``)."""
        which = FR.default_followup_id.is_not(None)
        if older_than_s > 0:  # also API-made ones left pending (a crash between commit and submit)
            which = sa.or_(which, FR.modified <= arrow.utcnow().shift(seconds=-older_than_s).naive)
        with self.session_factory() as session:
            ids = session.execute(sa.select(FR.id).where(FR.status == FollowupStatus.pending, which)
                                  .order_by(FR.id)).scalars().all()
        for rid in ids:
            # a request left pending by a crash may have reached the facility: look before submitting
            self.submit(rid)  # marks the row error on anything but an outage
        return len(ids)

    def refresh_all(self) -> int:
        with self.session_factory() as session:
            ids = session.execute(sa.select(FR.id).where(
                FR.status.in_([FollowupStatus.submitted, FollowupStatus.scheduled]))).scalars().all()
        for rid in ids:
            try:
                self.refresh(rid)
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("follow-up %d: refresh failed", rid)
                # no facility API, unreadable credentials, an adapter bug: polling again would fail the same way
                self._mark_error(rid, exc.message if isinstance(exc, BrokerError)
                                 else f"cannot be polled: {type(exc).__name__}",
                                 set(FollowupStatus) - TERMINAL_STATUSES)
        return len(ids)

    # -- callbacks from facilities --------------------------------------------------------------------
    # statuses a facility may report for a request that is not finished (a repeated report is a no-op)
    CALLBACK_STATUSES = frozenset({FollowupStatus.submitted, FollowupStatus.scheduled, FollowupStatus.completed,
                                   FollowupStatus.failed, FollowupStatus.expired, FollowupStatus.cancelled,
                                   FollowupStatus.rejected})

    def callback(self, principal: Principal, body: dict) -> None:
        """A status report from a facility (SkyPortal's FacilityMessageHandler: ``followup_request_id``,
        ``new_status``). The caller must be that facility's service identity: hold 'Post from <listener>'
        for the request's instrument and belong to the group of the request's allocation. Unknown ids and
        requests the caller may not report on answer the same 404. ``new_status`` is kept in the
        facility's words; it must say one of our states (e.g. "Completed", "observed: failed")."""
        rid = body["followup_request_id"]
        with self.session_factory() as session, session.begin():
            stmt = sa.select(FR).where(FR.id == rid).with_for_update(of=FR)
            if not principal.is_admin:
                stmt = stmt.where(FR.allocation_id.in_(sa.select(A.id).where(A.group_id.in_(user_group_ids(principal)))))
            req = session.execute(stmt).scalar()
            listener = None
            if req is not None:
                listener = req.allocation.instrument.listener_classname or req.allocation.instrument.api_classname
            if req is None or not principal.has(f"Post from {listener}"):
                raise NoSuchRow(f"Could not retrieve follow-up request with ID {rid} that this identity may report on")
            text = str(body["new_status"]).strip()
            new = status_from_text(text, "new_status", allowed=self.CALLBACK_STATUSES)
            if new is req.status:
                return
            if req.status in TERMINAL_STATUSES or req.status is FollowupStatus.pending:
                raise ValidationError(f"Invalid field 'new_status': follow-up request {rid} is {req.status.value}; "
                                      f"it cannot become {new.value}", field="new_status")
            session.add(models.FacilityTransaction(followup_request_id=req.id, initiator_id=principal.user_id,
                                                   action="callback", request={"body": body}, response=None))
            req.status = new
            req.status_text = text if text != new.value else None  # kept in the facility's words
            req.status_message = body.get("status_message") or f"{listener} reported {text}"
