"""/api/filters."""

from broker.ingest import filters as svc
from broker.access.auth import readable_filters
from broker.validation import boolean, integer, nullable, obj, string

import models

from .base import BaseHandler, endpoint

CRITERIA = {"type": "object", "description": "skybroker addition: selection criteria (empty: every alert passes)"}
ALTDATA = nullable({"type": "object", "description": "Arbitrary additional JSON data associated with the Filter"})
FILTER_FIELDS = {
    "name": string("Filter name", minLength=1),
    "stream_id": integer("ID of the Filter's Stream"),
    "group_id": integer("ID of the Filter's Group"),
    "altdata": ALTDATA,
    "criteria": CRITERIA,
    "autosave": boolean("Save passing objects as sources of the group"),
}
FILTER_POST = obj({**FILTER_FIELDS,
                   "broker_id": nullable(integer("ID of a remote Broker running the filter: none here, leave null"))},
                  required=("name", "stream_id", "group_id"))
FILTER_PATCH = obj({**FILTER_FIELDS,
                    "name": nullable(string("Filter name", minLength=1)),
                    "autosave": nullable(boolean("Save passing objects as sources of the group")),
                    "group_id": nullable(integer("Cannot be changed; accepted only if it matches the current value")),
                    "stream_id": nullable(integer("Cannot be changed; accepted only if it matches the current "
                                                  "value"))},
                   minProperties=1)


class FilterHandler(BaseHandler):
    @endpoint("Retrieve all filters, or one", tags="filters")
    def get(self, filter_id=None):
        with self.session() as session:
            if filter_id is None:
                rows = session.execute(readable_filters(self.principal).order_by(models.Filter.id)).scalars()
                self.success([svc.filter_to_dict(f) for f in rows])
            else:
                self.success(svc.filter_to_dict(svc.get_filter(session, self.principal, int(filter_id))))

    @endpoint("POST a new filter.", tags="filters", acls=("Upload data",), body=FILTER_POST)
    def post(self):
        with self.session() as session, session.begin():
            f = svc.create_filter(session, self.principal, self.body)
            self.success({"id": f.id})

    @endpoint("Update a filter (group admins)", tags="filters", acls=("Upload data",), body=FILTER_PATCH)
    def patch(self, filter_id):
        with self.session() as session, session.begin():
            body = {k: v for k, v in self.body.items() if not (v is None and k in ("name", "group_id", "stream_id"))}
            svc.update_filter(session, self.principal, int(filter_id), body)
        self.success()

    @endpoint("Delete a filter", tags="filters", acls=("Upload data",))
    def delete(self, filter_id):
        with self.session() as session, session.begin():
            svc.delete_filter(session, self.principal, int(filter_id))
        self.success()
