"""/api/user (+ /acls, /roles) and /api/tokens."""

import sqlalchemy as sa

import models
from broker.access import users as svc
from broker.pagination import paginate
from broker.validation import array, nullable, obj, string
from models.enums import ACLS, ROLES

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint

ACL_NAME = {"type": "string", "enum": list(ACLS)}
ROLE_NAME = {"type": "string", "enum": list(ROLES)}
PROFILE_FIELDS = {
    "first_name": nullable(string("First name")),
    "last_name": nullable(string("Last name")),
    "contact_email": nullable(string("Contact e-mail")),
    "affiliations": array(string(), "Affiliations"),
}
USER_POST = obj({
    "username": string("Username (unique)", minLength=1),
    **PROFILE_FIELDS,
    "roles": array(ROLE_NAME, "Roles (default: Full user)"),
    "acls": array(ACL_NAME, "ACLs granted directly"),
    "groupIDsAndAdmin": array({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}],
                               "minItems": 2, "maxItems": 2},
                              "[[group_id, is_admin], ...] groups to add the user to"),
}, required=("username",))
USER_PATCH = obj({"username": string("Username", minLength=1), **PROFILE_FIELDS}, minProperties=1)
ACLS_POST = obj({"aclIds": array(ACL_NAME, "ACLs to grant", minItems=1)}, required=("aclIds",))
ROLES_POST = obj({"roleIds": array(ROLE_NAME, "Roles to grant", minItems=1)}, required=("roleIds",))
TOKEN_POST = obj({"name": string("Token name (unique per user)", minLength=1),
                  "acls": array(ACL_NAME, "ACLs of the token (a subset of yours)")},
                 required=("name",))
TOKEN_PUT = obj({"name": string("New token name", minLength=1)}, required=("name",))


class UserHandler(BaseHandler):
    @endpoint("Retrieve users (paginated), or one user", tags="users",
              params=(*PAGINATION_PARAMS, Param("username", {"type": "string"}, "Filter by username"),
                      Param("includeACLs", {"type": "boolean"}, "Include roles and ACLs")))
    def get(self, user_id=None):
        with self.session() as session:
            if user_id is not None:
                self.success(svc.user_to_dict(svc.get_user(session, self.principal, int(user_id))))
                return
            self.principal.require("Manage users")
            stmt = sa.select(models.User).order_by(models.User.id)
            username = self.get_query_argument("username", None)
            if username:
                stmt = stmt.where(models.User.username == username)
            rows, total = paginate(session, stmt, self.page())
            acls = self.bool_arg("includeACLs", True)
            self.success({"users": [svc.user_to_dict(u, acls=acls) for u in rows], "totalMatches": total})

    @endpoint("Add a new user", tags="users", acls=("Manage users",), body=USER_POST)
    def post(self):
        b = self.body
        with self.session() as session, session.begin():
            svc.check_grant(session, self.principal, acls=b.get("acls", []), roles=b.get("roles", ["Full user"]))
            svc.check_can_place(session, self.principal, b.get("groupIDsAndAdmin", []))
            user = svc.create_user(
                session, username=b["username"], sitewide_group_name=self.config.admin.sitewide_group,
                first_name=b.get("first_name"), last_name=b.get("last_name"),
                contact_email=b.get("contact_email"), affiliations=b.get("affiliations"),
                roles=b.get("roles", ["Full user"]), acls=b.get("acls", []),
                group_ids_and_admin=[tuple(x) for x in b.get("groupIDsAndAdmin", [])],
            )
            self.success({"id": user.id})

    @endpoint("Update a user (yourself, or anyone with 'Manage users')", tags="users", body=USER_PATCH)
    def patch(self, user_id):
        with self.session() as session, session.begin():
            svc.update_user(session, self.principal, int(user_id), self.body)
        self.success()

    @endpoint("Delete a user", tags="users", acls=("Manage users",))
    def delete(self, user_id):
        with self.session() as session, session.begin():
            svc.delete_user(session, self.principal, svc.get_user(session, self.principal, int(user_id)))
        self.success()


class UserACLHandler(BaseHandler):
    @endpoint("Grant ACLs to a user", tags="users", acls=("Manage users",), body=ACLS_POST)
    def post(self, user_id):
        with self.session() as session, session.begin():
            svc.add_acls(session, self.principal, svc.get_user(session, self.principal, int(user_id)),
                         self.body["aclIds"])
        self.success()

    @endpoint("Revoke an ACL from a user", tags="users", acls=("Manage users",))
    def delete(self, user_id, acl_id):
        with self.session() as session, session.begin():
            svc.remove_acl(session, self.principal, svc.get_user(session, self.principal, int(user_id)), acl_id)
        self.success()


class UserRoleHandler(BaseHandler):
    @endpoint("Grant roles to a user", tags="users", acls=("Manage users",), body=ROLES_POST)
    def post(self, user_id):
        with self.session() as session, session.begin():
            svc.add_roles(session, self.principal, svc.get_user(session, self.principal, int(user_id)),
                          self.body["roleIds"])
        self.success()

    @endpoint("Revoke a role from a user", tags="users", acls=("Manage users",))
    def delete(self, user_id, role_id):
        with self.session() as session, session.begin():
            svc.remove_role(session, self.principal, svc.get_user(session, self.principal, int(user_id)), role_id)
        self.success()


class TokenHandler(BaseHandler):
    @endpoint("Retrieve your tokens, or one", tags="tokens")
    def get(self, token_id=None):
        with self.session() as session:
            if token_id is not None:
                self.success(svc.token_to_dict(svc.get_own_token(session, self.principal, token_id)))
                return
            rows = session.execute(
                sa.select(models.Token).where(models.Token.created_by_id == self.principal.user_id)
                .order_by(models.Token.created_at)
            ).scalars()
            self.success([svc.token_to_dict(t) for t in rows])

    @endpoint("Generate a new API token", tags="tokens", body=TOKEN_POST)
    def post(self):
        with self.session() as session, session.begin():
            user = session.get(models.User, self.principal.user_id)
            token = svc.create_token(session, user, self.body["name"], self.body.get("acls", []))
            self.success({"token_id": token.id})

    @endpoint("Rename a token", tags="tokens", body=TOKEN_PUT)
    def put(self, token_id):
        with self.session() as session, session.begin():
            token = svc.get_own_token(session, self.principal, token_id)
            svc.rename_token(session, token, self.body["name"])
        self.success()

    @endpoint("Delete a token", tags="tokens")
    def delete(self, token_id):
        with self.session() as session, session.begin():
            session.delete(svc.get_own_token(session, self.principal, token_id))
        self.success()
