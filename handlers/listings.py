"""/api/listing, as SkyPortal's UserObjListHandler: a user's named lists of objects."""

from broker.objects import listings as svc
from broker.validation import integer, nullable, obj, string, validate

from .base import BaseHandler, Param, endpoint

LISTING = {"obj_id": string("ID of the object to add to the list", minLength=1),
           "list_name": string('Listing name, e.g. "favorites" or "rejected_candidates"; must begin with an '
                               "alphanumeric character or underscore"),
           "user_id": nullable(integer("The user whose list it is (default: the caller; others: admins only)")),
           "params": nullable({"type": "object", "description": 'A "watchlist": {arcsec, cadence, end_of_night}'})}
LISTING_PATCH = {k: nullable(v) if k != "user_id" else v for k, v in LISTING.items() if k != "params"}


class ListingHandler(BaseHandler):
    @endpoint("Get a user's object listings (SkyPortal's path parameter here is the user's ID)", tags="listings",
              params=(Param("listName", {"type": "string"}, "Only this list"),))
    def get(self, listing_id=None):
        with self.session() as session:
            # (an empty listName is a list name, as SkyPortal filters on it: no listing has it)
            self.success(svc.list_listings(session, self.principal, None if listing_id is None else int(listing_id),
                                           self.get_query_argument("listName", None)))

    @endpoint("Add a listing", tags="listings", body=obj(LISTING, required=("obj_id", "list_name")))
    def post(self):
        with self.session() as session, session.begin():
            listing_id = svc.add_listing(session, self.principal, self.body)
        self.success({"id": listing_id})

    @endpoint("Update a listing", tags="listings", body=obj(LISTING_PATCH))
    def patch(self, listing_id):
        with self.session() as session, session.begin():
            svc.update_listing(session, self.principal, int(listing_id), self.body)
        self.success()

    @endpoint("Remove a listing: by ID, or by the body's obj_id and list_name (and user_id)", tags="listings")
    def delete(self, listing_id=None):
        body = None
        if listing_id is None:  # (a listing echoed back, params and all, is taken: params play no part)
            body = validate(self.json_body(), obj(LISTING, required=("obj_id", "list_name")))
        with self.session() as session, session.begin():
            svc.delete_listing(session, self.principal, None if listing_id is None else int(listing_id), body)
        self.success()
