"""The facility adapter interface, its typed results and exceptions, and HTTP written once.

Adapters only do I/O and return typed results; they never open database sessions and never import the
ORM (``models``) or the broker's services. The caller (``broker.followup.service``) records every
exchange from the :class:`Exchange` list an adapter fills in, and maps :class:`FacilityStatus` onto its
own request states.

Each adapter owns: its settings (``settings_section``: the ``facilities.<section>`` config block it reads),
its portal client (:meth:`FacilityAPI.client`), and its payload form (:meth:`FacilityAPI.form_schema`, a JSON
schema like SkyPortal's ``form_json_schema``). ``facility_apis.registry`` maps SkyPortal's ``api_classname``
onto adapters: adding a facility is one module plus one registry line.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from typing import Any

import enum

import requests


class FacilityStatus(str, enum.Enum):
    """Where a request stands at the facility (the service maps these onto its own states)."""

    pending = "pending"
    submitted = "submitted"
    scheduled = "scheduled"
    completed = "completed"
    expired = "expired"
    failed = "failed"
    cancelled = "cancelled"
    rejected = "rejected"
    error = "error"

    @property
    def terminal(self) -> bool:
        return self in (FacilityStatus.completed, FacilityStatus.expired, FacilityStatus.failed,
                        FacilityStatus.cancelled, FacilityStatus.rejected, FacilityStatus.error)


# kept for adapters written against the old name
FollowupStatus = FacilityStatus


# -- exceptions: HTTP codes mapped once ----------------------------------------------------------

class FacilityError(Exception):
    """Base class: something went wrong talking to a facility."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class FacilityCredentialsError(FacilityError):
    """401-403: the allocation's credentials were refused."""


class FacilityRejected(FacilityError):
    """400: the facility refused the request; ``body`` keeps its (nested) error messages."""


class FacilityNotFound(FacilityError):
    """404: the facility does not know the request."""


class FacilityUnavailable(FacilityError):
    """5xx, timeout or connection failure: try again later."""


@dataclass(frozen=True)
class Credentials:
    token: str
    proposal_id: str | None = None
    archive_token: str | None = None


@dataclass
class Exchange:
    """One HTTP exchange, for the FacilityTransaction log (credentials already redacted)."""

    action: str
    request: dict
    response: dict | None


@dataclass(frozen=True)
class SubmitResult:
    remote_id: str
    remote_request_ids: list
    name: str
    status: FacilityStatus
    message: str


@dataclass(frozen=True)
class RefreshResult:
    status: FacilityStatus
    message: str
    observations: list = field(default_factory=list)  # scheduled / completed observation blocks


@dataclass(frozen=True)
class Frame:
    """A data product of a completed request, from the facility's archive."""

    id: int
    filename: str
    url: str
    date_obs: str | None
    filter: str | None
    exptime: float | None
    reqnum: int | None


# -- HTTP, written once per portal ---------------------------------------------------------------

class PortalClient:
    """JSON over HTTP with token auth, timeouts, and status codes mapped to the exceptions above."""

    def __init__(self, base_url: str, token: str, timeout: float, scheme: str = "Token"):
        self.base_url = base_url.rstrip("/")
        self._auth = f"{scheme} {token}"
        self.timeout = timeout
        self.exchanges: list[Exchange] = []
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"PortalClient({self.base_url!r}, token=<hidden>)"

    def call(self, action: str, method: str, path: str, *, body: Any = None, params: dict | None = None,
             ok: tuple[int, ...] = (200, 201)) -> Any:
        url = f"{self.base_url}{path}"
        record = {"method": method, "url": url, "params": params or {},
                  "headers": {"Authorization": "<redacted>", "Content-Type": "application/json"},
                  "body": body}
        try:
            resp = self._session.request(method, url, json=body, params=params, timeout=self.timeout,
                                         headers={"Authorization": self._auth, "Accept": "application/json"})
        except requests.Timeout as exc:
            self.exchanges.append(Exchange(action, record, {"error": f"timeout after {self.timeout}s"}))
            raise FacilityUnavailable(f"{method} {path}: no answer within {self.timeout}s") from exc
        except requests.ConnectionError as exc:
            self.exchanges.append(Exchange(action, record, {"error": f"connection failed: {exc}"}))
            raise FacilityUnavailable(f"{method} {path}: cannot connect to {self.base_url}") from exc
        try:
            payload = resp.json() if resp.content else None
        except ValueError:
            payload = {"non_json_body": resp.text[:2000]}
        self.exchanges.append(Exchange(action, record, {"status": resp.status_code, "body": payload}))
        if resp.status_code in ok:
            return payload
        summary = _summarise(payload)
        if resp.status_code in (401, 403):
            raise FacilityCredentialsError(f"credentials refused ({resp.status_code}): {summary}",
                                           resp.status_code, payload)
        if resp.status_code == 404:
            raise FacilityNotFound(f"{method} {path}: not found", 404, payload)
        if 400 <= resp.status_code < 500:
            raise FacilityRejected(summary, resp.status_code, payload)
        raise FacilityUnavailable(f"{method} {path}: facility answered {resp.status_code}", resp.status_code, payload)


def drf_errors(body: Any) -> list[tuple[str, str]]:
    """DRF-style nested errors as (path, message) pairs: ('requests[0].windows[0].end', 'Window end ...')."""
    parts: list[tuple[str, str]] = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            if node and all(isinstance(x, str) for x in node):
                parts.append((path, " ".join(node)))
            else:
                for i, v in enumerate(node):
                    if v:
                        walk(v, f"{path}[{i}]")
        elif node is not None:
            parts.append((path, str(node)))

    walk(body, "")
    return parts


def _summarise(body: Any) -> str:
    """DRF-style nested errors → 'requests[0].configurations[0].instrument_configs[0].exposure_count: ...'."""
    parts = [f"{path}: {message}" if path else message for path, message in drf_errors(body)]
    return "; ".join(parts) if parts else json.dumps(body)[:500]


# -- the adapter interface -----------------------------------------------------------------------

def check_window(payload: dict) -> None:
    """A payload's ``start_date``/``end_date``: both dates, the end after the start (a 400 naming the field)."""
    import arrow

    from broker.errors import ValidationError

    for key in ("start_date", "end_date"):
        try:
            arrow.get(payload[key])
        except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):
            raise ValidationError(f"Invalid field '{key}': not a date", field=key) from None
    if arrow.get(payload["end_date"]) <= arrow.get(payload["start_date"]):
        raise ValidationError("Invalid field 'end_date': must be after start_date", field="end_date")


class FacilityAPI(abc.ABC):
    """One facility: validate a payload, build and submit its request, cancel, update, refresh."""

    name: str = ""
    #: the ``facilities.<section>`` config block this adapter reads (None: it needs no settings)
    settings_section: str | None = None
    #: whether a submission needs the allocation's credentials (``altdata``)
    needs_credentials: bool = True
    #: whether :meth:`submit` sends anything anywhere (GENERICAPI: no; requests are only tracked)
    submits: bool = True
    #: the payload key holding the request's priority, if the facility has one
    priority_key: str | None = None

    def configure(self, settings: Any) -> "FacilityAPI":
        """Take this adapter's config section (an object with attributes); returns self."""
        self.settings = settings
        return self

    def client(self, token: str | None, archive: bool = False) -> Any:
        """The portal client for one allocation's credentials (``archive``: its data archive)."""
        s = getattr(self, "settings", None)
        if s is None:
            raise FacilityUnavailable(f"{self.name}: no settings (facilities.{self.settings_section})")
        url = getattr(s, "archive_url", None) if archive else s.url
        if not url:
            raise FacilityUnavailable(f"{self.name}: facilities.{self.settings_section} has no "
                                      f"{'archive_url' if archive else 'url'}")
        return PortalClient(url, token or "", s.timeout_s)

    def priority_payload(self, payload: dict, priority: float, lo: float, hi: float) -> dict:
        """``payload`` with a priority in [lo, hi] written the facility's way (default: unchanged)."""
        if self.priority_key is None:
            return payload
        return {**payload, self.priority_key: priority}

    def fill_window(self, payload: dict, start: str, end: str) -> dict:
        """A rule-made payload without dates gets this window."""
        return {"start_date": start, "end_date": end, **payload}

    @abc.abstractmethod
    def form_schema(self, instrument_name: str) -> dict:
        """The JSON schema of a follow-up payload for this instrument (clients build forms from it)."""

    @abc.abstractmethod
    def validate(self, instrument_name: str, payload: dict) -> None:
        """Raise broker.errors.ValidationError naming the field if the payload is not acceptable."""

    def form_errors(self, instrument_name: str, body: Any) -> dict[str, str]:
        """A refusal's body (``FacilityRejected.body``) as messages per field of the instrument's form (its
        form schema's property names), for a form to show beside its fields; what names no field is left
        out (the refusal's whole message still says it). Default: none."""
        return {}

    @abc.abstractmethod
    def build(self, instrument_name: str, payload: dict, *, obj_id: str, ra: float, dec: float,
              proposal: str, name: str) -> dict:
        """The facility's request for a validated payload; ``name`` is unique per submission."""

    def lookup(self, client: PortalClient, name: str) -> SubmitResult | None:
        """The submission called ``name``, if the facility has it (default: cannot tell)."""
        return None

    def duration(self, request: dict) -> float | None:
        """Seconds of observing time ``request`` will be debited (default: unknown)."""
        return None

    def frames(self, archive: PortalClient, remote_request_ids: list) -> list[Frame]:
        """Data products of completed requests (default: none)."""
        return []

    @abc.abstractmethod
    def submit(self, client: PortalClient, request: dict) -> SubmitResult:
        """Submit ``request`` (from :meth:`build`); never submits twice for one name: an adapter that can
        look submissions up does so before every attempt."""

    @abc.abstractmethod
    def cancel(self, client: PortalClient, remote_id: str) -> None: ...

    @abc.abstractmethod
    def refresh(self, client: PortalClient, remote_request_ids: list) -> RefreshResult: ...

    def update(self, client: PortalClient, remote_id: str | None, request: dict) -> SubmitResult:
        """Default: facilities that cannot edit a request cancel it and submit the new one."""
        if remote_id is not None:
            try:
                self.cancel(client, remote_id)
            except FacilityRejected:
                pass  # already finished or cancelled: nothing left to cancel
        return self.submit(client, request)
