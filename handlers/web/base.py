"""The web pages' base handler: sign-in by cookie, server-side templates, the same access rules as the API.

A page handler authenticates the cookie's API token with the API's own look-up
(:func:`handlers.base.look_up_principal`), then calls the same ``broker`` functions the API handlers call, with the same
:class:`~broker.access.auth.Principal`: a page shows exactly what that user's token may read. Writes made
from a page (save, reject, comment, follow-up) go to the API itself from the page's script, with the cookie
and the page's XSRF token (:meth:`handlers.base.BaseHandler._check`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, urlencode

import tornado.web
from bokeh import __version__ as BOKEH_VERSION

from broker import __version__
from broker.access.auth import Principal
from broker.errors import BrokerError
from broker.runtime.db import is_outage

from ..base import SESSION_COOKIE, look_up_principal, run_in_pool, session_token

log = logging.getLogger("skybroker.web")
WEB_DIR = Path(__file__).parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"


class PageHandler(tornado.web.RequestHandler):
    """A page. Subclasses set ``login_required`` (default True) and write ``get`` with :meth:`in_pool`."""

    login_required = True
    principal: Principal | None = None

    # -- resources ----------------------------------------------------------------------------
    @property
    def config(self):
        return self.application.config

    def session(self):
        return self.application.session_factory()

    async def in_pool(self, fn, *args, **kwargs):
        """Run ``fn`` (database work) on the application's handler pool, never on the IOLoop."""
        return await run_in_pool(self.application, fn, *args, **kwargs)

    # -- auth -------------------------------------------------------------------------------------
    def _look_up(self, token: str) -> Principal:
        return look_up_principal(self.application, f"token {token}")

    async def prepare(self) -> None:
        if self.request.method not in ("GET", "HEAD"):
            self.check_xsrf_cookie()  # every form of ours carries the page's _xsrf
        token = session_token(self)
        if token is not None:
            try:
                self.principal = await self.in_pool(self._look_up, token)
            except BrokerError:  # revoked or expired since sign-in: sign in again
                self.clear_cookie(SESSION_COOKIE)
        if self.principal is None and self.login_required:
            self.redirect("/login?" + urlencode({"next": self.request.uri or "/"}))

    def page_link(self, number: int, query_id: str | None = None) -> str:
        """This page's query at page ``number`` (with an answer's ``queryID``, whose total is reused)."""
        args = [(k, v.decode("utf-8", "replace")) for k, vs in self.request.query_arguments.items()
                if k not in ("pageNumber", "queryID") for v in vs]
        args += [("pageNumber", str(number))] + ([("queryID", query_id)] if query_id else [])
        return "?" + urlencode(args)

    # -- output -----------------------------------------------------------------------------------
    def get_template_path(self) -> str:
        return str(TEMPLATES)

    def render_page(self, template: str, **context) -> None:
        self.set_header("Cache-Control", "no-store")  # what a page shows depends on who is signed in
        self.render(template, principal=self.principal, version=__version__, bokeh_version=BOKEH_VERSION, q=quote,
                    **context)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, BrokerError):
            status_code, message = exc.status, exc.message
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and is_outage(exc):
            status_code, message = 503, "Database unavailable; retry later"
        elif status_code >= 500:
            message = "Internal server error"
        self.set_status(status_code)
        self.set_header("Cache-Control", "no-store")
        self.render("error.html", principal=self.principal, version=__version__, bokeh_version=BOKEH_VERSION,
                    status=status_code, message=message, q=quote)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, BrokerError):
            log.info("%s %s -> %d %s", self.request.method, self.request.path, value.status, value.message)
        elif value is not None and is_outage(value):
            log.warning("%s %s -> 503: database unavailable", self.request.method, self.request.path)
        else:
            super().log_exception(typ, value, tb)

