"""/api/{sources,spectra,photometry}/{id}/annotations[/{annotation_id}] (SkyPortal's AnnotationHandler)."""

from broker.objects import annotations as svc
from broker.validation import obj, string

from .base import BaseHandler, endpoint


NULLABLE_IDS = {"type": ["array", "null"], "items": {"type": "integer"}}
# SkyPortal ignores the handler-derived fields clients (Kowalski) still send: obj_id, author_id
IGNORED = {
    "obj_id": {"type": ["string", "null"], "description": "Ignored, as SkyPortal: the path names the resource"},
    "author_id": {"type": ["integer", "null"], "description": "Ignored, as SkyPortal: the caller is the author"},
}
ANNOTATION_POST = obj({
    "origin": string("Where the annotation comes from (one annotation per origin and resource); must start "
                     "with a letter, digit or underscore"),
    "data": {"type": "object", "description": "Annotation data as {key: value} pairs"},
    "group_ids": {**NULLABLE_IDS, "description": "Groups that may see it (default: all of yours)"},
    **IGNORED,
}, required=("origin", "data"))
ANNOTATION_PUT = obj({
    "origin": {"type": ["string", "null"], "description": "New origin"},
    "data": {"type": ["object", "null"], "description": "New data (replaces the old)"},
    "group_ids": {**NULLABLE_IDS, "description": "New groups (replace the old)"},
    **IGNORED,
})


class _AnnotationHandler(BaseHandler):
    RESOURCE = "sources"

    def _rid(self, kwargs) -> str:
        return str(next(iter(kwargs.values())))

    @endpoint("Retrieve an object's / spectrum's / photometry point's annotations (readable ones), or one",
              tags="annotations")
    def get(self, annotation_id=None, **resource):
        with self.session() as session:
            if annotation_id is None:
                self.success(svc.list_annotations(session, self.principal, self.RESOURCE, self._rid(resource)))
            else:
                self.success(svc.get_annotation(session, self.principal, self.RESOURCE, self._rid(resource),
                                                int(annotation_id)))

    @endpoint("Post an annotation (one per origin)", tags="annotations", acls=("Annotate",), body=ANNOTATION_POST)
    def post(self, **resource):
        with self.session() as session, session.begin():
            aid = svc.post_annotation(session, self.principal, self.RESOURCE, self._rid(resource), self.body)
        self.success({"annotation_id": aid})

    @endpoint("Update an annotation (its author or a system admin)", tags="annotations", acls=("Annotate",),
              body=ANNOTATION_PUT)
    def put(self, annotation_id, **resource):
        with self.session() as session, session.begin():
            svc.update_annotation(session, self.principal, self.RESOURCE, self._rid(resource), int(annotation_id),
                                  self.body)
        self.success()

    @endpoint("Delete an annotation (its author or a system admin)", tags="annotations", acls=("Annotate",))
    def delete(self, annotation_id, **resource):
        with self.session() as session, session.begin():
            svc.delete_annotation(session, self.principal, self.RESOURCE, self._rid(resource), int(annotation_id))
        self.success()


class SourceAnnotationHandler(_AnnotationHandler):
    RESOURCE = "sources"


class SpectrumAnnotationHandler(_AnnotationHandler):
    RESOURCE = "spectra"


class PhotometryAnnotationHandler(_AnnotationHandler):
    RESOURCE = "photometry"
