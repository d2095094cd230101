"""/api/user (+ /acls, /roles), /api/internal/tokens and our /api/tokens, as SkyPortal serves them."""

from __future__ import annotations


from broker.access import users as svc
from broker.pagination import page_from_args
from broker.validation import array, boolean, nullable, obj, string
from models.enums import ACLS, ROLES

from .base import BaseHandler, Param, endpoint

ACL_NAME = {"type": "string", "enum": list(ACLS)}
ROLE_NAME = {"type": "string", "enum": list(ROLES)}
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
PHONE = nullable(string("Phone number: E.164 ('+' and country code), or a 10-digit US number; '' clears it"))
EMAIL = nullable(string("E-mail address ('' clears it)"))

USER_POST = obj({
    "username": string("Username (unique; stored in lower case, slugified, as SkyPortal)", minLength=1),
    "first_name": nullable(string("First name")),
    "last_name": nullable(string("Last name")),
    "affiliations": nullable(array(string(), "Affiliations")),
    "contact_email": EMAIL,
    "contact_phone": PHONE,
    "oauth_uid": nullable(string("OAuth UID (unique)")),
    "roles": array(string(), f"Roles (default and when empty: Full user); of {list(ROLES)}"),
    "groupIDsAndAdmin": array({"type": "array", "prefixItems": [ID, {"type": "boolean"}],
                               "minItems": 2, "maxItems": 2},
                              "[[group_id, is_admin], ...]: groups to add the user to (besides the sitewide one)"),
    "acls": array(ACL_NAME, "ACLs granted directly (our addition)"),
}, required=("username",))
USER_PATCH = obj({
    "username": string("Username (stored slugified; the user's single-user group follows it)", minLength=1),
    "first_name": nullable(string("First name")),
    "last_name": nullable(string("Last name")),
    "bio": nullable(string("Biography")),
    "affiliations": array(string(), "Affiliations"),
    "contact_email": EMAIL,
    "contact_phone": PHONE,
    "is_bot": boolean("A bot account"),
    "preferences": nullable({"type": "object", "description": "Preferences (replaced whole)"}),
    "expirationDate": nullable(string("Arrow-parseable date after which the account is refused; null or '' "
                                      "clears it")),
    # SkyPortal accepts and ignores these: identity columns (and the date's other spelling) are not set this way
    **{k: {"description": "Ignored, as SkyPortal ignores it (not changed by this request)"}
       for k in sorted(svc.PATCH_IGNORED)},
})
ACLS_POST = obj({"aclIds": array(string(), f"ACL IDs to grant, of {list(ACLS)}")}, required=("aclIds",))
ROLES_POST = obj({"roleIds": array(string(), f"Role IDs to grant, of {list(ROLES)}")}, required=("roleIds",))
TOKEN_POST = obj({
    "name": string("Token name (unique per user)", minLength=1),
    "acls": array(ACL_NAME, "ACLs of the token (ones the user holds)"),
    "user_id": nullable({**ID, "description": "User to create the token for (System admins only); default you"}),
}, required=("name", "acls"))
LEGACY_TOKEN_POST = {**TOKEN_POST, "required": ["name"]}
TOKEN_PUT = obj({
    "name": nullable(string("New token name", minLength=1)),
    "acls": nullable(array(ACL_NAME, "New ACLs of the token")),
    "user_id": nullable({**ID, "description": "User whose ACLs the new ones are checked against (default you; "
                                              "another user: System admins only)"}),
})

USER_LIST_PARAMS = (
    Param("pageNumber", {"type": "integer", "minimum": 1}, "Page number (1-based; default 1)"),
    Param("numPerPage", {"type": "integer", "minimum": 1},
          "Users per page (default and cap: the server's max_num_per_page; SkyPortal's default is all)"),
    Param("firstName", {"type": "string"}, "First name contains this"),
    Param("lastName", {"type": "string"}, "Last name contains this"),
    Param("username", {"type": "string"}, "Username contains this"),
    Param("email", {"type": "string"}, "Contact e-mail contains this"),
    Param("role", {"type": "string"}, "Holds this role"),
    Param("acl", {"type": "string"}, "Holds this ACL directly"),
    Param("group", {"type": "string"}, "Member of the group of this name"),
    Param("stream", {"type": "string"}, "Has access to the stream of this name"),
    Param("includeExpired", {"type": "boolean"}, "Include users whose account has expired (default false)"),
    Param("sortBy", {"type": "string", "enum": list(svc.USER_SORT)}, "Sort field (default username)"),
    Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}, "Sort order (default asc)"),
)


class UserHandler(BaseHandler):
    @endpoint("Retrieve users (paginated), or one user", tags="users", params=USER_LIST_PARAMS)
    def get(self, user_id=None):
        with self.session() as session:
            if user_id is not None:
                self.success(svc.user_to_dict(svc.get_user(session, int(user_id))))
                return
            cap = self.config.server.max_num_per_page
            page = page_from_args(self.get_query_argument("pageNumber", None),
                                  self.get_query_argument("numPerPage", None), cap, cap)
            self.success(svc.list_users(
                session, self.principal, page,
                first_name=self.str_arg("firstName"), last_name=self.str_arg("lastName"),
                username=self.str_arg("username"), email=self.str_arg("email"), role=self.str_arg("role"),
                acl=self.str_arg("acl"), group=self.str_arg("group"), stream=self.str_arg("stream"),
                include_expired=self.bool_arg("includeExpired"),
                sort_by=self.str_arg("sortBy", "username"), sort_order=self.str_arg("sortOrder", "asc"),
            ))

    @endpoint("Add a new user", tags="users", acls=("Manage users",), body=USER_POST)
    def post(self):
        with self.session() as session, session.begin():
            user = svc.create_api_user(session, self.principal, self.body, self.config.admin.sitewide_group)
            self.success({"id": user.id})

    @endpoint("Update a user (yourself; anyone, for a System admin)", tags="users", acls=("Manage users",),
              body=USER_PATCH)
    def patch(self, user_id):
        with self.session() as session, session.begin():
            svc.update_user(session, self.principal, int(user_id), self.body)
            self.success()

    @endpoint("Delete a user (yourself; anyone, for a System admin)", tags="users", acls=("Manage users",))
    def delete(self, user_id):
        with self.session() as session, session.begin():
            svc.delete_user(session, self.principal, int(user_id))
            self.success()


class UserACLHandler(BaseHandler):
    @endpoint("Grant ACLs to a user", tags="acls", acls=("Manage users",), body=ACLS_POST)
    def post(self, user_id):
        with self.session() as session, session.begin():
            svc.add_acls(session, self.principal, int(user_id), self.body["aclIds"])
            self.success()

    @endpoint("Remove an ACL from a user", tags="acls", acls=("Manage users",))
    def delete(self, user_id, acl_id):
        with self.session() as session, session.begin():
            svc.remove_acl(session, self.principal, int(user_id), acl_id)
            self.success()


class UserRoleHandler(BaseHandler):
    @endpoint("Grant roles to a user", tags="roles", acls=("Manage users",), body=ROLES_POST)
    def post(self, user_id):
        with self.session() as session, session.begin():
            svc.add_roles(session, self.principal, int(user_id), self.body["roleIds"])
            self.success()

    @endpoint("Remove a role from a user", tags="roles", acls=("Manage users",))
    def delete(self, user_id, role_id):
        with self.session() as session, session.begin():
            svc.remove_role(session, self.principal, int(user_id), role_id)
            self.success()


class TokenHandler(BaseHandler):
    """SkyPortal's /api/internal/tokens: your tokens (every token, for a System admin)."""

    one_per_user = True  # SkyPortal: "Generate new token (limit 1 per user)", except for System admins

    @endpoint("Retrieve tokens (yours; a System admin's: all), or one", tags="tokens",
              params=(Param("userID", {"type": "integer"}, "Only the tokens of this user"),))
    def get(self, token_id=None):
        with self.session() as session:
            if token_id is not None:
                self.success(svc.token_to_dict(svc.get_token(session, self.principal, token_id)))
                return
            tokens = svc.list_tokens(session, self.principal, self.int_arg("userID"))
            self.success([svc.token_to_dict(t) for t in tokens])

    @endpoint("Generate a new token (one per user, except by a System admin)", tags="tokens", body=TOKEN_POST)
    def post(self):
        with self.session() as session, session.begin():
            token = svc.create_api_token(session, self.principal, name=self.body["name"],
                                         acls=self.body.get("acls", []), user_id=self.body.get("user_id"),
                                         one_per_user=self.one_per_user)
            self.success({"token_id": token.id})

    @endpoint("Update a token (its name and/or ACLs)", tags="tokens", body=TOKEN_PUT)
    def put(self, token_id):
        with self.session() as session, session.begin():
            svc.update_token(session, self.principal, token_id, self.body)
            self.success()

    @endpoint("Delete a token", tags="tokens")
    def delete(self, token_id):
        with self.session() as session, session.begin():
            svc.delete_token(session, self.principal, token_id)
            self.success()


class LegacyTokenHandler(TokenHandler):
    """Our /api/tokens (kept): /api/internal/tokens without SkyPortal's one-token limit, ``acls`` optional."""

    one_per_user = False

    @endpoint("Generate a new token (any number; our route)", tags="tokens", body=LEGACY_TOKEN_POST)
    def post(self):
        with self.session() as session, session.begin():
            token = svc.create_api_token(session, self.principal, name=self.body["name"],
                                         acls=self.body.get("acls", []), user_id=self.body.get("user_id"),
                                         one_per_user=False)
            self.success({"token_id": token.id})
