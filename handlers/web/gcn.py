"""/gcn_events and /gcn_events/{dateobs}: GCN events, and one event's page (notices, its localization on
the sky with its 50/90% contours, the sources inside a chosen credible level, the default follow-up rules
that fired for them)."""

from __future__ import annotations

from broker.errors import ValidationError
from broker.followup.default_rules import fired_for_event
from broker.objects import objs as svc
from broker.pagination import Page
from broker.sky import gcn

from ..base import QueryArgs
from . import plots
from .base import PageHandler


class GcnEventsPage(QueryArgs, PageHandler):
    async def get(self):
        page = self.page(default=50)
        out = await self.in_pool(self._read, page)
        self.render_page("gcn_events.html", page=page, **out)

    def _read(self, page: Page) -> dict:
        with self.session() as session:
            return gcn.list_events(session, self.principal, page=page)


class GcnEventPage(QueryArgs, PageHandler):
    async def get(self, dateobs: str):
        context = await self.in_pool(self._read, dateobs)
        self.render_page("gcn_event.html", **context)

    def _read(self, dateobs: str) -> dict:
        error = None
        try:
            cumprob = self.float_arg("cumprob", 0.9)
            if not 0 < cumprob <= 1:
                raise ValidationError("Invalid cumprob: must be in (0, 1]", field="cumprob")
        except ValidationError as exc:
            cumprob, error = 0.9, exc
        with self.session() as session:
            event = gcn.find_event(session, dateobs, self.principal)
            out = gcn.event_to_dict(event, notice_content=False)
            locs = out["localizations"]
            name = self.str_arg("localizationName") or (locs[0]["localization_name"] if locs else None)
            chosen = next((x for x in locs if x["localization_name"] == name), None)
            if name is not None and chosen is None:
                raise ValidationError(f"Invalid localizationName: event {dateobs} has no localization '{name}'",
                                      field="localizationName")
            sources, plot, bounds, plot_data = [], None, None, None
            if chosen is not None:
                iso = event.dateobs.isoformat()
                q = svc.SourceQuery(localization_dateobs=iso, localization_name=name, localization_cumprob=cumprob)
                sources = svc.list_sources(session, self.principal, q, Page(1, 500))["sources"]
                loc = next(x for x in event.localizations if x.localization_name == name)
                sm = gcn.stored_skymap(loc)
                plot, bounds = plots.sky_map((loc.id, loc.modified), sm.uniq, sm.probdensity, chosen["contour"],
                                             name)
                plot_data = plots.sky_sources([{"id": s["id"], "ra": s["ra"], "dec": s["dec"]} for s in sources])
            fired = fired_for_event(session, self.principal, event.dateobs)
        return {"event": out, "chosen": chosen, "cumprob": cumprob, "sources": sources, "plot": plot,
                "plot_data": plot_data, "bounds": bounds, "fired": fired, "error": error}
