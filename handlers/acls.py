"""/api/acls and /api/roles: the ACL IDs and the roles with their ACLs (any user may read them)."""

from __future__ import annotations

from broker.access import users as svc

from .base import BaseHandler, endpoint


class ACLHandler(BaseHandler):
    @endpoint("Retrieve every ACL ID", tags="acls")
    def get(self):
        with self.session() as session:
            self.success(svc.list_acl_ids(session))


class RoleHandler(BaseHandler):
    @endpoint("Retrieve every role, with its ACL IDs", tags="roles")
    def get(self):
        with self.session() as session:
            self.success(svc.list_roles(session))
