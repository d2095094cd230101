"""The web pages, served by the API's own process under ``/`` (the API stays under ``/api``)."""

from __future__ import annotations

import tornado.web

from . import allocations, candidates, gcn, signin, sources
from .base import STATIC, PageHandler


class HomePage(tornado.web.RequestHandler):
    def get(self):
        self.redirect("/candidates")


class PageNotFound(PageHandler):
    """Any other path outside /api: an HTML 404 (the API's unknown routes keep the JSON envelope)."""

    login_required = False

    async def prepare(self):
        await super().prepare()  # the signed-in user's header, if any
        raise tornado.web.HTTPError(404, "No page at %s", self.request.path)


def page_routes() -> list[tuple]:
    """Tornado routes of the pages and their static files (Bokeh's JavaScript from its own wheel)."""
    from bokeh.util.paths import bokehjs_path

    return [
        (r"/", HomePage),
        (r"/login/?", signin.SignInHandler),
        (r"/logout/?", signin.SignOutHandler),
        (r"/candidates/?", candidates.CandidatesPage),
        (r"/sources/?", sources.SourcesPage),
        (r"/source/([^/]+)/photometry\.csv", sources.PhotometryCSV),
        (r"/source/([^/]+)/?", sources.SourcePage),
        (r"/gcn_events/?", gcn.GcnEventsPage),
        (r"/gcn_events/([^/]+)/?", gcn.GcnEventPage),
        (r"/allocations/?", allocations.AllocationsPage),
        (r"/static/bokeh/(.*)", tornado.web.StaticFileHandler, {"path": str(bokehjs_path())}),
        (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC)}),
        (r"/(?!api(?:/|$)).*", PageNotFound),
    ]
