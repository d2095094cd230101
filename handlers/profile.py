"""/api/internal/profile: your profile (SkyPortal's internal ProfileHandler)."""

from __future__ import annotations

from broker.access import users as svc
from broker.validation import array, boolean, nullable, obj, string

from .base import BaseHandler, endpoint

PROFILE_PATCH = obj({
    "username": nullable(string("Username (at least 5 characters; stored slugified; your single-user group "
                                "follows it)")),
    "first_name": nullable(string("First name")),
    "last_name": nullable(string("Last name")),
    "affiliations": nullable(array(string(), "Affiliations")),
    "contact_email": nullable(string("E-mail address ('' clears it)")),
    "contact_phone": nullable(string("Phone number: E.164, or a 10-digit US number ('' clears it)")),
    "bio": nullable(string("Biography: 10 to 1000 characters, or '' (required for a bot)")),
    "is_bot": nullable(boolean("A bot account (needs a bio)")),
    "preferences": nullable({"type": "object", "description": "Merged into your preferences"}),
})


class ProfileHandler(BaseHandler):
    @endpoint("Retrieve your profile", tags="profile")
    def get(self):
        with self.session() as session:
            self.success(svc.profile_to_dict(session, svc.get_user(session, self.principal.user_id)))

    @endpoint("Update your profile and preferences (a System admin: anyone's, with /{user_id})", tags="profile",
              body=PROFILE_PATCH)
    def patch(self, user_id=None):
        with self.session() as session, session.begin():
            svc.update_profile(session, self.principal, None if user_id is None else int(user_id), self.body)
            self.success()
