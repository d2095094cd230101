"""/api/gcn_event and /api/localization."""


import sqlalchemy as sa

import models
from broker.sky import gcn as svc
from broker.errors import NotFound, ValidationError
from broker.validation import array, nullable, obj, string

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint

NUMS = array({"type": "number"})
SKYMAP = obj({"localization_name": string(minLength=1), "uniq": array({"type": "integer"}, minItems=1),
              "probdensity": NUMS, "distmu": nullable(NUMS), "distsigma": nullable(NUMS), "distnorm": nullable(NUMS),
              "ra": {"type": "number"}, "dec": {"type": "number"}, "error": {"type": "number", "exclusiveMinimum": 0}},
             required=("localization_name",))
GCN_POST = {"oneOf": [
    obj({"json": {"type": ["object", "string"], "description": "a JSON notice (e.g. igwn.gwalert)"}},
        required=("json",)),
    obj({"xml": string("a VOEvent")}, required=("xml",)),
    obj({"dateobs": string("event time (UTC)"), "skymap": SKYMAP, "aliases": array(string())},
        required=("dateobs",)),
]}
LOCALIZATION_POST = obj({
    "dateobs": string("event time (UTC)"), "localization_name": string(minLength=1),
    "uniq": array({"type": "integer"}, minItems=1), "probdensity": NUMS,
    "distmu": nullable(NUMS), "distsigma": nullable(NUMS), "distnorm": nullable(NUMS),
    "ra": {"type": "number"}, "dec": {"type": "number"}, "error": {"type": "number", "exclusiveMinimum": 0},
    "fits": string("base64 FITS sky map (flat or multi-order, gzip too)"),
}, required=("dateobs", "localization_name"))


class GcnEventHandler(BaseHandler):
    @endpoint("Retrieve GCN events (paginated), or one by dateobs", tags="gcn_events",
              params=(*PAGINATION_PARAMS, Param("includeRetracted", {"type": "boolean"})))
    def get(self, dateobs=None):
        E = models.GcnEvent
        with self.session() as session:
            if dateobs is not None:
                event = session.execute(sa.select(E).where(E.dateobs == svc._utc(dateobs, "dateobs"))).scalar()
                if event is None:
                    raise NotFound(f"No GCN event at {dateobs}")
                self.success(svc.event_to_dict(event))
                return
            stmt = sa.select(E).order_by(E.dateobs.desc())
            if not self.bool_arg("includeRetracted"):
                stmt = stmt.where(~E.retracted)
            from broker.pagination import paginate

            rows, total = paginate(session, stmt, self.page())
            self.success({"events": [svc.event_to_dict(e) for e in rows], "totalMatches": total})

    @endpoint("Ingest a GCN notice ({json} or {xml}) or a sky map for an event", tags="gcn_events",
              acls=("Manage GCNs",), body=GCN_POST)
    async def post(self):
        self.success(await self.blocking(self._ingest, self.body))

    def _ingest(self, b: dict) -> dict:
        with self.session() as session, session.begin():
            event = svc.store_notice(session, *svc.parse_notice_body(b))
            return {"gcnevent_id": event.id, "dateobs": event.dateobs.isoformat()}

    @endpoint("Delete a GCN event", tags="gcn_events", acls=("Manage GCNs",))
    def delete(self, dateobs):
        E = models.GcnEvent
        with self.session() as session, session.begin():
            event = session.execute(sa.select(E).where(E.dateobs == svc._utc(dateobs, "dateobs"))).scalar()
            if event is None:
                raise NotFound(f"No GCN event at {dateobs}")
            session.delete(event)
        self.success()


class LocalizationPostHandler(BaseHandler):
    @endpoint("Add a localization to an event: multi-order arrays, a cone, or a FITS file", tags="localizations",
              acls=("Manage GCNs",), body=LOCALIZATION_POST)
    async def post(self):
        self.success(await self.blocking(self._add, self.body))

    def _add(self, b: dict) -> dict:
        E = models.GcnEvent
        with self.session() as session, session.begin():
            event = session.execute(sa.select(E).where(E.dateobs == svc._utc(b["dateobs"], "dateobs"))).scalar()
            if event is None:
                raise ValidationError(f"Invalid dateobs: no GCN event at {b['dateobs']}", field="dateobs")
            loc = svc.add_localization(session, event, b["localization_name"], svc.skymap_from_body(b))
            return {"localization_id": loc.id}


class LocalizationHandler(BaseHandler):
    @endpoint("Retrieve a localization with its 50% and 90% areas (and the map on request)", tags="localizations",
              params=(Param("include2DMap", {"type": "boolean"}, "include uniq/probdensity"),
                      Param("includeContour", {"type": "boolean"},
                            "include the 50% and 90% credible regions as MOCs (lists of UNIQ pixels)")))
    def get(self, dateobs, localization_name):
        with self.session() as session:
            loc = svc.find_localization(session, dateobs, localization_name)
            out = loc.to_dict()
            if self.bool_arg("includeContour"):
                out["contour"] = svc.contours(svc.stored_skymap(loc))
            if self.bool_arg("include2DMap"):
                sm = svc.stored_skymap(loc)
                out["uniq"], out["probdensity"] = sm.uniq.tolist(), sm.probdensity.tolist()
            self.success(out)

    @endpoint("Delete a localization", tags="localizations", acls=("Manage GCNs",))
    def delete(self, dateobs, localization_name):
        with self.session() as session, session.begin():
            session.delete(svc.find_localization(session, dateobs, localization_name))
        self.success()


class LocalizationDownloadHandler(BaseHandler):
    @endpoint("Download a localization as a multi-order FITS file", tags="localizations")
    def get(self, dateobs, localization_name):
        from broker.sky.mapio import write_moc_fits

        with self.session() as session:
            loc = svc.find_localization(session, dateobs, localization_name)
            data = write_moc_fits(svc.stored_skymap(loc), {"DATE-OBS": loc.dateobs.isoformat()})
            name = f"{loc.localization_name}.multiorder.fits"
        self.set_header("Content-Type", "application/fits")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)
