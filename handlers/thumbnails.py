"""/api/thumbnail[/{thumbnail_id}] (SkyPortal's ThumbnailHandler) and /api/thumbnail/{id}/image (ours)."""

from broker.objects import thumbnails as svc
from broker.validation import obj, string
from models.enums import THUMBNAIL_TYPES

from .base import BaseHandler
from .base import endpoint

THUMBNAIL_POST = obj({
    "obj_id": string("ID of the object", minLength=1),
    "data": string("base64-encoded PNG image, between 16 and 500 pixels a side"),
    "ttype": {"type": "string", "enum": list(THUMBNAIL_TYPES), "description": "Thumbnail type"},
    "survey": {"type": ["string", "null"], "description": "Survey the cutout came from (e.g. ZTF, LSST)"},
}, required=("obj_id", "data", "ttype"))
THUMBNAIL_PUT = obj({
    "obj_id": {"type": ["string", "null"], "description": "ID of the thumbnail's object"},
    "type": {"type": ["string", "null"], "description": "Thumbnail type"},
    "file_uri": {"type": ["string", "null"], "description": "Path of the image on the server (informative here)"},
    "public_url": {"type": ["string", "null"], "description": "Public URL of the image"},
    "origin": {"type": ["string", "null"], "description": "Origin of the thumbnail"},
    "is_grayscale": {"type": ["boolean", "null"], "description": "Whether the image is (mostly) grayscale"},
})


class ThumbnailHandler(BaseHandler):
    @endpoint("Upload a thumbnail (a base64 PNG)", tags="thumbnails", acls=("Upload data",), body=THUMBNAIL_POST)
    def post(self):
        with self.session() as session, session.begin():
            tid = svc.post_thumbnail(session, self.principal, self.body)
        self.success({"id": tid})

    @endpoint("Retrieve a thumbnail (its image: public_url)", tags="thumbnails")
    def get(self, thumbnail_id):
        with self.session() as session:
            self.success(svc.thumbnail_to_dict(svc.get_thumbnail(session, self.principal, int(thumbnail_id))))

    @endpoint("Update a thumbnail", tags="thumbnails", acls=("Manage sources",), body=THUMBNAIL_PUT)
    def put(self, thumbnail_id):
        with self.session() as session, session.begin():
            svc.update_thumbnail(session, self.principal, int(thumbnail_id), self.body)
        self.success()

    @endpoint("Delete a thumbnail", tags="thumbnails", acls=("Manage sources",))
    def delete(self, thumbnail_id):
        with self.session() as session, session.begin():
            svc.delete_thumbnail(session, self.principal, int(thumbnail_id))
        self.success()


class ThumbnailImageHandler(BaseHandler):
    @endpoint("A thumbnail's PNG image (what its public_url names; an addition: SkyPortal serves files)",
              tags="thumbnails")
    def get(self, thumbnail_id):
        with self.session() as session:
            data = svc.thumbnail_image(session, self.principal, int(thumbnail_id))
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(data)
