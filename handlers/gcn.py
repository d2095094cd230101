"""/api/gcn_event (and its summaries), /api/localization, /api/sources_in_gcn and /api/localizationcrossmatch,
as SkyPortal's."""

import sqlalchemy as sa

import models
from broker.sky import gcn as svc
from broker.sky import summaries
from broker.sky.pending import attach, is_pending
from broker.errors import ValidationError
from broker.validation import array, integer, nullable, obj, string

from .base import BaseHandler, Param, endpoint

NUMS = array({"type": "number"})
ANY_NUMBER = {"type": ["number", "string"]}
SKYMAP_OBJECT = obj({
    "localization_name": string(minLength=1), "uniq": array({"type": "integer"}, minItems=1), "probdensity": NUMS,
    "distmu": nullable(NUMS), "distsigma": nullable(NUMS), "distnorm": nullable(NUMS),
    "ra": ANY_NUMBER, "dec": ANY_NUMBER, "error": ANY_NUMBER,
    "amaj": ANY_NUMBER, "amin": ANY_NUMBER, "phi": ANY_NUMBER,
    "polygon": {"type": ["array", "string"], "description": "[[ra, dec], ...] vertices of a convex polygon"},
    "content": string("our addition: base64 FITS, with localization_name"),
    "url": string("our addition: a FITS URL, with localization_name"),
})
GCN_POST = {"oneOf": [
    obj({"json": {"type": ["object", "string"], "description": "a JSON notice (igwn.gwalert, Einstein Probe, ...)"}},
        required=("json",)),
    obj({"xml": string("a VOEvent")}, required=("xml",)),
    obj({"dateobs": string("event time (UTC)"), "trigger_id": {"type": ["string", "integer"]},
         "aliases": array(string()), "tags": array(string(minLength=1)), "properties": {"type": "object"},
         "group_ids": array({"type": "integer"}),
         "skymap": {"oneOf": [SKYMAP_OBJECT, string("base64 FITS ('name=<file>;base64,<data>') or a URL")]}},
        required=("dateobs",)),
]}
LOCALIZATION_POST = obj({
    "dateobs": string("event time (UTC)"), "localization_name": string(minLength=1),
    "uniq": array({"type": "integer"}, minItems=1), "probdensity": NUMS,
    "distmu": nullable(NUMS), "distsigma": nullable(NUMS), "distnorm": nullable(NUMS),
    "ra": {"type": "number"}, "dec": {"type": "number"}, "error": {"type": "number", "exclusiveMinimum": 0},
    "fits": string("base64 FITS sky map (flat or multi-order, gzip too)"),
    "notice_id": integer("Our addition: the notice whose map (pending at its URL) this is; without it, the "
                         "event's pending notices whose URL's file has this localization_name"),
}, required=("dateobs", "localization_name"))
ALIAS_BODY = obj({"alias": string(minLength=1)}, required=("alias",))
TAG_POST = obj({"dateobs": string(), "text": string(minLength=1)}, required=("dateobs", "text"))
TAG_DELETE = obj({"tag": string(minLength=1)}, required=("tag",))
TRIGGER_PUT = obj({"triggered": {"type": ["boolean", "string"]}}, required=("triggered",))
STATUS = {"type": "string", "enum": list(models.GCN_EVENT_OBJ_STATUSES)}
SOURCE_POST = obj({"localization_name": string(), "localization_cumprob": {"type": ["number", "string"]},
                   "source_id": string(minLength=1), "status": STATUS, "explanation": string(), "notes": string(),
                   "start_date": string(), "end_date": string()},
                  required=("localization_name", "localization_cumprob", "source_id", "status", "start_date",
                            "end_date"))
SOURCE_PATCH = obj({"status": STATUS, "explanation": string(), "notes": string()}, required=("status",))

INT_OR_STRING = {"type": ["integer", "string"]}
SUMMARY_POST = obj({
    "title": nullable(string()), "number": {"type": ["integer", "string", "null"]},
    "subject": nullable(string("required unless noText")),
    "userIds": {"type": ["array", "integer", "string", "null"], "items": INT_OR_STRING,
                "description": "users to name in the summary (ids; a list, or comma-separated)"},
    "groupId": {"type": ["integer", "string", "null"]},
    "startDate": nullable(string("first detection at or after this time (UTC)")),
    "endDate": nullable(string("last detection at or before this time (UTC)")),
    "localizationName": nullable(string("the event's localization (default: its latest)")),
    "localizationCumprob": {"type": ["number", "string"], "description": "default 0.95"},
    "numberDetections": {"type": ["integer", "string", "null"], "description": "at least this many detections "
                                                                              "(default 2)"},
    "numberObservations": {"type": ["integer", "string", "null"], "description": "for observations (not served)"},
    "showSources": {"type": "boolean"},
    "showGalaxies": {"type": "boolean", "description": "galaxies are not served: true is a 400"},
    "showObservations": {"type": "boolean", "description": "executed observations are not served: true is a 400"},
    "noText": {"type": "boolean"}, "photometryInWindow": {"type": "boolean"},
    "statsMethod": {"type": "string", "enum": ["python", "db"]},
    "instrumentIds": {"type": ["array", "null"], "items": INT_OR_STRING},
    "acknowledgements": nullable(string()),
})  # title, groupId, startDate, endDate (and subject, with text) are required: checked with SkyPortal's messages
SUMMARY_PATCH = obj({"body": string("the summary's new text")}, required=("body",))

LIST_PARAMS = (
    Param("startDate", {"type": "string"}, "dateobs >= startDate"),
    Param("endDate", {"type": "string"}, "dateobs <= endDate"),
    Param("partialdateobs", {"type": "string"}, "dateobs starting with, or an alias containing, this"),
    Param("gcnTagKeep", {"type": "string"}, "comma-separated tags: events with any of them"),
    Param("gcnTagRemove", {"type": "string"}, "comma-separated tags: events with none of them"),
    Param("localizationTagKeep", {"type": "string"}), Param("localizationTagRemove", {"type": "string"}),
    Param("gcnPropertiesFilter", {"type": "string"}, "e.g. 'BNS: 0.5: gt, NSBH' (property[: value: op])"),
    Param("localizationPropertiesFilter", {"type": "string"}, "e.g. 'area_90: 500: lt'"),
    Param("groupIds", {"type": "string"}, "comma-separated group IDs: events shared with one of them"),
    Param("excludeNoticeContent", {"type": "boolean"}, "single event: leave the notices' content out"),
    Param("sortBy", {"type": "string", "enum": ["dateobs"]}), Param("sortOrder", {"type": "string",
                                                                                 "enum": ["asc", "desc"]}),
    Param("numPerPage", {"type": "integer", "minimum": 1}, "default 10"),
    Param("pageNumber", {"type": "integer", "minimum": 1}),
    Param("includeRetracted", {"type": "boolean"}, "our addition: false leaves retracted events out (default true)"),
)


class GcnEventHandler(BaseHandler):
    @endpoint("Retrieve GCN events (paginated), or one by dateobs", tags="gcn_events", params=LIST_PARAMS)
    def get(self, dateobs=None):
        with self.session() as session:
            if dateobs is not None:
                if self.str_arg("partialdateobs") is not None:
                    raise ValidationError("Cannot specify both dateobs and partialdateobs query parameters",
                                          field="partialdateobs")
                event = svc.find_event(session, dateobs, self.principal)
                out = svc.event_to_dict(event, notice_content=not self.bool_arg("excludeNoticeContent"))
                out["summaries"] = summaries.event_summaries(session, self.principal, event.dateobs)
                self.success(out)
                return
            sort_by, order = self.str_arg("sortBy"), self.str_arg("sortOrder", "desc" if self.str_arg("sortBy")
                                                                  is None else "asc")
            if sort_by not in (None, "dateobs"):
                raise ValidationError(f"Invalid sortBy: only 'dateobs' is supported, got {sort_by!r}", field="sortBy")
            if order not in ("asc", "desc"):
                raise ValidationError(f"Invalid sortOrder: 'asc' or 'desc', got {order!r}", field="sortOrder")
            self.success(svc.list_events(
                session, self.principal, start_date=self._date("startDate"), end_date=self._date("endDate"),
                partialdateobs=self.str_arg("partialdateobs"),
                gcn_tag_keep=self._list("gcnTagKeep"), gcn_tag_remove=self._list("gcnTagRemove"),
                localization_tag_keep=self._list("localizationTagKeep"),
                localization_tag_remove=self._list("localizationTagRemove"),
                gcn_properties_filter=self._list("gcnPropertiesFilter"),
                localization_properties_filter=self._list("localizationPropertiesFilter"),
                group_ids=self._ints("groupIds"), include_retracted=self.bool_arg("includeRetracted", True),
                sort_order=order, page=self.page(default=10)))

    def _list(self, name):
        raw = self.str_arg(name)
        return None if raw is None else [x.strip() for x in raw.split(",") if x.strip()]

    def _ints(self, name):
        try:
            return [int(x) for x in self._list(name) or []]
        except ValueError:
            raise ValidationError(f"Invalid {name}: must be comma-separated integers", field=name) from None

    def _date(self, name):
        raw = self.str_arg(name)
        return None if raw is None else svc._utc(raw.strip(), name)

    @endpoint("Ingest a GCN notice ({xml}, {json}) or an event from a dictionary (dateobs, skymap, tags, ...)",
              tags="gcn_events", acls=("Manage GCNs",), body=GCN_POST)
    async def post(self):
        parsed, raw = await self.blocking(svc.parse_notice_body, self.body)  # may fetch skymap.url
        self.success(await self.blocking(self._ingest, parsed, raw))

    def _ingest(self, parsed, raw) -> dict:
        from broker.access.auth import readable_groups

        with self.session() as session, session.begin():
            groups = None
            if parsed.group_ids:
                groups = session.execute(readable_groups(self.principal).with_only_columns(models.Group.id)
                                         .where(models.Group.id.in_(parsed.group_ids))).scalars().all()
            event, notice = svc.store_notice(session, parsed, raw, self.config.ingest.crossmatch_recent_days,
                                             user_id=self.principal.user_id, readable_group_ids=groups)
            pending = notice is not None and is_pending(notice)
            return {"gcnevent_id": event.id, "dateobs": event.dateobs.isoformat(),
                    "notice_id": None if notice is None else notice.id,
                    # our addition: the notice's map is at a URL and not stored yet
                    "localization_pending": pending, "skymap_url": notice.skymap_url if pending else None}

    @endpoint("Delete a GCN event", tags="gcn_events", acls=("Manage GCNs",))
    def delete(self, dateobs):
        with self.session() as session, session.begin():
            session.delete(svc.find_event(session, dateobs, self.principal))
        self.success()


class GcnSummaryHandler(BaseHandler):
    @endpoint("Create a GCN summary: header, the group's sources in the localization and their photometry "
              "(written at once: the text is never 'pending')", tags="gcn_events", body=SUMMARY_POST)
    def post(self, dateobs):
        with self.session() as session, session.begin():
            summary_id = summaries.create_summary(session, self.principal, dateobs, self.body)
        self.success({"id": summary_id})

    @endpoint("Retrieve a GCN summary (members of its group)", tags="gcn_events")
    def get(self, dateobs, summary_id=None):
        if summary_id is None:
            raise ValidationError("Summary ID is required", field="summary_id")
        with self.session() as session:
            self.success(summaries.find_summary(session, self.principal, dateobs, summary_id).to_dict())

    @endpoint("Replace a GCN summary's text (its author, or Manage GCNs)", tags="gcn_events", body=SUMMARY_PATCH)
    def patch(self, dateobs, summary_id):
        with self.session() as session, session.begin():
            out = summaries.update_summary(session, self.principal, dateobs, summary_id, self.body["body"])
        self.success(out)

    @endpoint("Delete a GCN summary (its author, or Manage GCNs)", tags="gcn_events")
    def delete(self, dateobs, summary_id):
        with self.session() as session, session.begin():
            summaries.delete_summary(session, self.principal, dateobs, summary_id)
        self.success()


class GcnEventAliasHandler(BaseHandler):
    @endpoint("Add an alias to a GCN event", tags="gcn_events", acls=("Manage GCNs",), body=ALIAS_BODY)
    def post(self, dateobs):
        with self.session() as session, session.begin():
            svc.add_alias(session, self.principal, dateobs, self.body["alias"])
        self.success()

    @endpoint("Remove an alias of a GCN event (LVC# and FERMI# aliases stay)", tags="gcn_events",
              acls=("Manage GCNs",), body=ALIAS_BODY)
    def delete(self, dateobs):
        with self.session() as session, session.begin():
            svc.remove_alias(session, self.principal, dateobs, self.body["alias"])
        self.success()


class GcnEventTagsHandler(BaseHandler):
    @endpoint("All GCN event tags", tags="gcn_events")
    def get(self):
        with self.session() as session:
            self.success(svc.all_tags(session))

    @endpoint("Tag a GCN event", tags="gcn_events", acls=("Manage GCNs",), body=TAG_POST)
    def post(self):
        with self.session() as session, session.begin():
            tag_id = svc.add_tag(session, self.principal, self.body["dateobs"], self.body["text"])
        self.success({"gcntag_id": tag_id})


class GcnEventTagHandler(BaseHandler):
    @endpoint("Remove a tag from a GCN event (body: {tag})", tags="gcn_events", acls=("Manage GCNs",),
              body=TAG_DELETE)
    def delete(self, dateobs):
        with self.session() as session, session.begin():
            svc.remove_tag(session, self.principal, dateobs, self.body["tag"])
        self.success()


class GcnEventPropertiesHandler(BaseHandler):
    @endpoint("All GCN event property names", tags="gcn_events")
    def get(self):
        with self.session() as session:
            self.success(svc.property_keys(session, models.GcnProperty))


class GcnEventTriggerHandler(BaseHandler):
    @endpoint("Triggered status of allocations for a GCN event", tags="gcn_events", acls=("Manage allocations",))
    def get(self, dateobs, allocation_id=None):
        with self.session() as session:
            self.success(svc.triggers(session, dateobs, None if allocation_id is None else int(allocation_id)))

    @endpoint("Set whether an allocation was triggered for a GCN event", tags="gcn_events",
              acls=("Manage allocations",), body=TRIGGER_PUT)
    def put(self, dateobs, allocation_id):
        with self.session() as session, session.begin():
            out = svc.set_trigger(session, self.principal, dateobs, int(allocation_id), self.body["triggered"])
        self.success(out)

    @endpoint("Remove the triggered status of an allocation for a GCN event", tags="gcn_events",
              acls=("Manage allocations",))
    def delete(self, dateobs, allocation_id):
        with self.session() as session, session.begin():
            out = svc.delete_trigger(session, dateobs, int(allocation_id))
        self.success(out)


class GcnEventCrossmatchHandler(BaseHandler):
    @endpoint("Crossmatch state of a GCN event: one entry per localization (objects matched)", tags="gcn_events")
    def get(self, dateobs):
        with self.session() as session:
            self.success(svc.crossmatch_state(session, self.principal, dateobs))

    @endpoint("Crossmatch a GCN event's localizations again with the candidates since the event",
              tags="gcn_events", acls=("Manage GCNs",))
    async def post(self, dateobs):
        self.success(await self.blocking(self._requeue, dateobs))

    def _requeue(self, dateobs):
        with self.session() as session, session.begin():
            return svc.requeue_crossmatch(session, self.principal, dateobs, self.config.ingest.crossmatch_recent_days)


class SourcesInGcnHandler(BaseHandler):
    @endpoint("Sources confirmed, rejected (...) for a GCN event", tags="gcn_events",
              params=(Param("sourcesIDList", {"type": "string"}, "comma-separated source IDs"),))
    def get(self, dateobs, source_id=None):
        ids = source_id if source_id is not None else self.str_arg("sourcesIDList", "")
        with self.session() as session:
            self.success(svc.sources_in_gcn(session, self.principal, dateobs,
                                            [s.strip() for s in ids.split(",") if s.strip()]))

    @endpoint("Confirm or reject a source for a GCN event", tags="gcn_events", acls=("Upload data",),
              body=SOURCE_POST)
    def post(self, dateobs):
        with self.session() as session, session.begin():
            out = svc.set_source_in_gcn(session, self.principal, dateobs, self.body)
        self.success(out)

    @endpoint("Change the status of a source for a GCN event", tags="gcn_events", acls=("Upload data",),
              body=SOURCE_PATCH)
    def patch(self, dateobs, source_id):
        with self.session() as session, session.begin():
            out = svc.update_source_in_gcn(session, self.principal, dateobs, source_id, self.body)
        self.success(out)

    @endpoint("Remove the status of a source for a GCN event", tags="gcn_events", acls=("Upload data",))
    def delete(self, dateobs, source_id):
        with self.session() as session, session.begin():
            out = svc.delete_source_in_gcn(session, self.principal, dateobs, source_id)
        self.success(out)


class LocalizationPostHandler(BaseHandler):
    @endpoint("Our addition: add a localization to an event (multi-order arrays, a cone, or a FITS file); it "
              "ends the wait for a map a notice points to (notice_id, or the URL's file name)",
              tags="localizations", acls=("Manage GCNs",), body=LOCALIZATION_POST)
    async def post(self):
        self.success(await self.blocking(self._add, self.body))

    def _add(self, b: dict) -> dict:
        with self.session() as session, session.begin():
            event = svc.find_event(session, b["dateobs"], self.principal, missing=ValidationError)
            loc = svc.add_localization(session, event, b["localization_name"], svc.skymap_from_body(b),
                                       recent_days=self.config.ingest.crossmatch_recent_days)
            attach(session, event, loc, b.get("notice_id"))
            return {"localization_id": loc.id}


class LocalizationHandler(BaseHandler):
    @endpoint("Retrieve a localization: its map (uniq, probdensity, distances), GeoJSON contour, tags, "
              "properties and 50%/90% areas", tags="localizations",
              params=(Param("include2DMap", {"type": "boolean"}, "add flat_2d: the map at NSIDE 512, RING"),
                      Param("includeContour", {"type": "boolean"},
                            "our addition: add contour_moc, the 50% and 90% regions as UNIQ pixel lists")))
    def get(self, dateobs, localization_name):
        from broker.sky import kernels as K

        with self.session() as session:
            loc = svc.find_localization(session, dateobs, localization_name, self.principal)
            out = svc.localization_to_dict(loc, arrays=True)
            if self.bool_arg("include2DMap"):
                sm = svc.stored_skymap(loc)
                out["flat_2d"] = K.rasterize(sm.uniq, sm.probdensity, 9, ring=True).tolist()
            if self.bool_arg("includeContour"):
                out["contour_moc"] = svc.contours(svc.stored_skymap(loc))
        self.success(out)

    @endpoint("Delete a localization", tags="localizations", acls=("Manage GCNs",))
    def delete(self, dateobs, localization_name):
        with self.session() as session, session.begin():
            session.delete(svc.find_localization(session, dateobs, localization_name, self.principal))
        self.success()


class LocalizationTagsHandler(BaseHandler):
    @endpoint("All localization tags", tags="localizations")
    def get(self):
        with self.session() as session:
            self.success(session.execute(sa.select(models.LocalizationTag.text).distinct()
                                         .order_by(models.LocalizationTag.text)).scalars().all())


class LocalizationPropertiesHandler(BaseHandler):
    @endpoint("All localization property names", tags="localizations")
    def get(self):
        with self.session() as session:
            self.success(svc.property_keys(session, models.LocalizationProperty))


def _send_fits(handler: BaseHandler, data: bytes, name: str) -> None:
    handler.set_header("Content-Type", "application/fits")
    handler.set_header("Content-Disposition", f'attachment; filename="{name}"')
    handler.finish(data)


class LocalizationDownloadHandler(BaseHandler):
    @endpoint("Download a localization as a multi-order FITS file", tags="localizations")
    def get(self, dateobs, localization_name):
        from broker.sky.mapio import write_moc_fits

        with self.session() as session:
            loc = svc.find_localization(session, dateobs.strip(), localization_name.strip(), self.principal)
            data = write_moc_fits(svc.stored_skymap(loc), {"DATE-OBS": loc.dateobs.isoformat()})
            name = f"{loc.localization_name}.fits"
        _send_fits(self, data, name)


class LocalizationCrossmatchHandler(BaseHandler):
    @endpoint("The product of two localizations (normalised) as a multi-order FITS file", tags="localizations",
              params=(Param("id1", {"type": "integer"}, required=True), Param("id2", {"type": "integer"},
                                                                             required=True)))
    def get(self):
        if self.str_arg("id1") is None or self.str_arg("id2") is None:
            raise ValidationError("Please provide two localization id", field="id1")
        id1, id2 = self.int_arg("id1"), self.int_arg("id2")
        with self.session() as session:
            data, name = svc.localization_product(session, self.principal, id1, id2)
        _send_fits(self, data, name)
