"""Sign-in with an API token (kept in a signed, secure, HTTP-only cookie) and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from broker.errors import BrokerError

from ..base import SESSION_COOKIE, SESSION_DAYS
from .base import PageHandler


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path of ours only. Never another site: not ``//host``, nor what a
    browser makes of one (it drops tabs and newlines, and reads a backslash as a slash), nor anything
    with control characters or spaces (which a Location header must not carry)."""
    if not raw or not raw.startswith("/") or any(c <= " " or c == "\x7f" for c in raw) or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    if raw.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return raw


class SignInHandler(PageHandler):
    login_required = False

    def get(self):
        self.render_page("signin.html", next=safe_next(self.get_query_argument("next", None)), error=None)

    async def post(self):
        token = self.get_body_argument("token", "").strip()
        nxt = safe_next(self.get_body_argument("next", None))
        error = None
        if not token:
            error = "Enter your API token"
        else:
            try:
                self.principal = await self.in_pool(self._look_up, token)
            except BrokerError as exc:  # unknown token, malformed, or its user expired
                error = exc.message
        if error is not None:
            self.principal = None
            self.set_status(401)
            self.render_page("signin.html", next=nxt, error=error)
            return
        self.set_signed_cookie(SESSION_COOKIE, token, expires_days=SESSION_DAYS, httponly=True,
                               secure=self.config.server.secure_cookies, samesite="Strict")
        self.redirect(nxt)


class SignOutHandler(PageHandler):
    login_required = False

    def post(self):
        self.clear_cookie(SESSION_COOKIE)
        self.redirect("/login")
