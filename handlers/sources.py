"""/api/sources (+ /photometry, /classifications, /groups) and /api/source_groups, as SkyPortal's."""

from broker.errors import ValidationError
from broker.objects import classifications as csvc
from broker.objects import objs as svc
from broker.validation import array, boolean, integer, obj, string

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint
from .objs import OBJ_FIELDS, OBJ_NO_ID, obj_body, refuse_unsupported, wanted_details

SOURCE_POST = obj({
    **OBJ_FIELDS,
    "group_ids": array(integer(), "Groups to save to (default: every group of yours you can save to)"),
    "refresh_source": boolean("Accepted; no client is notified (no websockets here)"),
    "ignore_if_in_group_ids": {"type": "object", "description": "{group_id: [group_ids]}: do not save to "
                               "group_id while the object is saved to one of those",
                               "additionalProperties": array(integer())},
    "saver_per_group_id": {"type": "object", "description": "System admins: {group_id: user_id} to save as",
                           "additionalProperties": integer()},
}, required=("id",))
SOURCE_PATCH = obj(OBJ_NO_ID)
SOURCE_DELETE = obj({"group_id": {"type": ["integer", "string"], "pattern": "^[0-9]{1,10}$",
                                   "description": "Group to unsave the source from"}})
SOURCE_GROUPS_POST = obj({
    "objId": string("Object ID", minLength=1),
    "inviteGroupIds": array(integer(), "Groups to save the source to"),
    "unsaveGroupIds": array(integer(), "Groups to unsave it from"),
}, required=("objId",))
SAVE_POST = obj({"group_ids": array(integer(), "Groups to save to", minItems=1)}, required=("group_ids",))

# include flags -> (output key, hook, SkyPortal's default)
INCLUDES = {
    "includeThumbnails": ("thumbnails", "thumbnails", False),
    "includeComments": ("comments", "comments", False),
    "includeAnalyses": ("analyses", "analyses", False),
    "includePhotometryExists": ("photometry_exists", "photometry", False),
    "includeSpectrumExists": ("spectrum_exists", "spectra", False),
    "includeCommentExists": ("comment_exists", "comments", False),
    "includePeriodExists": ("period_exists", "period", False),
    "includeLabellers": ("labellers", "labellers", False),
    "includeHosts": ("host", "host", False),
    "includeDetectionStats": ("photstats", "photstats", False),
    "includeColorMagnitude": ("color_magnitude", "color_magnitude", False),
    "includeGCNCrossmatches": ("gcn_crossmatch", "gcn_crossmatch", False),
    "includeGCNNotes": ("gcn_notes", "gcn_notes", False),
    "includeTags": ("tags", "tags", True),
    "includeAssociatedObjs": ("associated_objs", "associated_objs", True),
}
# SkyPortal parameters we cannot honour (400 naming them when used)
UNSUPPORTED_FLAGS = ("hasBeenLabelled", "hasNotBeenLabelled", "currentUserLabeller", "localizationRejectSources",
                     "includeSourcesInGcn", "includeGeoJSON", "saveSummary", "includeSuperObjs")
UNSUPPORTED_VALUES = ("listName", "annotationsFilter", "annotationsFilterOrigin", "annotationsFilterBefore",
                      "annotationsFilterAfter", "commentsFilter", "commentsFilterAuthor", "commentsFilterBefore",
                      "commentsFilterAfter", "spatialCatalogName", "spatialCatalogEntryName", "hasSpectrumAfter",
                      "hasSpectrumBefore")

_B, _S, _N = {"type": "boolean"}, {"type": "string"}, {"type": "number"}
ONE_PARAMS = (
    Param("includePhotometry", _B), Param("deduplicatePhotometry", _B),
    Param("includeRequested", _B, "Also sources only requested to groups"),
    Param("pendingOnly", _B, "Only sources requested (not saved) to groups"),
    Param("includeCandidates", _B, "One source: its candidates (of your filters)"),
    Param("includePhotometryExists", _B), Param("includeDuplicates", _B, "Our addition; duplicates are always "
                                                                          "listed for one source"),
    Param("TNSname", _S, "One source: require this TNS name"),
)
LIST_PARAMS = (
    *PAGINATION_PARAMS,
    *ONE_PARAMS,
    Param("group_ids", _S, "Comma-separated group IDs (default: all of yours)"),
    Param("ra", _N, "Cone centre RA [deg]"), Param("dec", _N, "Cone centre Dec [deg]"),
    Param("radius", _N, "Cone radius [deg]"),
    Param("sourceID", _S, "Part of the source's ID (or TNS name)"),
    Param("rejectedSourceIDs", _S, "Comma-separated IDs to leave out"),
    Param("simbadClass", _S, "Part of altdata.simbad.class (case-insensitive)"),
    Param("alias", _S, "Part of an alias (case-insensitive)"),
    Param("origin", _S, "Part of the origin (case-insensitive)"),
    Param("hasTNSname", _B), Param("hasNoTNSname", _B),
    Param("startDate", _S, "First detection at or after"), Param("endDate", _S, "Last detection at or before"),
    Param("numberDetections", {"type": "integer"}, "At least this many detections"),
    Param("requireDetections", _B, "Apply the detection filters (default true)"),
    Param("excludeForcedPhotometry", _B, "Accepted: no forced photometry is stored here"),
    Param("minPeakMagnitude", _N, "Peak magnitude <= this"), Param("maxPeakMagnitude", _N, "Peak magnitude >= this"),
    Param("minLatestMagnitude", _N, "Latest detection magnitude <= this"),
    Param("maxLatestMagnitude", _N, "Latest detection magnitude >= this"),
    Param("savedAfter", _S), Param("savedBefore", _S), Param("savedByCurrentUser", _B),
    Param("createdOrModifiedAfter", _S),
    Param("classifications", _S, "Comma-separated classes (taxonomy:class or class)"),
    Param("classifications_simul", _B, "Require all of them"),
    Param("nonclassifications", _S, "Comma-separated classes to reject"),
    Param("classified", _B), Param("unclassified", _B),
    Param("minRedshift", _N), Param("maxRedshift", _N),
    Param("hasSpectrum", _B), Param("hasNoSpectrum", _B),
    Param("hasFollowupRequest", _B), Param("followupRequestStatus", _S),
    Param("localizationDateobs", _S, "GCN event time: only objects in its localization"),
    Param("localizationName", _S), Param("localizationCumprob", _N, "default 0.95"),
    Param("removeNested", _B, "Leave out groups and classifications"),
    Param("useCache", _B, "Accepted; results are not cached here"), Param("queryID", _S, "Accepted; no effect"),
    Param("sortBy", _S, f"One of {sorted(svc.SOURCE_SORTS)} or altdata.<key>"),
    Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}),
)


class SourceHandler(BaseHandler):
    @endpoint("Retrieve all sources (numPerPage defaults to 100, capped at 500), or one", tags="sources",
              params=LIST_PARAMS)
    def get(self, obj_id=None):
        refuse_unsupported(self, UNSUPPORTED_FLAGS, UNSUPPORTED_VALUES)
        q = self._query()
        with self.session() as session:
            if obj_id is not None:
                out = svc.get_source(session, self.principal, obj_id, q, self.str_arg("TNSname"),
                                     self.bool_arg("includeCandidates"))
                if self.bool_arg("deduplicatePhotometry") and "photometry" in out:
                    out["photometry"] = svc.deduplicate_photometry(out["photometry"])
                self.success(out)
                return
            self.success(svc.list_sources(session, self.principal, q, self.page()))

    def _query(self) -> svc.SourceQuery:
        exists = []
        for param, must in (("hasSpectrum", True), ("hasNoSpectrum", False)):
            if self.bool_arg(param):
                exists.append((must, "spectra", param))
        ra_dec = {k: self.float_arg(k) for k in ("ra", "dec", "radius")}
        self.bool_arg("useCache")  # accepted (checked); no result cache here
        return svc.SourceQuery(
            group_ids=svc.parse_ids(self.str_arg("group_ids"), "group_ids"),
            **ra_dec,
            source_id=self.str_arg("sourceID"),
            rejected_source_ids=svc.parse_strings(self.str_arg("rejectedSourceIDs")),
            alias=self.str_arg("alias"), origin=self.str_arg("origin"), simbad_class=self.str_arg("simbadClass"),
            has_tns_name=self.bool_arg("hasTNSname"), has_no_tns_name=self.bool_arg("hasNoTNSname"),
            saved_after=svc.parse_date(self.str_arg("savedAfter"), "savedAfter"),
            saved_before=svc.parse_date(self.str_arg("savedBefore"), "savedBefore"),
            saved_by_current_user=self.bool_arg("savedByCurrentUser"),
            created_or_modified_after=svc.parse_date(self.str_arg("createdOrModifiedAfter"),
                                                     "createdOrModifiedAfter"),
            classifications=svc.parse_strings(self.str_arg("classifications")),
            classifications_simul=self.bool_arg("classifications_simul"),
            nonclassifications=svc.parse_strings(self.str_arg("nonclassifications")),
            classified=self.bool_arg("classified"), unclassified=self.bool_arg("unclassified"),
            min_redshift=self.float_arg("minRedshift"), max_redshift=self.float_arg("maxRedshift"),
            localization_dateobs=self.str_arg("localizationDateobs"),
            localization_name=self.str_arg("localizationName"),
            localization_cumprob=self.float_arg("localizationCumprob", 0.95),
            first_detection_after=svc.parse_date(self.str_arg("startDate"), "startDate"),
            last_detection_before=svc.parse_date(self.str_arg("endDate"), "endDate"),
            number_detections=self.int_arg("numberDetections"),
            require_detections=self.bool_arg("requireDetections", True),
            exclude_forced_photometry=self.bool_arg("excludeForcedPhotometry"),
            min_peak_magnitude=self.float_arg("minPeakMagnitude"),
            max_peak_magnitude=self.float_arg("maxPeakMagnitude"),
            min_latest_magnitude=self.float_arg("minLatestMagnitude"),
            max_latest_magnitude=self.float_arg("maxLatestMagnitude"),
            include_requested=self.bool_arg("includeRequested"), requested_only=self.bool_arg("pendingOnly"),
            has_followup_request=self.bool_arg("hasFollowupRequest"),
            followup_request_status=self.str_arg("followupRequestStatus"),
            exists=exists,
            sort_by=self.str_arg("sortBy"), sort_order=self.str_arg("sortOrder", "desc"),
            include_photometry=self.bool_arg("includePhotometry"),
            include_duplicates=self.bool_arg("includeDuplicates"),
            remove_nested=self.bool_arg("removeNested"),
            details=wanted_details(self, INCLUDES),
        )

    @endpoint("Check if a Source exists (saved to one of your groups)", tags="sources")
    def head(self, obj_id):
        with self.session() as session:
            found = svc.source_exists_for(session, self.principal, obj_id)
        if not found:
            self.set_status(404)
        self.finish()

    @endpoint("Add a new source (or save an existing object) to groups", tags="sources", acls=("Upload data",),
              body=SOURCE_POST)
    def post(self):
        with self.session() as session, session.begin():
            out = svc.post_source(session, self.principal, obj_body(self.body))
        self.success(out)

    @endpoint("Update a source", tags="sources", acls=("Upload data",), body=SOURCE_PATCH)
    def patch(self, obj_id):
        with self.session() as session, session.begin():
            svc.patch_source(session, self.principal, obj_id, self.body)
        self.success()

    @endpoint("Unsave a source from a group (group_id in the body, as SkyPortal; or in the query, our addition)",
              tags="sources", acls=("Manage sources",),
              params=(Param("group_id", {"type": "integer"}, "Group to unsave from (if not in the body)"),))
    def delete(self, obj_id):
        group_id = None
        if self.request.body and self.request.body.strip():
            from broker.validation import validate

            group_id = validate(self.json_body(), SOURCE_DELETE).get("group_id")
            group_id = None if group_id is None else int(group_id)  # SkyPortal documents it as a string
        if group_id is None:
            group_id = self.int_arg("group_id")
        if group_id is None:
            raise ValidationError("Missing required parameter `group_id`", field="group_id")
        with self.session() as session, session.begin():
            svc.delete_source(session, self.principal, obj_id, group_id)
        self.success()


class SourcePhotometryHandler(BaseHandler):
    """SkyPortal's ObjPhotometryHandler (serialised by broker.objects.photometry)."""

    @endpoint("Retrieve a source's photometry", tags="sources", params=(
        Param("format", {"type": "string", "enum": ["mag", "flux", "both", "plot"]}, "mag (default), flux, both, plot"),
        Param("magsys", _S, "Magnitude system of the output (default ab)"),
        Param("includeOwnerInfo", _B), Param("includeStreamInfo", _B), Param("includeAnnotationInfo", _B),
        Param("deduplicatePhotometry", _B, "One point per (mjd, filter): the most recent"),
        Param("individualOrSeries", {"type": "string", "enum": ["individual", "series", "both"]},
              "individual points, photometric series (none are stored here: []) or both (default)"),
        Param("phaseFoldData", _B, "Add each point's phase, by the period of the object's latest 'period' annotation"),
        Param("includeValidationInfo", _B, "Accepted: photometry validation is off (SkyPortal's default)"),
        Param("includeSuperObjsPhotometry", _B, "Accepted: no super-objects are kept here"),
        Param("includeExtinction", _B, "true is refused (no dust map here)"),
    ))
    def get(self, obj_id):
        from broker.errors import NotFound, PermissionDenied
        from broker.objects import photometry as psvc

        refuse_unsupported(self, ("includeExtinction",))
        which = self.str_arg("individualOrSeries", "both")
        if which not in ("individual", "series", "both"):
            raise ValidationError("Invalid individualOrSeries: must be individual, series or both",
                                  field="individualOrSeries")
        fmt = self.str_arg("format", "mag")
        if fmt not in ("mag", "flux", "both", "plot"):
            raise ValidationError("Invalid format: must be one of ['mag', 'flux', 'both', 'plot']", field="format")
        fold = self.bool_arg("phaseFoldData")
        self.bool_arg("includeValidationInfo")
        self.bool_arg("includeSuperObjsPhotometry")
        include = dict(owner=self.bool_arg("includeOwnerInfo"), streams=self.bool_arg("includeStreamInfo"),
                       annotations=self.bool_arg("includeAnnotationInfo"))
        with self.session() as session:
            try:
                svc.get_visible_obj(session, self.principal, obj_id)
            except NotFound:  # as SkyPortal: 403
                raise PermissionDenied(f"Insufficient permissions for User {self.principal.user_id} to read Obj "
                                       f"{obj_id}") from None
            data = []
            if which != "series":
                data = psvc.obj_photometry(session, self.principal, obj_id, fmt, self.str_arg("magsys", "ab"),
                                           deduplicate=self.bool_arg("deduplicatePhotometry"), **include)
            if fold:
                psvc.phase_fold(session, self.principal, obj_id, data)
            self.success(data)

    @endpoint("Delete all of a source's photometry you may delete", tags="sources", acls=("Delete bulk photometry",))
    def delete(self, obj_id):
        from broker.objects import photometry as psvc

        with self.session() as session, session.begin():
            n = psvc.delete_obj_photometry(session, self.principal, obj_id)
        self.success(f"Deleted {n} photometry point(s) of {obj_id}.")


class SourceClassificationHandler(BaseHandler):
    @endpoint("Retrieve an object's classifications", tags="sources")
    def get(self, obj_id):
        with self.session() as session:
            svc.get_visible_obj(session, self.principal, obj_id)
            self.success(svc.visible_classifications(session, self.principal, [obj_id])[obj_id])

    @endpoint("Delete all of an object's classifications (yours; an admin's: all)", tags="sources",
              acls=("Classify",))
    def delete(self, obj_id):
        with self.session() as session, session.begin():
            n = csvc.delete_obj_classifications(session, self.principal, obj_id)
        self.success({"deleted": n})


class SourceGroupsHandler(BaseHandler):
    @endpoint("Retrieve the groups a source is saved to", tags="sources")
    def get(self, obj_id):
        with self.session() as session:
            svc.get_visible_obj(session, self.principal, obj_id)
            self.success(svc.saved_groups(session, self.principal, [obj_id])[obj_id])

    @endpoint("Save a source to more groups", tags="sources", body=SAVE_POST)
    def post(self, obj_id):
        with self.session() as session, session.begin():
            svc.get_visible_obj(session, self.principal, obj_id)
            svc.save_source(session, self.principal, obj_id, self.body["group_ids"])
        self.success()


class SourceGroupsUpdateHandler(BaseHandler):
    @endpoint("Save or unsave a source to/from groups (SkyPortal's source_groups)", tags="sources",
              body=SOURCE_GROUPS_POST)
    def post(self):
        b = self.body
        with self.session() as session, session.begin():
            svc.get_visible_obj(session, self.principal, b["objId"])
            if b.get("inviteGroupIds"):
                svc.save_source(session, self.principal, b["objId"], b["inviteGroupIds"])
            if b.get("unsaveGroupIds"):
                svc.unsave_source(session, self.principal, b["objId"], b["unsaveGroupIds"])
        self.success()
