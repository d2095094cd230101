"""The base handler: SkyPortal's envelope, token auth, body validation and error mapping.

Every handler method is declared with :func:`endpoint`, which records its
OpenAPI description, checks the ACLs it needs and validates its body against a
JSON Schema before the method runs. Domain exceptions from ``broker`` become
HTTP errors here, in one place.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
from dataclasses import dataclass
from urllib.parse import unquote
from typing import Any, Callable

import sqlalchemy as sa
import tornado.ioloop
import tornado.web

from broker import __version__
from broker.access.auth import Principal, authenticate
from broker.errors import BrokerError, Unauthenticated, ValidationError
from broker.pagination import Page, page_from_args
from broker.runtime.db import is_outage, refused_input
from broker.validation import loads_strict, validate

log = logging.getLogger("skybroker.api")
SESSION_COOKIE = "skybroker_token"  # the web pages' sign-in: a signed cookie holding the user's API token
SESSION_DAYS = 30


@dataclass(frozen=True)
class Param:
    """A query parameter, for the OpenAPI spec."""

    name: str
    schema: dict
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class EndpointSpec:
    summary: str
    tags: tuple[str, ...]
    acls: tuple[str, ...] = ()
    body: dict | None = None
    params: tuple[Param, ...] = ()
    auth: bool = True
    description: str = ""


OBJ_FILTER_PARAMS = (
    Param("classifications", {"type": "string"}, "Comma-separated classes to require"),
    Param("minRedshift", {"type": "number"}), Param("maxRedshift", {"type": "number"}),
    Param("localizationDateobs", {"type": "string"}, "GCN event time: only objects in its localization"),
    Param("localizationName", {"type": "string"}), Param("localizationCumprob", {"type": "number"}, "default 0.95"),
    Param("firstDetectionAfter", {"type": "string"}, "first detection (S/N >= 5) at or after this time"),
    Param("lastDetectionBefore", {"type": "string"}, "last detection at or before this time"),
    Param("numberDetections", {"type": "integer"}, "at least this many detections"),
    # our addition on candidates (SkyPortal's sources have them): the web page's magnitude filter
    Param("minLatestMagnitude", {"type": "number"}, "Latest detection magnitude <= this (our addition)"),
    Param("maxLatestMagnitude", {"type": "number"}, "Latest detection magnitude >= this (our addition)"),
    Param("minPeakMagnitude", {"type": "number"}, "Peak magnitude <= this (our addition)"),
    Param("maxPeakMagnitude", {"type": "number"}, "Peak magnitude >= this (our addition)"),
)

PAGINATION_PARAMS = (
    Param("pageNumber", {"type": "integer", "minimum": 1}, "Page number (1-based)"),
    Param("numPerPage", {"type": "integer", "minimum": 1}, "Results per page (capped)"),
)


def endpoint(
    summary: str,
    *,
    tags: tuple[str, ...] | str,
    acls: tuple[str, ...] = (),
    body: dict | None = None,
    params: tuple[Param, ...] = (),
    auth: bool = True,
    description: str = "",
) -> Callable:
    """Declare a handler method: its spec, the ACLs it needs and its body schema."""
    spec = EndpointSpec(
        summary=summary, tags=(tags,) if isinstance(tags, str) else tuple(tags), acls=tuple(acls),
        body=body, params=tuple(params), auth=auth, description=description,
    )

    def decorate(method: Callable) -> Callable:
        if inspect.iscoroutinefunction(method):
            # async methods hand their slow work to self.blocking themselves; auth and the body
            # check still run on the handler pool
            @functools.wraps(method)
            async def wrapper(self: "BaseHandler", *args, **kwargs):
                await self.in_pool(self._check, spec)
                return await method(self, *args, **kwargs)
        else:
            # the whole method (auth, body, database work) runs on the handler pool; what it
            # finishes is sent from the IOLoop
            @functools.wraps(method)
            async def wrapper(self: "BaseHandler", *args, **kwargs):
                def call():
                    self._check(spec)
                    return method(self, *args, **kwargs)

                await self.in_pool(call, deferred=True)

        wrapper.__endpoint__ = spec
        return wrapper

    return decorate


class QueryArgs:
    """Typed query arguments, for the API's handlers and the web pages alike: a bad one is a
    ValidationError naming it."""

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ValidationError(f"Invalid {name}: must be an integer, got {raw!r}", field=name) from None

    def bool_arg(self, name: str, default: bool = False) -> bool:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        low = raw.lower()
        if low in ("true", "t", "1", "yes"):
            return True
        if low in ("false", "f", "0", "no"):
            return False
        raise ValidationError(f"Invalid {name}: must be true or false, got {raw!r}", field=name)

    def page(self, default: int | None = None) -> Page:
        srv = self.config.server
        return page_from_args(
            self.get_query_argument("pageNumber", None), self.get_query_argument("numPerPage", None),
            default or srv.default_num_per_page, srv.max_num_per_page,
        )

    def float_arg(self, name: str, default: float | None = None) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(f"Invalid {name}: must be a number, got {raw!r}", field=name) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"Invalid {name}: must be finite", field=name)
        return value

    def obj_filter_args(self) -> dict:
        """Query arguments of broker.objects.objs.ObjFilters, shared by candidates and sources."""
        from broker.objects.objs import parse_date, parse_strings

        return dict(
            classifications=parse_strings(self.str_arg("classifications")),
            min_redshift=self.float_arg("minRedshift"), max_redshift=self.float_arg("maxRedshift"),
            localization_dateobs=self.str_arg("localizationDateobs"),
            localization_name=self.str_arg("localizationName"),
            localization_cumprob=self.float_arg("localizationCumprob", 0.95),
            first_detection_after=parse_date(self.str_arg("firstDetectionAfter"), "firstDetectionAfter"),
            last_detection_before=parse_date(self.str_arg("lastDetectionBefore"), "lastDetectionBefore"),
            number_detections=self.int_arg("numberDetections"),
            min_latest_magnitude=self.float_arg("minLatestMagnitude"),
            max_latest_magnitude=self.float_arg("maxLatestMagnitude"),
            min_peak_magnitude=self.float_arg("minPeakMagnitude"),
            max_peak_magnitude=self.float_arg("maxPeakMagnitude"),
        )

    def str_arg(self, name: str, default: str | None = None) -> str | None:
        raw = self.get_query_argument(name, None)
        return default if raw is None or raw == "" else raw


def look_up_principal(application, header: str | None) -> Principal:
    """The token look-up (of the API's handlers and the web pages), on an autocommit connection (no
    BEGIN/COMMIT round trips). It is a request's first statement: on a connection that died since it was
    pooled (the pool does not ping), it is tried once more, on a fresh one (the failure invalidated the
    pool's older connections)."""
    def look_up() -> Principal:
        with application.auth_engine.connect() as conn:
            return authenticate(conn, header)

    try:
        return look_up()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return look_up()


async def run_in_pool(application, fn, *args, **kwargs):
    """``fn`` on the application's handler pool (inline when ``server.handler_threads`` is 0)."""
    pool = application.handler_pool
    if pool is None:
        return fn(*args, **kwargs)
    return await tornado.ioloop.IOLoop.current().run_in_executor(pool, functools.partial(fn, *args, **kwargs))


def session_token(handler: tornado.web.RequestHandler) -> str | None:
    """The API token in the web pages' signed sign-in cookie, if the request carries a valid one."""
    raw = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
    return raw.decode("ascii", "replace") if raw else None


class BaseHandler(QueryArgs, tornado.web.RequestHandler):
    """Envelope, auth and error mapping for every API handler."""

    body: Any = None
    _principal: Principal | None = None
    _deferring: bool = False
    _deferred: tuple | None = None
    methods: frozenset[str] = frozenset()

    def initialize(self, methods: frozenset[str] = frozenset()) -> None:
        """``methods``: the HTTP methods this route allows (from the route table)."""
        self.methods = methods

    # -- resources, via the application (never module globals) -------------------
    @property
    def config(self):
        return self.application.config

    async def in_pool(self, fn, *args, deferred: bool = False):
        """Run ``fn`` on the application's handler pool (inline when ``server.handler_threads`` is 0).

        ``deferred``: calls to :meth:`finish` made by ``fn`` are recorded and sent here, after ``fn``
        returned, so after the transaction it ran in committed (and on the IOLoop: Tornado's output is
        not thread-safe)."""
        self._deferring = deferred
        try:
            result = await run_in_pool(self.application, fn, *args)
        except BaseException:
            self._deferred = None  # e.g. the commit after success() failed: the error is the answer
            raise
        finally:
            self._deferring = False
        if self._deferred is not None:
            chunk, self._deferred = self._deferred[0], None
            super().finish(chunk)
        return result

    def finish(self, chunk=None):
        if self._deferring:
            self._deferred = (chunk,)
            return None
        return super().finish(chunk)

    @staticmethod
    async def _run_on(pool, fn, *args, **kwargs):
        return await tornado.ioloop.IOLoop.current().run_in_executor(pool, functools.partial(fn, *args, **kwargs))

    async def blocking(self, fn, *args, **kwargs):
        """Run ``fn`` (facility HTTP, long queries) on the app's thread pool, not on the IOLoop."""
        return await self._run_on(self.application.executor, fn, *args, **kwargs)

    def session(self):
        """A new ORM session; use as ``with self.session() as s, s.begin(): ...``."""
        return self.application.session_factory()

    # -- auth ---------------------------------------------------------------------
    def prepare(self) -> None:
        if self.request.method not in self.methods:
            raise tornado.web.HTTPError(405)
        if "\x00" in unquote(self.request.uri or ""):
            raise ValidationError("Invalid request: the path or query contains a NUL character")

    def _check(self, spec: EndpointSpec) -> None:
        """Authenticate, check the ACLs and validate the body, as ``spec`` says (on the handler pool)."""
        if spec.auth:
            header = self.request.headers.get("Authorization")
            if header is None and (token := session_token(self)) is not None:
                # the web pages' sign-in cookie stands in for the header (our addition, as SkyPortal's own
                # front end uses its session); a write must also carry the page's XSRF token
                if self.request.method not in ("GET", "HEAD"):
                    self.check_xsrf_cookie()
                header = f"token {token}"
            self._principal = self._authenticate(header)
            self.principal.require(*spec.acls)
        if spec.body is not None:
            self.body = validate(self.json_body(), spec.body)

    def _authenticate(self, header: str | None) -> Principal:
        return look_up_principal(self.application, header)

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise Unauthenticated("Authentication required")
        return self._principal

    # -- input --------------------------------------------------------------------
    def json_body(self) -> Any:
        raw = self.request.body
        if not raw or not raw.strip():
            raise ValidationError("Request body must be a JSON object")
        return loads_strict(raw)

    # -- output -------------------------------------------------------------------
    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # nothing the API answers (JSON, images, CSV, a comment's attachment shown inline) may run as a page
        # of this origin, where the pages' sign-in cookie would authenticate its calls
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")

    def exists(self) -> None:
        """The answer to a HEAD request whose object exists: 200, no body."""
        self.set_status(200)
        self.finish()

    def success(self, data: Any = None, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps({"status": "success", "data": {} if data is None else data, "version": __version__}))

    def write_error(self, status_code: int, **kwargs) -> None:
        message = self._reason
        data: dict = {}
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, BrokerError):
            status_code = exc.status
            message = exc.message
            self.set_status(status_code)
            data = exc.envelope_data()
        elif isinstance(exc, tornado.web.HTTPError):
            if status_code == 405:
                self.set_header("Allow", ", ".join(sorted(self.methods)))
                message = f"Method {self.request.method} not allowed on {self.request.path}"
            elif exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and is_outage(exc):
            status_code = 503
            message = "Database unavailable; retry later"
            self.set_status(503)
        elif exc is not None and (refused := refused_input(exc)):
            status_code = 400
            message = f"Invalid value: the database refused it ({refused})"
            self.set_status(400)
        elif status_code >= 500:
            message = "Internal server error"
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Token realm="skybroker"')
        if self.request.method == "HEAD":  # no body on HEAD, the status says it all
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": "error", "message": message, "data": data,
                                "version": __version__}))

    def log_exception(self, typ, value, tb) -> None:
        if value is not None and is_outage(value):
            log.warning("%s %s -> 503: database unavailable (%s)", self.request.method, self.request.path,
                        type(value).__name__)
        elif value is not None and (refused := refused_input(value)):
            log.warning("%s %s -> 400: the database refused a value: %s", self.request.method, self.request.path,
                        refused)
        elif isinstance(value, BrokerError):
            log.info("%s %s -> %d %s", self.request.method, self.request.path, value.status, value.message)
        else:
            super().log_exception(typ, value, tb)


def _finite(value: Any) -> Any:
    """``value`` with every NaN/±Infinity float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON out: non-finite floats (stored before input was strict, or computed) become null."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False)


class NotFoundHandler(BaseHandler):
    """Answers every unknown route with a 404 envelope."""

    def initialize(self, **kwargs) -> None:
        pass

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, "Invalid API endpoint: %s", self.request.path)
