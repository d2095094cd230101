"""The Tornado application factory."""

from __future__ import annotations

import logging
import re
from typing import Mapping

import tornado.web
from sqlalchemy.orm import Session, sessionmaker

from .config import Config

access_log = logging.getLogger("skybroker.access")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log with token ids (which are credentials) redacted from paths."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    path = _UUID.sub("<redacted>", handler.request.uri or "")
    access_log.log(level, "%d %s %s %.1fms", status, handler.request.method, path,
                   1000.0 * handler.request.request_time())


class SkyBrokerApp(tornado.web.Application):
    """Holds the resources handlers reach through ``self.application``."""

    def __init__(self, config: Config, session_factory: sessionmaker[Session],
                 facilities: Mapping[str, object] | None = None):
        from handlers.base import NotFoundHandler
        from handlers.routes import ROUTES

        self.config = config
        self.session_factory = session_factory
        self.facilities = dict(facilities or {})
        handlers = [(r.pattern, r.handler, {"methods": r.methods}) for r in ROUTES]
        super().__init__(handlers, default_handler_class=NotFoundHandler, log_function=_log_request,
                         compress_response=True)


def make_app(config: Config, session_factory: sessionmaker[Session],
             facilities: Mapping[str, object] | None = None) -> SkyBrokerApp:
    return SkyBrokerApp(config, session_factory, facilities)
