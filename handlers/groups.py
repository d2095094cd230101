"""/api/groups (+ /public), their members (/users, /usersFromGroups) and streams."""

from broker.access import groups as svc
from broker.errors import ValidationError
from broker.validation import array, boolean, integer, nullable, obj, string

from .base import BaseHandler, Param, endpoint

GROUP_FIELDS = {
    "name": string("Name of the group (unique)", minLength=1),
    "nickname": nullable(string("Short unique name")),
    "description": nullable(string("Longer description")),
    "private": boolean("Hide the group from users who are not members"),
    "auto_accept_requests": boolean("Accept requests to join the group without an admin"),
}
GROUP_POST = obj({**GROUP_FIELDS, "group_admins": array(integer(), "IDs of users to make admins (the creator "
                                                         "always is one)")},
                 required=("name",))
GROUP_PUT = obj(GROUP_FIELDS, minProperties=1)
MEMBER_POST = obj({"userID": integer("ID of the user to add"),
                   "admin": boolean("Make the user a group admin (default false)"),
                   "canSave": boolean("Allow the user to save sources to the group (default true)"),
                   "canSharePhotometry": boolean("Allow the user to share others' photometry with other groups "
                                                 "(default false)")},
                  required=("userID",))
MEMBER_PATCH = obj({"userID": integer("ID of the member"),
                    "admin": boolean("Group admin"),
                    "canSave": boolean("Can save sources"),
                    "canSharePhotometry": boolean("Can share others' photometry")},
                   required=("userID",))
FROM_GROUPS_POST = obj({"fromGroupIDs": array(integer(), "Groups whose members join this group")},
                       required=("fromGroupIDs",))
STREAM_POST = obj({"stream_id": integer("ID of the stream")}, required=("stream_id",))
MEMBER_FLAGS = (("admin", "admin"), ("canSave", "can_save"), ("canSharePhotometry", "can_share_photometry"))


class GroupHandler(BaseHandler):
    @endpoint("Retrieve all groups, or one group with its users, streams and filters", tags="groups",
              params=(Param("name", {"type": "string"}, "Fetch by name (exact match)"),
                      Param("includeSingleUserGroups", {"type": "boolean"},
                            "Include single-user groups in all_groups (default false)"),
                      Param("includeGroupUsers", {"type": "boolean"},
                            "One group: include its users (default true)")))
    def get(self, group_id=None):
        with self.session() as session:
            if group_id is not None:
                self.success(svc.group_detail(session, self.principal, int(group_id),
                                              self.bool_arg("includeGroupUsers", True)))
            elif (name := self.get_query_argument("name", None)) is not None:
                self.success(svc.groups_named(session, self.principal, name))
            else:
                self.success(svc.list_groups(session, self.principal, self.bool_arg("includeSingleUserGroups")))

    @endpoint("Create a new group", tags="groups", acls=("Upload data",), body=GROUP_POST)
    def post(self, group_id=None):
        with self.session() as session, session.begin():
            group = svc.create_group(session, self.principal, self.body)
            self.success({"id": group.id})

    @endpoint("Update a group", tags="groups", acls=("Upload data",), body=GROUP_PUT)
    def put(self, group_id=None):
        with self.session() as session, session.begin():
            svc.update_group(session, self.principal, int(group_id), self.body, self.config.admin.sitewide_group)
        self.success()

    @endpoint("Delete a group", tags="groups", acls=("Upload data",))
    def delete(self, group_id=None):
        with self.session() as session, session.begin():
            svc.delete_group(session, self.principal, int(group_id), self.config.admin.sitewide_group)
        self.success()


class PublicGroupHandler(BaseHandler):
    @endpoint("Retrieve the public (sitewide) group", tags="groups")
    def get(self):
        with self.session() as session:
            self.success(svc.public_group(session, self.config.admin.sitewide_group))


class GroupUserHandler(BaseHandler):
    @endpoint("Add a user to a group", tags="groups", acls=("Upload data",), body=MEMBER_POST)
    def post(self, group_id, user_id=None):
        b = self.body
        with self.session() as session, session.begin():
            gu = svc.add_member(session, self.principal, int(group_id), b["userID"], b.get("admin", False),
                                b.get("canSave", True), b.get("canSharePhotometry", False))
            self.success({"group_id": gu.group_id, "user_id": gu.user_id, "admin": gu.admin,
                          "can_save": gu.can_save, "can_share_photometry": gu.can_share_photometry})

    @endpoint("Update a group member's admin, canSave or canSharePhotometry status", tags="groups",
              acls=("Upload data",), body=MEMBER_PATCH)
    def patch(self, group_id, user_id=None):
        changes = {col: self.body[key] for key, col in MEMBER_FLAGS if key in self.body}
        if not changes:
            raise ValidationError("Missing required parameter: at least one of `admin`, `canSave` or "
                                  "`canSharePhotometry`")
        with self.session() as session, session.begin():
            svc.update_member(session, self.principal, int(group_id), self.body["userID"], changes)
        self.success()

    @endpoint("Remove a user from a group (anyone may leave one)", tags="groups")
    def delete(self, group_id, user_id=None):
        with self.session() as session, session.begin():
            svc.remove_member(session, self.principal, int(group_id), int(user_id))
        self.success()


class GroupUsersFromOtherGroupsHandler(BaseHandler):
    @endpoint("Add the users of other groups to a group", tags="groups", acls=("Upload data",),
              body=FROM_GROUPS_POST)
    def post(self, group_id):
        with self.session() as session, session.begin():
            svc.add_members_from_groups(session, self.principal, int(group_id), self.body["fromGroupIDs"])
        self.success()


class GroupStreamHandler(BaseHandler):
    @endpoint("Give a group access to a stream", tags="groups", acls=("Upload data",), body=STREAM_POST)
    def post(self, group_id, stream_id=None):
        with self.session() as session, session.begin():
            svc.add_stream(session, self.principal, int(group_id), self.body["stream_id"])
        self.success({"group_id": int(group_id), "stream_id": self.body["stream_id"]})

    @endpoint("Remove a group's access to a stream", tags="groups", acls=("Upload data",))
    def delete(self, group_id, stream_id=None):
        with self.session() as session, session.begin():
            svc.remove_stream(session, self.principal, int(group_id), int(stream_id))
        self.success()
