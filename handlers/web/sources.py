"""/source/{obj_id}: a source's page (light curve, photometry, classifications, annotations, comments,
groups, follow-up requests and a follow-up form), and its photometry as CSV."""

from __future__ import annotations

import csv
import io

from broker.access.auth import readable_groups
from broker.errors import ValidationError
from broker.followup import allocations as asvc
from broker.followup import requests as rsvc
from broker.objects import objs as svc
from broker.objects.photometry import obj_photometry

from ..base import QueryArgs
from . import plots
from .base import PageHandler
from .forms import form_fields

# what the page lists beside the object: the hooks the API's include flags use
DETAILS = {"comments": ("comments", "includeComments"), "thumbnails": ("thumbnails", "includeThumbnails")}
CSV_COLUMNS = ("id", "obj_id", "mjd", "filter", "mag", "magerr", "limiting_mag", "magsys", "flux", "fluxerr", "zp",
               "snr", "instrument_name", "origin", "ra", "dec", "alert_id", "created_at")


class SourcesPage(QueryArgs, PageHandler):
    """/sources: the sources of the user's groups, newest saved first, with SkyPortal's list filters."""

    async def get(self):
        args = {k: self.get_query_argument(k, "") for k in ("sourceID", "group_ids", "classifications")}
        out, error = await self.in_pool(self._read)
        self.render_page("sources.html", args=args, error=error, **out)

    def _read(self) -> tuple[dict, ValidationError | None]:
        with self.session() as session:
            groups = sorted(((g.id, g.name) for g in session.execute(readable_groups(self.principal)).scalars()
                             if not g.single_user_group), key=lambda g: g[1])
            try:
                q = svc.SourceQuery(source_id=self.str_arg("sourceID"),
                                    group_ids=svc.parse_ids(self.str_arg("group_ids"), "group_ids"),
                                    classifications=svc.parse_strings(self.str_arg("classifications")))
                result = svc.list_sources(session, self.principal, q, self.page(default=50))
            except ValidationError as exc:
                return {"groups": groups, "result": None}, exc
        return {"groups": groups, "result": result}, None


class SourcePage(PageHandler):
    async def get(self, obj_id: str):
        context = await self.in_pool(self._read, obj_id)
        self.render_page("source.html", **context)

    def _read(self, obj_id: str) -> dict:
        with self.session() as session:
            obj = svc.get_visible_obj(session, self.principal, obj_id)
            q = svc.SourceQuery(details=DETAILS)
            details = svc.source_details(session, self.principal, [obj_id], q)[obj_id]
            source = svc.with_derived([{**svc.obj_to_dict(obj), **details}])[0]
            points = obj_photometry(session, self.principal, obj_id, "both", "ab")
            followups = rsvc.requests_of_obj(session, self.principal, obj_id)
            service = self.application.followup
            allocations = []
            for a in asvc.list_allocations(session, self.principal, service.adapters, implements="submit"):
                schema = service.form_schema(a.instrument)
                allocations.append({"id": a.id, "label": f"{a.instrument.name} / {a.group.name} ({a.pi or 'no PI'})",
                                    "instrument": a.instrument.name, "fields": form_fields(schema)})
        plot, plot_data = plots.light_curve(points) if points else (None, None)
        return {"source": source, "points": points, "plot": plot, "plot_data": plot_data,
                "followups": followups, "allocations": allocations}


class PhotometryCSV(PageHandler):
    """The photometry table as CSV (what the page shows, every point the caller may read)."""

    async def get(self, obj_id: str):
        body = await self.in_pool(self._csv, obj_id)
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{obj_id}_photometry.csv"')
        self.finish(body)

    def _csv(self, obj_id: str) -> str:
        with self.session() as session:
            svc.get_visible_obj(session, self.principal, obj_id)
            points = obj_photometry(session, self.principal, obj_id, "both", "ab")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(points)
        return out.getvalue()
