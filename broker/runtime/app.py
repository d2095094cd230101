"""The Tornado application factory."""

from __future__ import annotations

import gc
import logging
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import tornado.web
from sqlalchemy.orm import Session, sessionmaker

from broker.runtime.config import Config

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
        from handlers.web import page_routes

        from broker.followup.vault import vault_from_config
        from broker.followup.requests import FollowupService

        self.config = config
        self.session_factory = session_factory
        # the token look-up of every request: one statement, in autocommit on the same pool
        self.auth_engine = session_factory.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")
        self.facilities = dict(facilities if facilities is not None else default_facilities(config))
        vault = vault_from_config(config)
        self.followup = FollowupService(config, vault, self.facilities, session_factory)
        # facility calls (seconds, up to their timeout) run here, never on the IOLoop
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="skybroker-api")
        # handlers' own work (auth, validation, database) runs here, so one slow request never holds the
        # IOLoop; 0 threads keeps it on the IOLoop (bench/api_load.py's baseline)
        n = config.server.handler_threads
        sys.setswitchinterval(config.server.switch_interval_ms / 1000)  # process-wide: this is the API's process
        self.handler_pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="skybroker-handler") if n else None
        _warm_up()
        handlers = [(r.pattern, r.handler, {"methods": r.methods}) for r in ROUTES] + page_routes()
        # the web pages' sign-in cookie is signed with a key derived from the server's secret (every process
        # derives the same one); XSRF is checked by the pages and by API writes that come with that cookie
        super().__init__(handlers, default_handler_class=NotFoundHandler, log_function=_log_request,
                         compress_response=True, cookie_secret=vault.derive("web session cookie"),
                         xsrf_cookie_kwargs={"samesite": "Strict", "secure": config.server.secure_cookies})


def _warm_up() -> None:
    """Import what answers load lazily (astropy's cosmology, seconds) before the first request, not
    during it: under load that import held every other request for ~3 s (bench/api_load.py)."""
    from broker.runtime.stats import _cosmology
    from broker.objects.objs import luminosity_distance

    _cosmology()
    luminosity_distance(None, 0.1)


def default_facilities(config: Config) -> dict:
    """The facility adapters skybroker ships, keyed by the instruments' ``api_classname``."""
    from facility_apis.lco import LCOAPI

    return {"LCO": LCOAPI(retries=config.facilities.lco.retries)}


def make_app(config: Config, session_factory: sessionmaker[Session],
             facilities: Mapping[str, object] | None = None) -> SkyBrokerApp:
    return SkyBrokerApp(config, session_factory, facilities)


def freeze_heap() -> None:
    """A server process's heap at start-up (astropy, Bokeh, SQLAlchemy's mappers: ~10⁶ objects) lives as
    long as the process: kept out of the garbage collector, a full collection costs a few ms instead of
    ~200 (bench/pages.py: every few large answers waited for one)."""
    gc.collect()
    gc.freeze()


def listen(app: SkyBrokerApp, config: Config):
    """Listen on the configured address; with ``server.processes`` > 1 the port is shared (SO_REUSEPORT).
    The process's start-up heap is frozen first (:func:`freeze_heap`)."""
    freeze_heap()
    return app.listen(config.server.port, address=config.server.host, xheaders=True,
                      reuse_port=config.server.processes > 1)


def serve_process(config: Config) -> None:
    """One extra API server process (``server.processes`` > 1): the same app on the same port, its own
    database pool, no follow-up worker (the main process runs that). Runs until SIGTERM."""
    import asyncio
    import signal

    import tornado.ioloop

    from broker.runtime import db

    logging.basicConfig(level=config.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    engine = db.make_engine(config.database.url.get(), config)
    asyncio.set_event_loop(asyncio.new_event_loop())
    server = listen(make_app(config, db.make_session_factory(engine)), config)
    loop = tornado.ioloop.IOLoop.current()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda signum, frame: loop.add_callback_from_signal(loop.stop))
    try:
        loop.start()
    finally:
        server.stop()
        engine.dispose()
