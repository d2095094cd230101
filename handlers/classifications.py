"""/api/classification (+ /votes, /sources) and /api/taxonomy."""

import json

import sqlalchemy as sa
import yaml

import models
from broker.objects import classifications as svc
from broker.objects import objs as osvc
from broker.errors import ValidationError
from broker.pagination import paginate
from broker.validation import array, boolean, integer, nullable, obj, string

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint

CLASSIFICATION_FIELDS = {
    "obj_id": string("ID of the object", minLength=1),
    "classification": string("The assigned class", minLength=1),
    "taxonomy_id": integer("ID of the taxonomy the class belongs to"),
    "probability": nullable({"type": "number", "minimum": 0, "maximum": 1}),
    "group_ids": array(integer(), "Groups that can see it (default: yours, except the sitewide group)"),
    "origin": nullable(string("Where the classification comes from")),
    "ml": boolean("Made by a machine-learning classifier"),
    "vote": nullable(boolean("Also up-vote it")),
    "label": nullable(boolean("Label the source as classified (accepted, no effect here)")),
}
ONE = obj(CLASSIFICATION_FIELDS, required=("obj_id", "classification", "taxonomy_id"))
CLASSIFICATION_POST = {"oneOf": [ONE, obj({"classifications": array(ONE, "Bulk upload", minItems=1)},
                                           required=("classifications",))]}
CLASSIFICATION_PUT = obj({k: v for k, v in CLASSIFICATION_FIELDS.items()
                          if k in ("classification", "taxonomy_id", "probability", "group_ids", "origin")},
                         minProperties=1)
VOTE_POST = obj({"vote": {"type": "integer", "enum": [1, -1], "description": "+1 or -1"}}, required=("vote",))
HIERARCHY = {"type": "object", "description": 'A tdtax hierarchy: {"class": ..., "subclasses": [...], "tags": [...], '
                                              '"other names": [...]}'}
TAXONOMY_POST = obj({
    "name": string("Short string to make this taxonomy memorable to end users", minLength=1),
    "hierarchy": HIERARCHY,
    "hierarchy_file": string("The hierarchy as a YAML string (instead of hierarchy)"),
    "version": string("Semantic version of this taxonomy name", minLength=1),
    "provenance": nullable(string("Identifier (e.g., URL or git hash) tying it to its origin")),
    "group_ids": nullable(array(integer(), "Groups that can use it (default: the sitewide group)")),
    "isLatest": boolean("Mark as the latest version of this name (default true)"),
}, required=("name", "version"))
TAXONOMY_PUT = obj({**{k: TAXONOMY_POST["properties"][k] for k in ("name", "version", "provenance", "group_ids")},
                    "isLatest": nullable(boolean("Mark as the latest version of this name")),
                    "hierarchy": nullable({**HIERARCHY, "description": "Not editable: upload a new taxonomy"})},
                   minProperties=1)


def taxonomy_hierarchy(body: dict) -> dict:
    """The hierarchy of a POST: ``hierarchy``, or ``hierarchy_file`` (YAML; a list: its first item)."""
    if body.get("hierarchy_file") is not None:
        try:
            parsed = yaml.safe_load(body["hierarchy_file"])
        except yaml.YAMLError as exc:
            raise ValidationError(f"Invalid hierarchy_file: not YAML ({str(exc).splitlines()[0]})",
                                  field="hierarchy_file") from None
        if isinstance(parsed, list):
            parsed = parsed[0] if parsed else None
        try:
            json.dumps(parsed, allow_nan=False)
        except (TypeError, ValueError):
            raise ValidationError("Invalid hierarchy_file: holds values JSON cannot carry (dates, NaN...)",
                                  field="hierarchy_file") from None
        if not isinstance(parsed, dict):
            raise ValidationError("Invalid hierarchy_file: must describe one tdtax node (a mapping with 'class')",
                                  field="hierarchy_file")
        return parsed
    if body.get("hierarchy") is None:
        raise ValidationError("A JSON of the taxonomy must be given (hierarchy or hierarchy_file)", field="hierarchy")
    return body["hierarchy"]


class ClassificationHandler(BaseHandler):
    @endpoint("Retrieve all classifications (paginated), or one", tags="classifications",
              params=(*PAGINATION_PARAMS, Param("startDate", {"type": "string"}), Param("endDate", {"type": "string"}),
                      Param("includeTaxonomy", {"type": "boolean"})))
    def get(self, classification_id=None):
        include_tax = self.bool_arg("includeTaxonomy")
        with self.session() as session:
            if classification_id is not None:
                c = svc.get_classification(session, self.principal, int(classification_id))
                out = osvc.classification_to_dict(c, include_tax, osvc.caller_groups(session, self.principal))
                out["votes"] = svc.votes_of(session, [c.id])[c.id]
                self.success(out)
                return
            start = osvc.parse_date(self.str_arg("startDate"), "startDate")
            end = osvc.parse_date(self.str_arg("endDate"), "endDate")
            rows, total = paginate(session, svc.classifications_between(self.principal, start, end), self.page())
            mine = osvc.caller_groups(session, self.principal)
            self.success({"classifications": [osvc.classification_to_dict(c, include_tax, mine) for c in rows],
                          "totalMatches": total})

    @endpoint("Post a classification, or several ({\"classifications\": [...]})", tags="classifications",
              acls=("Classify",), body=CLASSIFICATION_POST)
    def post(self):
        sitewide = self.config.admin.sitewide_group
        with self.session() as session, session.begin():
            if "classifications" in self.body:
                ids = [svc.create_classification(session, self.principal, c, sitewide).id
                       for c in self.body["classifications"]]
                self.success({"classification_ids": ids})
            else:
                self.success({"classification_id": svc.create_classification(session, self.principal,
                                                                             self.body, sitewide).id})

    @endpoint("Update a classification", tags="classifications", acls=("Classify",), body=CLASSIFICATION_PUT)
    def put(self, classification_id):
        with self.session() as session, session.begin():
            svc.update_classification(session, self.principal, int(classification_id), dict(self.body))
        self.success()

    @endpoint("Delete a classification", tags="classifications", acls=("Classify",))
    def delete(self, classification_id):
        with self.session() as session, session.begin():
            svc.delete_classification(session, self.principal, int(classification_id))
        self.success()


class ClassificationVoteHandler(BaseHandler):
    @endpoint("Vote on a classification", tags="classifications", body=VOTE_POST)
    def post(self, classification_id):
        with self.session() as session, session.begin():
            svc.vote(session, self.principal, int(classification_id), self.body["vote"])
        self.success()

    @endpoint("Delete your vote on a classification", tags="classifications")
    def delete(self, classification_id):
        with self.session() as session, session.begin():
            svc.unvote(session, self.principal, int(classification_id))
        self.success()


class ClassificationSourcesHandler(BaseHandler):
    @endpoint("Find the sources with classifications", tags="classifications",
              params=(Param("startDate", {"type": "string"}), Param("endDate", {"type": "string"})))
    def get(self):
        start = osvc.parse_date(self.str_arg("startDate"), "startDate")
        end = osvc.parse_date(self.str_arg("endDate"), "endDate")
        sub = svc.classifications_between(self.principal, start, end).subquery()
        with self.session() as session:
            self.success(list(session.execute(
                sa.select(sub.c.obj_id).distinct().order_by(sub.c.obj_id)).scalars()))


class TaxonomyHandler(BaseHandler):
    @endpoint("Retrieve all taxonomies you can use, or one", tags="taxonomies")
    def get(self, taxonomy_id=None):
        with self.session() as session:
            if taxonomy_id is not None:
                self.success(svc.taxonomy_to_dict(svc.get_taxonomy(session, self.principal, int(taxonomy_id))))
                return
            rows = session.execute(svc.readable_taxonomies(self.principal).order_by(models.Taxonomy.id)).scalars()
            self.success([svc.taxonomy_to_dict(t) for t in rows])

    @endpoint("Post a new taxonomy", tags="taxonomies", acls=("Post taxonomy",), body=TAXONOMY_POST)
    def post(self):
        body = {k: v for k, v in self.body.items() if k != "hierarchy_file" and not (k == "group_ids" and not v)}
        body["hierarchy"] = taxonomy_hierarchy(self.body)
        with self.session() as session, session.begin():
            t = svc.create_taxonomy(session, self.principal, body, self.config.admin.sitewide_group)
            self.success({"taxonomy_id": t.id})

    @endpoint("Update a taxonomy (its hierarchy is not editable: upload a new version)", tags="taxonomies",
              acls=("Post taxonomy",), body=TAXONOMY_PUT)
    def put(self, taxonomy_id):
        if self.body.get("hierarchy") is not None:
            raise ValidationError("Editing the hierarchy not allowed, upload a new taxonomy if this change is "
                                  "desired.", field="hierarchy")
        body = {k: v for k, v in self.body.items()
                if k != "hierarchy" and not (k in ("isLatest", "group_ids") and not v and v is not False)}
        with self.session() as session, session.begin():
            svc.update_taxonomy(session, self.principal, int(taxonomy_id), body)
        self.success()

    @endpoint("Delete a taxonomy (not while classifications use it)", tags="taxonomies", acls=("Delete taxonomy",))
    def delete(self, taxonomy_id):
        with self.session() as session, session.begin():
            svc.delete_taxonomy(session, self.principal, int(taxonomy_id))
        self.success()
