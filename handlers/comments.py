"""/api/{sources,spectra}/{id}/comments[/{comment_id}[/attachment]] (SkyPortal's CommentHandler)."""

from broker.errors import ValidationError
from broker.objects import comments as svc
from broker.validation import obj

from .base import BaseHandler
from .base import Param, endpoint

ATTACHMENT = {"type": ["object", "null"], "description": "A file: {body: base64 contents, name: file name}",
              "properties": {"body": {"type": ["string", "null"]}, "name": {"type": "string"}}}
IDS = {"type": ["array", "null"], "items": {"type": "integer"}}
COMMENT_POST = obj({
    "text": {"type": "string", "description": "The comment"},
    "group_ids": {**IDS, "description": "Groups that may see it (default: the sitewide public group)"},
    "attachment": ATTACHMENT,
    "channel": {"type": ["string", "null"], "description": "A named conversation on the source (sources only)"},
}, required=("text",))
COMMENT_PUT = obj({
    "text": {"type": "string", "description": "New text"},
    "group_ids": {**IDS, "description": "New groups (replace the old)"},
    "attachment": ATTACHMENT,
    # SkyPortal's PUT takes the comment's own fields and ignores what cannot change
    "obj_id": {"type": ["string", "null"], "description": "Ignored: the path names the resource"},
    "spectrum_id": {"type": ["integer", "null"], "description": "Ignored: the path names the resource"},
    "author_id": {"type": ["integer", "null"], "description": "Ignored: a comment keeps its author"},
})
LIST_PARAMS = (
    Param("text", {"type": "string"}, "Only comments containing this text (case-insensitive)"),
    Param("pageNumber", {"type": "integer", "minimum": 1}, "Page of a text search (default 1)"),
    Param("numPerPage", {"type": "integer", "minimum": 1}, "Comments per page of a text search (default 25)"),
    Param("channel", {"type": "string"}, "A named conversation of the source (default: the main thread)"),
)
MAX_PER_PAGE = 1000


class _CommentHandler(BaseHandler):
    KIND = "sources"

    def _rid(self, kwargs) -> str:
        return str(next(iter(kwargs.values())))

    @endpoint("Retrieve the comments on a source / spectrum (readable ones), or one", tags="comments",
              params=LIST_PARAMS)
    def get(self, comment_id=None, **resource):
        with self.session() as session:
            if comment_id is not None:
                self.success(svc.get_comment(session, self.principal, self.KIND, self._rid(resource),
                                             int(comment_id)))
                return
            page = self.int_arg("pageNumber", 1)
            per = self.int_arg("numPerPage", 25)
            if not 1 <= page <= 10**9:
                raise ValidationError("Invalid pageNumber: must be between 1 and 10^9", field="pageNumber")
            if not 1 <= per <= MAX_PER_PAGE:
                raise ValidationError(f"Invalid numPerPage: must be between 1 and {MAX_PER_PAGE}", field="numPerPage")
            self.success(svc.list_comments(session, self.principal, self.KIND, self._rid(resource),
                                           self.get_query_argument("text", None), self.str_arg("channel"),
                                           page, per))

    @endpoint("Post a comment (a bot comment: it comes through the API)", tags="comments", acls=("Comment",),
              body=COMMENT_POST)
    def post(self, **resource):
        if self.KIND != "sources" and self.body.get("channel"):
            raise ValidationError("Invalid channel: only comments on sources have channels", field="channel")
        with self.session() as session, session.begin():
            out = svc.post_comment(session, self.principal, self.KIND, self._rid(resource), self.body,
                                   self.config.admin.sitewide_group)
        self.success(out)

    @endpoint("Update a comment (its author or a system admin)", tags="comments", acls=("Comment",),
              body=COMMENT_PUT)
    def put(self, comment_id, **resource):
        with self.session() as session, session.begin():
            svc.update_comment(session, self.principal, self.KIND, self._rid(resource), int(comment_id), self.body)
        self.success()

    @endpoint("Delete a comment (its author or a system admin)", tags="comments", acls=("Comment",))
    def delete(self, comment_id, **resource):
        with self.session() as session, session.begin():
            svc.delete_comment(session, self.principal, self.KIND, self._rid(resource), int(comment_id))
        self.success()


class SourceCommentHandler(_CommentHandler):
    KIND = "sources"


class SpectrumCommentHandler(_CommentHandler):
    KIND = "spectra"


class _AttachmentHandler(BaseHandler):
    KIND = "sources"

    @endpoint("Download a comment's attachment (download=false: as text in JSON; preview=true: inline)",
              tags="comments",
              params=(Param("download", {"type": "boolean"}, "Send the file (default true)"),
                      Param("preview", {"type": "boolean"}, "Send it inline with its content type (default false)")))
    def get(self, comment_id, **resource):
        download = self.bool_arg("download", True)
        preview = self.bool_arg("preview", False)
        if download and preview:
            raise ValidationError("Cannot set both download and preview to True. Please set only one to True, or set "
                                  "both to False.", field="preview")
        with self.session() as session:
            name, data = svc.get_attachment(session, self.principal, self.KIND, str(next(iter(resource.values()))),
                                            int(comment_id))
        if download:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(data)
            return
        if preview:
            ext = name.rsplit(".", 1)[-1].strip().lower() if "." in name else ""
            if ext not in svc.EXTENSION_TO_CONTENT_TYPE:
                # SkyPortal also renders FITS files as PNG previews; not done here
                raise ValidationError(f'Unsupported file type "{ext}" for preview, must be one of: '
                                      f"{sorted(svc.EXTENSION_TO_CONTENT_TYPE)}", field="preview")
            self.set_header("Content-Type", svc.EXTENSION_TO_CONTENT_TYPE[ext])
            self.set_header("Content-Disposition", f'inline; filename="{name}"')
            self.finish(data)
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("The attachment is not text: download it (download=true)", field="download") from None
        self.success({"commentId": int(comment_id), "attachment": text, "attachmentName": name})


class SourceCommentAttachmentHandler(_AttachmentHandler):
    KIND = "sources"


class SpectrumCommentAttachmentHandler(_AttachmentHandler):
    KIND = "spectra"


class CommentChannelHandler(BaseHandler):
    @endpoint("The named conversations on a source", tags="comments")
    def get(self, obj_id):
        with self.session() as session:
            self.success(svc.channels(session, self.principal, obj_id))

    @endpoint("Delete a conversation and its comments (its opener or a system admin)", tags="comments",
              acls=("Comment",), params=(Param("channel", {"type": "string"}, "The conversation", required=True),))
    def delete(self, obj_id):
        with self.session() as session, session.begin():
            svc.delete_channel(session, self.principal, obj_id, self.str_arg("channel"))
        self.success()
