"""Follow-up: allocations, requests and their life at the facility.

Database work happens here, in short transactions; HTTP happens in the facility adapters, between
them, never inside an adapter-opened session. Every exchange is recorded as a FacilityTransaction.
A request row is committed (``pending``) before it is submitted, so no failure goes unseen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import models
from facility_apis.base import (Credentials, FacilityAPI, FacilityCredentialsError, FacilityError, FacilityNotFound,
                                FacilityRejected, FacilityUnavailable, PortalClient)
from models.followup import TERMINAL_STATUSES, FollowupStatus

from broker.access.auth import Principal, get_readable_group, readable_groups_named
from broker.runtime.config import Config
from broker.followup.vault import CredentialsUnreadable, Vault
from broker.runtime.db import is_outage
from broker.errors import BrokerError, NotFound, PermissionDenied, ServiceUnavailable, ValidationError
from broker.objects.objs import get_visible_obj, user_group_ids

log = logging.getLogger("skybroker.followup")
A, FR, I = models.Allocation, models.FollowupRequest, models.Instrument


# -- allocations ---------------------------------------------------------------------------------

def readable_allocations(principal: Principal) -> sa.Select:
    stmt = sa.select(A)
    if not principal.is_admin:
        stmt = stmt.where(A.group_id.in_(user_group_ids(principal)))
    return stmt


def get_allocation(session: Session, principal: Principal, allocation_id: int) -> models.Allocation:
    a = session.execute(readable_allocations(principal).where(A.id == allocation_id)).scalar()
    if a is None:
        raise NotFound(f"No allocation with ID {allocation_id}")
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
    out["instrument"] = {"id": a.instrument.id, "name": a.instrument.name}
    out["group"] = {"id": a.group.id, "name": a.group.name}
    return out


def _dates(body: dict) -> dict:
    out = {}
    for key in ("start_date", "end_date"):
        if body.get(key) is not None:
            try:
                out[key] = arrow.get(body[key]).to("utc").naive
            except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
                raise ValidationError(f"Invalid field '{key}': not a date", field=key) from None
    if out.get("start_date") and out.get("end_date") and out["end_date"] <= out["start_date"]:
        raise ValidationError("Invalid field 'end_date': must be after start_date", field="end_date")
    return out


def save_allocation(session: Session, principal: Principal, vault: Vault, body: dict,
                    allocation: models.Allocation | None = None) -> models.Allocation:
    principal.require("Manage allocations")
    if "group_id" in body:
        get_readable_group(session, principal, body["group_id"])
    if "instrument_id" in body and session.get(I, body["instrument_id"]) is None:
        raise ValidationError(f"Invalid instrument_id: no instrument with ID {body['instrument_id']}",
                              field="instrument_id")
    fields = {k: v for k, v in body.items() if k in ("group_id", "instrument_id", "pi", "proposal_id",
                                                      "hours_allocated")}
    fields.update(_dates({**({"start_date": allocation.start_date, "end_date": allocation.end_date}
                             if allocation else {}), **body}))
    if allocation is None:
        allocation = A(**fields)
        session.add(allocation)
    else:
        for k, v in fields.items():
            setattr(allocation, k, v)
    if "altdata" in body:
        allocation._altdata = vault.encrypt(body["altdata"]) if body["altdata"] else None
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
                       archive_token=data.get("ARCHIVE_TOKEN") or data["API_TOKEN"])


# -- the service -------------------------------------------------------------------------------------

@dataclass
class FollowupService:
    """Follow-up operations; holds the config, the credential vault and the facility adapters."""

    cfg: Config
    vault: Vault
    facilities: dict[str, FacilityAPI]
    session_factory: sessionmaker

    # -- helpers ---------------------------------------------------------------------------------
    def facility(self, instrument: models.Instrument) -> FacilityAPI:
        api = self.facilities.get(instrument.api_classname or "")
        if api is None:
            raise ValidationError(f"Instrument '{instrument.name}' has no facility API "
                                  f"(api_classname {instrument.api_classname!r})", field="allocation_id")
        return api

    def client(self, creds: Credentials, archive: bool = False) -> PortalClient:
        lco = self.cfg.facilities.lco
        return PortalClient(lco.archive_url if archive else lco.url,
                            creds.archive_token if archive else creds.token, lco.timeout_s)

    def form_schema(self, instrument: models.Instrument) -> dict:
        return self.facility(instrument).form_schema(instrument.name)

    @staticmethod
    def record(session: Session, client: PortalClient, request_id: int | None, initiator: int | None) -> None:
        for ex in client.exchanges:
            session.add(models.FacilityTransaction(followup_request_id=request_id, initiator_id=initiator,
                                                   action=ex.action, request=ex.request, response=ex.response))
        client.exchanges.clear()

    # -- create ----------------------------------------------------------------------------------
    def ignored_by_constraints(self, session: Session, principal: Principal, obj_id: str, payload: dict) -> str | None:
        """SkyPortal's optional constraints: why the request is skipped, or None. Each looks only at what
        the requester can see (another group's duplicates, classifications or saves are not consulted,
        so the answer reveals nothing of them)."""
        from broker.objects.objs import visible_classifications_stmt, visible_obj_clause

        D = models.ObjDuplicate
        if payload.get("not_if_duplicates") and session.execute(
                sa.select(D.obj_id).join(models.Obj, models.Obj.id == D.duplicate_obj_id)
                .where(D.obj_id == obj_id, visible_obj_clause(principal))).first():
            return "object has duplicates"
        if payload.get("not_if_classified") and session.execute(
                visible_classifications_stmt(principal).where(models.Classification.obj_id == obj_id)).first():
            return "object is classified"
        groups = [g.id for g in readable_groups_named(session, principal, payload.get("ignore_source_group_ids") or [],
                                                      "payload.ignore_source_group_ids")]
        if groups and session.execute(sa.select(models.Source.id).where(
                models.Source.obj_id == obj_id, models.Source.group_id.in_(groups), models.Source.active)).first():
            return "object is saved to an ignored group"
        return None

    def check_request(self, session: Session, principal: Principal, body: dict) -> tuple[models.Allocation, FacilityAPI]:
        get_visible_obj(session, principal, body["obj_id"])
        allocation = usable_allocation(session, principal, body["allocation_id"])
        api = self.facility(allocation.instrument)
        api.validate(allocation.instrument.name, body["payload"])
        start = arrow.get(body["payload"]["start_date"]).to("utc").naive
        end = arrow.get(body["payload"]["end_date"]).to("utc").naive
        if (allocation.start_date and start < allocation.start_date) or \
                (allocation.end_date and end > allocation.end_date):
            raise ValidationError(f"Invalid field 'payload.start_date': allocation {allocation.id} is valid "
                                  f"{allocation.start_date} – {allocation.end_date}", field="payload.start_date")
        for gid in body.get("target_group_ids", []):
            get_readable_group(session, principal, gid)
        return allocation, api

    def create(self, principal: Principal, body: dict, default_followup_id: int | None = None) -> dict:
        """Check, store as pending, submit, record. Returns {"id": ...} or {"ignored": True, ...}."""
        with self.session_factory() as session, session.begin():
            allocation, _ = self.check_request(session, principal, body)
            why = self.ignored_by_constraints(session, principal, body["obj_id"], body["payload"])
            if why:
                return {"ignored": True, "reason": why}
            req = FR(obj_id=body["obj_id"], allocation_id=allocation.id, requester_id=principal.user_id,
                     payload=body["payload"], status=FollowupStatus.pending, priority=body.get("priority"),
                     default_followup_id=default_followup_id,
                     target_groups=[session.get(models.Group, g)
                                    for g in dict.fromkeys(body.get("target_group_ids", []))],
                     watchers=[session.get(models.User, principal.user_id)])
            session.add(req)
            session.flush()
            rid = req.id
        self.submit(rid, initiator=principal.user_id, raise_errors=True)
        return {"id": rid}

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
                req.status, req.status_message = FollowupStatus.error, message[:1000]

    def _submit(self, request_id: int, initiator: int | None) -> tuple[FollowupStatus | None, BrokerError | None]:
        """One submission in one transaction: the status it left, and what the facility objected (if)."""
        with self.session_factory() as session, session.begin():
            req = self._claim(session, request_id)
            if req is None or req.status is not FollowupStatus.pending:
                return None, None
            api = self.facility(req.allocation.instrument)
            creds = credentials(self.vault, req.allocation)
            client = self.client(creds)
            name = self.remote_name(req)
            if "start_date" not in req.payload:  # rule-made: the window opens now
                req.payload = fill_window(req.payload)
            group = api.build(req.allocation.instrument.name, req.payload, obj_id=req.obj_id, ra=req.obj.ra,
                              dec=req.obj.dec, proposal=creds.proposal_id or "", name=name)
            error: BrokerError | None = None
            try:
                result = api.submit(client, group)
                req.status, req.status_message = result.status, result.message
                req.remote_id, req.remote_request_ids, req.remote_name = (result.remote_id,
                                                                          result.remote_request_ids, result.name)
                req.duration_s = api.duration(group)
            except FacilityRejected as exc:
                req.status, req.status_message = FollowupStatus.rejected, f"rejected by the facility: {exc.message}"
                error = ValidationError(f"The facility rejected the request: {exc.message}", field="payload")
            except FacilityCredentialsError as exc:
                req.status, req.status_message = FollowupStatus.error, exc.message
                error = ValidationError(f"Allocation {req.allocation_id}: the facility refused its credentials",
                                        field="allocation_id")
            except FacilityUnavailable as exc:
                req.status, req.status_message = FollowupStatus.error, f"facility unavailable: {exc.message}"
                error = ServiceUnavailable(f"The facility is unavailable: {exc.message}")
            self.record(session, client, req.id, initiator)
            return req.status, error

    def _cancel_superseded(self, session: Session, req: models.FollowupRequest, api: FacilityAPI,
                           client: PortalClient) -> None:
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
        """Cancel at the facility (if it is there and not finished); the row stays, as cancelled."""
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            _require_owner_or_admin(session, principal, req)
            if req.status in TERMINAL_STATUSES:
                raise ValidationError(f"Follow-up request {request_id} is already {req.status.value}")
            client = None
            if req.remote_id:
                api = self.facility(req.allocation.instrument)
                client = self.client(credentials(self.vault, req.allocation))
                try:
                    api.cancel(client, req.remote_id)
                except FacilityRejected as exc:  # finished meanwhile: refresh tells what it became
                    self.record(session, client, req.id, principal.user_id)
                    raise ValidationError(f"The facility cannot cancel it: {exc.message}") from None
                except FacilityUnavailable as exc:
                    self.record(session, client, req.id, principal.user_id)
                    raise ServiceUnavailable(f"The facility is unavailable: {exc.message}") from None
                self.record(session, client, req.id, principal.user_id)
            req.status, req.status_message = FollowupStatus.cancelled, f"cancelled by {principal.username}"

    def update(self, principal: Principal, request_id: int, body: dict) -> FollowupStatus | None:
        """A new payload: LCO cannot edit a request group, so cancel the old one and submit anew."""
        with self.session_factory() as session, session.begin():
            req = load_request(session, principal, request_id)
            _require_owner_or_admin(session, principal, req)
            if req.status in (FollowupStatus.completed, FollowupStatus.cancelled):
                raise ValidationError(f"Follow-up request {request_id} is {req.status.value}: it cannot change")
            payload = body.get("payload", req.payload)
            api = self.facility(req.allocation.instrument)
            api.validate(req.allocation.instrument.name, payload)
            client = self.client(credentials(self.vault, req.allocation))
            try:
                if req.remote_id and req.status not in TERMINAL_STATUSES:
                    try:
                        api.cancel(client, req.remote_id)
                    except FacilityRejected:
                        pass  # no longer cancellable: the new one replaces it anyway
                else:  # never confirmed (error) or ended: make sure no earlier revision is still live
                    self._cancel_superseded(session, req, api, client)
            except FacilityUnavailable as exc:
                self.record(session, client, req.id, principal.user_id)
                raise ServiceUnavailable(f"The facility is unavailable: {exc.message}") from None
            self.record(session, client, req.id, principal.user_id)
            req.payload = payload
            if "priority" in body:
                req.priority = body["priority"]
            req.revision += 1
            req.status, req.status_message = FollowupStatus.pending, "resubmitting after an update"
            req.remote_id, req.remote_request_ids = None, []
        return self.submit(request_id, initiator=principal.user_id, raise_errors=True)

    def refresh(self, request_id: int) -> FollowupStatus | None:
        """Poll the facility for one submitted request; fetch its frames once completed."""
        with self.session_factory() as session, session.begin():
            req = self._claim(session, request_id)
            if req is None or req.status in TERMINAL_STATUSES or not req.remote_request_ids:
                return None
            api = self.facility(req.allocation.instrument)
            creds = credentials(self.vault, req.allocation)
            client = self.client(creds)
            try:
                result = api.refresh(client, req.remote_request_ids)
            except (FacilityUnavailable, FacilityNotFound, FacilityCredentialsError) as exc:
                self.record(session, client, req.id, None)
                req.last_polled_at = models.utcnow()
                log.warning("follow-up %d: refresh failed: %s", req.id, exc)
                return req.status
            req.status, req.status_message = result.status, result.message
            req.last_polled_at = models.utcnow()
            self.record(session, client, req.id, None)
            if result.status is FollowupStatus.completed:
                self._attach_frames(session, req, api, creds)
            return req.status

    def _attach_frames(self, session: Session, req: models.FollowupRequest, api, creds: Credentials) -> None:
        archive = self.client(creds, archive=True)
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
            api = self.facility(req.allocation.instrument)
            self._attach_frames(session, req, api, credentials(self.vault, req.allocation))
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
        """A status report from a facility. The caller must be that facility's service identity: hold
        'Post from <facility>' for the request's instrument and belong to the group of the request's
        allocation. Unknown ids and requests the caller may not report on answer the same 404."""
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
                raise NotFound(f"No follow-up request with ID {rid} that this identity may report on")
            try:
                new = FollowupStatus(body["new_status"])
            except ValueError:
                raise ValidationError(f"Invalid field 'new_status': must be one of "
                                      f"{sorted(s.value for s in self.CALLBACK_STATUSES)}", field="new_status") from None
            if new is req.status:
                return
            if new not in self.CALLBACK_STATUSES:
                raise ValidationError(f"Invalid field 'new_status': a facility cannot report '{new.value}'",
                                      field="new_status")
            if req.status in TERMINAL_STATUSES or req.status is FollowupStatus.pending:
                raise ValidationError(f"Invalid field 'new_status': follow-up request {rid} is {req.status.value}; "
                                      f"it cannot become {new.value}", field="new_status")
            session.add(models.FacilityTransaction(followup_request_id=req.id, initiator_id=principal.user_id,
                                                   action="callback", request={"body": body}, response=None))
            req.status = new
            req.status_message = body.get("status_message") or f"{listener} reported {new.value}"


DEFAULT_WINDOW_DAYS = 7


def fill_window(payload: dict, days: float = DEFAULT_WINDOW_DAYS) -> dict:
    """A payload without dates gets the window [now, now + days] (default follow-up rules)."""
    now = arrow.utcnow()
    return {"start_date": now.isoformat(), "end_date": now.shift(days=days).isoformat(), **payload}


def save_default(session: Session, principal: Principal, service: "FollowupService", body: dict):
    """A default follow-up rule; its payload is checked now (with a window from now) as a request would be."""
    from broker.access.auth import readable_filters

    allocation = usable_allocation(session, principal, body["allocation_id"])
    service.facility(allocation.instrument).validate(allocation.instrument.name, fill_window(body["payload"]))
    sf = body.get("source_filter") or {}
    if not sf.get("filter_ids") and not sf.get("group_ids"):
        raise ValidationError("Invalid field 'source_filter': give filter_ids and/or group_ids that fire the rule",
                              field="source_filter")
    for fid in sf.get("filter_ids", []):
        if session.execute(readable_filters(principal).where(models.Filter.id == fid)).scalar() is None:
            raise ValidationError(f"Invalid field 'source_filter.filter_ids': no accessible filter {fid}",
                                  field="source_filter.filter_ids")
    for gid in [*sf.get("group_ids", []), *body.get("target_group_ids", [])]:
        get_readable_group(session, principal, gid)
    if session.execute(sa.select(models.DefaultFollowupRequest.id).where(
            models.DefaultFollowupRequest.default_followup_name == body["default_followup_name"])).first():
        raise ValidationError(f"A default follow-up named '{body['default_followup_name']}' already exists",
                              field="default_followup_name")
    rule = models.DefaultFollowupRequest(
        default_followup_name=body["default_followup_name"], allocation_id=allocation.id,
        requester_id=principal.user_id, payload=body["payload"], source_filter=sf,
        target_group_ids=body.get("target_group_ids", []))
    session.add(rule)
    session.flush()
    return rule


def readable_defaults(principal: Principal) -> sa.Select:
    D = models.DefaultFollowupRequest
    return sa.select(D).where(D.allocation_id.in_(readable_allocations(principal).with_only_columns(A.id)))


def load_request(session: Session, principal: Principal, request_id: int) -> models.FollowupRequest:
    req = session.execute(readable_requests(principal).where(FR.id == request_id)).scalar()
    if req is None:
        raise NotFound(f"No follow-up request with ID {request_id}")
    return req


def _require_owner_or_admin(session: Session, principal: Principal, req: models.FollowupRequest) -> None:
    """The requester, an admin, or a 'Manage allocations' holder in the group of the request's allocation
    (a group a request merely targets does not own its allocation's time)."""
    if principal.is_admin or req.requester_id == principal.user_id:
        return
    if principal.has("Manage allocations") and session.execute(
            user_group_ids(principal).where(models.GroupUser.group_id == req.allocation.group_id)).first():
        return
    raise PermissionDenied("Insufficient permissions: only the requester, an admin or a holder of "
                           "'Manage allocations' may change this follow-up request")


def readable_requests(principal: Principal) -> sa.Select:
    """Requests under allocations of the caller's groups (or targeted at them)."""
    stmt = sa.select(FR)
    if not principal.is_admin:
        groups = user_group_ids(principal)
        stmt = stmt.where(sa.or_(
            FR.allocation_id.in_(sa.select(A.id).where(A.group_id.in_(groups))),
            FR.id.in_(sa.select(models.followup_target_groups.c.followuprequest_id)
                      .where(models.followup_target_groups.c.group_id.in_(groups)))))
    return stmt


REQUEST_SORTS = {"created_at": FR.created_at, "status": FR.status, "priority": FR.priority, "id": FR.id}


@dataclass
class RequestQuery:
    obj_id: str | None = None
    allocation_id: int | None = None
    instrument_id: int | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    sort_by: str = "created_at"
    sort_order: str = "desc"


def list_requests(session: Session, principal: Principal, q: RequestQuery, page) -> tuple[list, int]:
    """Readable follow-up requests matching ``q``, one page of them, and how many match."""
    from broker.pagination import paginate

    stmt = readable_requests(principal)
    if q.obj_id:
        stmt = stmt.where(FR.obj_id == q.obj_id)
    if q.allocation_id is not None:
        stmt = stmt.where(FR.allocation_id == q.allocation_id)
    if q.instrument_id is not None:
        stmt = stmt.where(FR.allocation_id.in_(sa.select(A.id).where(A.instrument_id == q.instrument_id)))
    if q.status:
        try:
            stmt = stmt.where(FR.status == FollowupStatus(q.status))
        except ValueError:
            raise ValidationError(f"Invalid status: must be one of {[s.value for s in FollowupStatus]}",
                                  field="status") from None
    if q.start:
        stmt = stmt.where(FR.created_at >= q.start)
    if q.end:
        stmt = stmt.where(FR.created_at <= q.end)
    if q.sort_by not in REQUEST_SORTS:
        raise ValidationError(f"Invalid sortBy: must be one of {sorted(REQUEST_SORTS)}", field="sortBy")
    if q.sort_order not in ("asc", "desc"):
        raise ValidationError("Invalid sortOrder: must be asc or desc", field="sortOrder")
    col = REQUEST_SORTS[q.sort_by]
    return paginate(session, stmt.order_by(col.desc() if q.sort_order == "desc" else col.asc(), FR.id), page)


def transactions_of(session: Session, request_id: int) -> list:
    T = models.FacilityTransaction
    return session.execute(sa.select(T).where(T.followup_request_id == request_id).order_by(T.id)).scalars().all()


def watch(session: Session, principal: Principal, request_id: int, on: bool) -> None:
    req = load_request(session, principal, request_id)
    if on:
        user = session.get(models.User, principal.user_id)
        if user not in req.watchers:
            req.watchers.append(user)
    else:
        req.watchers = [u for u in req.watchers if u.id != principal.user_id]


def request_to_dict(req: models.FollowupRequest, transactions: list | None = None,
                    groups: set[int] | None = None) -> dict:
    """``groups``: name only these of its target groups (the caller's; None: all)."""
    out = req.to_dict()
    out["status"] = req.status.value
    out["allocation"] = {"id": req.allocation.id, "instrument_id": req.allocation.instrument_id,
                         "group_id": req.allocation.group_id}
    out["target_group_ids"] = sorted(g.id for g in req.target_groups if groups is None or g.id in groups)
    out["watcher_ids"] = sorted(u.id for u in req.watchers)
    if transactions is not None:
        out["transactions"] = [t.to_dict() for t in transactions]
    return out


def parse_when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return arrow.get(value).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid {name}: not a date", field=name) from None


def prioritize(service: FollowupService, principal: Principal, body: dict) -> dict:
    """Priorities scaled to [minimumPriority, maximumPriority], from the objects' latest magnitudes
    (``priorityType: magnitude``) or a localization's probability density at them (``localization``,
    times the distance term of a 3-D map when the object has a redshift). For LCO the priority becomes
    the ipp_value (cancel + resubmit, only where it changed)."""
    from broker.sky.gcn import stored_skymap
    from broker.followup.reports import (check_range, latest_magnitudes, localization_scores, priorities_by_magnitude,
                                   priorities_by_score, priority_to_ipp)

    lo, hi = float(body.get("minimumPriority", 1)), float(body.get("maximumPriority", 5))
    check_range(lo, hi)
    with service.session_factory() as session:
        reqs = [load_request(session, principal, rid) for rid in body["followupRequestIds"]]
        for req in reqs:
            _require_owner_or_admin(session, principal, req)
        objs = {r.obj_id for r in reqs}
        if body["priorityType"] == "magnitude":
            basis = latest_magnitudes(session, principal, objs)
            by_obj = priorities_by_magnitude(basis, lo, hi)
            why = "no detection to rank by"
        else:
            if body.get("localizationId") is None:
                raise ValidationError("Missing required field 'localizationId' for priorityType localization",
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
        ipp = priority_to_ipp(p, lo, hi)
        active = req.status in (FollowupStatus.submitted, FollowupStatus.scheduled)
        changed = req.payload.get("ipp_value") != ipp
        if active and changed:
            service.update(principal, req.id, {"payload": {**req.payload, "ipp_value": ipp}, "priority": p})
        else:
            with service.session_factory() as session, session.begin():
                row = session.get(FR, req.id)
                row.priority = p
                if row.status is FollowupStatus.pending:
                    row.payload = {**row.payload, "ipp_value": ipp}
        out[req.id] = {"priority": p, "ipp_value": ipp, "basis": basis[req.obj_id], "resubmitted": active and changed}
    return out
