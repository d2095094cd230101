"""/api/sources (+ /photometry, /classifications, /groups) and /api/source_groups."""

from broker.objects import classifications as csvc
from broker.objects import objs as svc
from broker.errors import ValidationError
from broker.validation import array, integer, obj, string

from .base import OBJ_FILTER_PARAMS, PAGINATION_PARAMS, BaseHandler, Param, endpoint
from .candidates import OBJ_FIELDS

SOURCE_POST = obj({**OBJ_FIELDS, "group_ids": array(integer(), "Groups to save to (default: all you can)")},
                  required=("id",))
SOURCE_GROUPS_POST = obj({
    "objId": string("Object ID", minLength=1),
    "inviteGroupIds": array(integer(), "Groups to save the source to"),
    "unsaveGroupIds": array(integer(), "Groups to unsave it from"),
}, required=("objId",))
SAVE_POST = obj({"group_ids": array(integer(), "Groups to save to", minItems=1)}, required=("group_ids",))

LIST_PARAMS = (
    *PAGINATION_PARAMS,
    Param("group_ids", {"type": "string"}, "Comma-separated group IDs (default: all of yours)"),
    Param("ra", {"type": "number"}, "Cone centre RA [deg]"), Param("dec", {"type": "number"}, "Cone centre Dec [deg]"),
    Param("radius", {"type": "number"}, "Cone radius [deg]"),
    Param("savedAfter", {"type": "string"}), Param("savedBefore", {"type": "string"}),
    Param("sortBy", {"type": "string", "enum": sorted(svc.SOURCE_SORTS)}),
    Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}),
    Param("includePhotometry", {"type": "boolean"}), Param("includeDuplicates", {"type": "boolean"}),
    *OBJ_FILTER_PARAMS,
)


class SourceHandler(BaseHandler):
    @endpoint("Retrieve all sources, or one (with groups, classifications; photometry and duplicates on request)",
              tags="sources", params=LIST_PARAMS)
    def get(self, obj_id=None):
        with self.session() as session:
            if obj_id is not None:
                self.success(svc.get_source(session, self.principal, obj_id, self.bool_arg("includePhotometry"),
                                            self.bool_arg("includeDuplicates")))
                return
            q = svc.SourceQuery(
                group_ids=svc.parse_ids(self.str_arg("group_ids"), "group_ids"),
                ra=self.float_arg("ra"), dec=self.float_arg("dec"), radius=self.float_arg("radius"),
                saved_after=svc.parse_date(self.str_arg("savedAfter"), "savedAfter"),
                saved_before=svc.parse_date(self.str_arg("savedBefore"), "savedBefore"),
                sort_by=self.str_arg("sortBy", "saved_at"), sort_order=self.str_arg("sortOrder", "desc"),
                include_photometry=self.bool_arg("includePhotometry"),
                include_duplicates=self.bool_arg("includeDuplicates"),
                **self.obj_filter_args(),
            )
            self.success(svc.list_sources(session, self.principal, q, self.page()))

    @endpoint("Check if a Source exists", tags="sources")
    def head(self, obj_id):
        with self.session() as session:
            svc.get_visible_obj(session, self.principal, obj_id)
        self.exists()

    @endpoint("Add a new source (or save an existing object) to groups", tags="sources", acls=("Upload data",),
              body=SOURCE_POST)
    def post(self):
        with self.session() as session, session.begin():
            obj_id = svc.post_source(session, self.principal, self.body)
        self.success({"id": obj_id})

    @endpoint("Unsave a source from a group", tags="sources",
              params=(Param("group_id", {"type": "integer"}, "Group to unsave from", required=True),))
    def delete(self, obj_id):
        group_id = self.int_arg("group_id")
        if group_id is None:
            raise ValidationError("Missing required parameter 'group_id'", field="group_id")
        with self.session() as session, session.begin():
            svc.get_visible_obj(session, self.principal, obj_id)
            svc.unsave_source(session, self.principal, obj_id, [group_id])
        self.success()


class SourcePhotometryHandler(BaseHandler):
    @endpoint("Retrieve a source's photometry", tags="sources",
              params=(Param("format", {"type": "string", "enum": ["flux", "mag"]}, "flux (default) or mag"),))
    def get(self, obj_id):
        fmt = self.str_arg("format", "flux")
        if fmt not in ("flux", "mag"):
            raise ValidationError("Invalid format: must be flux or mag", field="format")
        with self.session() as session:
            svc.get_visible_obj(session, self.principal, obj_id)
            points = svc.visible_photometry(session, self.principal, [obj_id])[obj_id]
            self.success([svc.photometry_to_dict(p, fmt) for p in points])


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
