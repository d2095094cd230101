"""/api/groups, their members (/users) and streams."""

from broker.access import groups as svc
from broker.access.auth import get_readable_group
from broker.validation import array, boolean, integer, nullable, obj, string

from .base import BaseHandler, Param, endpoint

GROUP_FIELDS = {
    "name": string("Name of the group (unique)", minLength=1),
    "nickname": nullable(string("Short unique name")),
    "description": nullable(string("Longer description")),
    "private": boolean("Hide the group from users who are not members"),
}
GROUP_POST = obj({**GROUP_FIELDS, "group_admins": array(integer(), "IDs of users to make admins")},
                 required=("name",))
GROUP_PUT = obj(GROUP_FIELDS, minProperties=1)
MEMBER_POST = obj({"userID": integer("ID of the user to add"),
                   "admin": boolean("Make the user a group admin"),
                   "canSave": boolean("Allow the user to save sources to the group")},
                  required=("userID",))
MEMBER_PATCH = obj({"userID": integer("ID of the member"),
                    "admin": boolean("Group admin"),
                    "canSave": boolean("Can save sources")},
                   required=("userID",), minProperties=2)
STREAM_POST = obj({"stream_id": integer("ID of the stream")}, required=("stream_id",))


class GroupHandler(BaseHandler):
    @endpoint("Retrieve all groups, or one group with its members", tags="groups",
              params=(Param("includeSingleUserGroups", {"type": "boolean"},
                            "Include single-user groups in the lists"),))
    def get(self, group_id=None):
        with self.session() as session:
            if group_id is None:
                self.success(svc.list_groups(session, self.principal,
                                             self.bool_arg("includeSingleUserGroups")))
            else:
                group = get_readable_group(session, self.principal, int(group_id))
                self.success(svc.group_to_dict(group, members=True))

    @endpoint("Create a new group", tags="groups", body=GROUP_POST)
    def post(self, group_id=None):
        with self.session() as session, session.begin():
            group = svc.create_group(session, self.principal, self.body)
            self.success({"id": group.id})

    @endpoint("Update a group", tags="groups", body=GROUP_PUT)
    def put(self, group_id=None):
        with self.session() as session, session.begin():
            svc.update_group(session, self.principal, int(group_id), self.body, self.config.admin.sitewide_group)
        self.success()

    @endpoint("Delete a group", tags="groups")
    def delete(self, group_id=None):
        with self.session() as session, session.begin():
            svc.delete_group(session, self.principal, int(group_id), self.config.admin.sitewide_group)
        self.success()


class GroupUserHandler(BaseHandler):
    @endpoint("Add a user to a group", tags="groups", body=MEMBER_POST)
    def post(self, group_id, user_id=None):
        b = self.body
        with self.session() as session, session.begin():
            gu = svc.add_member(session, self.principal, int(group_id), b["userID"],
                                b.get("admin", False), b.get("canSave", True))
            self.success({"group_id": gu.group_id, "user_id": gu.user_id, "admin": gu.admin,
                          "can_save": gu.can_save})

    @endpoint("Update a group member's admin or canSave status", tags="groups", body=MEMBER_PATCH)
    def patch(self, group_id, user_id=None):
        b = self.body
        changes = {}
        if "admin" in b:
            changes["admin"] = b["admin"]
        if "canSave" in b:
            changes["can_save"] = b["canSave"]
        with self.session() as session, session.begin():
            svc.update_member(session, self.principal, int(group_id), b["userID"], changes)
        self.success()

    @endpoint("Remove a user from a group", tags="groups")
    def delete(self, group_id, user_id=None):
        with self.session() as session, session.begin():
            svc.remove_member(session, self.principal, int(group_id), int(user_id))
        self.success()


class GroupStreamHandler(BaseHandler):
    @endpoint("Give a group access to a stream", tags="groups", body=STREAM_POST)
    def post(self, group_id, stream_id=None):
        with self.session() as session, session.begin():
            svc.add_stream(session, self.principal, int(group_id), self.body["stream_id"])
        self.success({"group_id": int(group_id), "stream_id": self.body["stream_id"]})

    @endpoint("Remove a group's access to a stream", tags="groups")
    def delete(self, group_id, stream_id=None):
        with self.session() as session, session.begin():
            svc.remove_stream(session, self.principal, int(group_id), int(stream_id))
        self.success()

