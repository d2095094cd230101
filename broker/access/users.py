"""Users, their roles/ACLs, API tokens and profiles, as SkyPortal has them.

SkyPortal's rules (skyportal/handlers/api/user.py, acls.py, roles.py, internal/token.py,
internal/profile.py) with ours on top: nobody grants an ACL or role they do not hold, "System admin" and
"Super admin" only a System admin hands out or takes away, the last System admin keeps that right, and a
token never carries more than its owner holds (nor, made through a token, more than that token holds).
"""

from __future__ import annotations

import copy
import hashlib
import re
import unicodedata
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.enums import ACLS, ROLES

from broker.access.auth import Principal
from broker.errors import Conflict, NoSuchRow, NotFound, PermissionDenied, ValidationError
from broker.pagination import Page


# -- normalisation -----------------------------------------------------------------------------

def slugify(text: str) -> str:
    """python-slugify's default (what SkyPortal stores usernames and names single-user groups by): ASCII,
    lower case, quotes dropped, every other run of characters outside [a-z0-9] one '-', none at the ends."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[']+", "", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def normalize_username(raw: str, field: str = "username") -> str:
    """A username as SkyPortal stores it (lower case, slugified); 400 naming ``field`` when nothing is left."""
    name = slugify(raw.strip())
    if not name:
        raise ValidationError(f"Invalid {field}: {raw!r} has no letters or digits", field=field)
    return name


_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
                    r"[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*$")


def normalize_email(raw: str | None, field: str = "contact_email") -> str | None:
    """An e-mail address checked for syntax, in lower case; '' or None clears it."""
    if raw is None or raw == "":
        return None
    email = raw.strip()
    local = email.rsplit("@", 1)[0]
    if len(email) > 254 or not _EMAIL.match(email) or local.startswith(".") or local.endswith(".") or ".." in email:
        raise ValidationError(f"Email does not appear to be valid: {field} must be an address like "
                              "name@example.org", field=field)
    return email.lower()  # SkyPortal's EmailType stores addresses in lower case


def normalize_phone(raw: str | None, field: str = "contact_phone") -> str | None:
    """A phone number in E.164 form (+<country><number>); without '+' it is read as a US number, as
    SkyPortal does. '' or None clears it."""
    if raw is None or raw == "":
        return None
    digits = re.sub(r"[\s().-]", "", raw)
    if not re.fullmatch(r"\+?[0-9]+", digits):
        raise ValidationError(f"Could not parse input as a phone number ({field})", field=field)
    if digits.startswith("+"):
        number = digits
    elif len(digits) == 10:
        number = "+1" + digits
    elif len(digits) == 11 and digits.startswith("1"):
        number = "+" + digits
    else:
        raise ValidationError(f"Phone number given is not valid ({field}): a US number has 10 digits; "
                              "give others with '+' and the country code", field=field)
    if not 8 <= len(number) - 1 <= 15 or number[1] == "0":
        raise ValidationError(f"Phone number given is not valid ({field})", field=field)
    return number


def parse_expiration(raw, field: str = "expirationDate") -> datetime | None:
    """An expiration date as arrow parses it (UTC); null or '' clears it."""
    from broker.objects.objs import parse_date

    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return parse_date(raw.strip(), field)


# -- serialisation -----------------------------------------------------------------------------

def gravatar_url(user: models.User) -> str:
    """SkyPortal's Gravatar URL: from the contact e-mail, else the username."""
    email = user.contact_email if user.contact_email is not None else user.username
    digest = hashlib.md5(email.lower().encode("utf-8")).hexdigest()
    return f"https://secure.gravatar.com/avatar/{digest}?d=blank"


def user_to_dict(user: models.User) -> dict:
    """SkyPortal's user: every column but preferences, with roles, ACLs, permissions and gravatar_url."""
    out = user.to_dict()
    out["roles"] = sorted(r.id for r in user.roles)
    out["acls"] = sorted(a.id for a in user.acls)
    out["permissions"] = sorted(user.permissions)
    out["gravatar_url"] = gravatar_url(user)
    return out


def token_to_dict(token: models.Token) -> dict:
    """SkyPortal's token (id, name, created_by_id, created_at, modified) plus its ``acls`` (our addition)."""
    out = token.to_dict()
    out["acls"] = sorted(a.id for a in token.acls)
    return out


def role_to_dict(role: models.Role) -> dict:
    return {**role.to_dict(), "acls": [a.id for a in role.acls]}


# -- users ---------------------------------------------------------------------------------------

def sitewide_group(session: Session, name: str) -> models.Group:
    group = session.execute(sa.select(models.Group).where(models.Group.name == name)).scalar()
    if group is None:
        raise NotFound(f"The sitewide group '{name}' is missing: run 'skybroker db upgrade'")
    return group


def _acls(session: Session, names, field: str = "acls") -> list[models.ACL]:
    """The ACLs named (each once, a repeat is ignored); 400 naming an unknown one."""
    out = []
    for name in dict.fromkeys(names):
        acl = session.get(models.ACL, name)
        if acl is None:
            raise ValidationError(f"Invalid {field}: unknown ACL '{name}' (must be one of {list(ACLS)})",
                                  field=field)
        out.append(acl)
    return out


def _roles(session: Session, names, field: str = "roles") -> list[models.Role]:
    """The roles named (each once); 400 naming every unknown one."""
    names = list(dict.fromkeys(names))
    found = {r.id: r for r in session.execute(sa.select(models.Role).where(models.Role.id.in_(names))).scalars()}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValidationError(f"Invalid role_id(s): {', '.join(unknown)} ({field} must be among {list(ROLES)})",
                              field=field)
    return [found[n] for n in names]


def get_user(session: Session, user_id: int, message: str | None = None) -> models.User:
    """Any user (SkyPortal's users are readable by every user); 400 when there is none."""
    user = session.get(models.User, user_id)
    if user is None:
        raise NoSuchRow(message or f"Cannot find user with ID {user_id}.")
    return user


def _own_or_admin(session: Session, principal: Principal, user_id: int, message: str) -> models.User:
    """SkyPortal's update/delete access to a user: yourself, or anyone for a System admin."""
    if user_id != principal.user_id and not principal.is_admin:
        raise NoSuchRow(message)
    return get_user(session, user_id, message)


def _check_username_free(session: Session, name: str, user: models.User | None) -> None:
    stmt = sa.select(models.User.id).where(models.User.username == name)
    if user is not None:
        stmt = stmt.where(models.User.id != user.id)
    if session.execute(stmt).first():
        raise Conflict(f"Username '{name}' already exists. Please try another username.", field="username")


def _check_group_name_free(session: Session, name: str, single: models.Group | None) -> None:
    stmt = sa.select(models.Group.id).where(models.Group.name == name)
    if single is not None:
        stmt = stmt.where(models.Group.id != single.id)
    if session.execute(stmt).first():
        raise Conflict(f"A group named '{name}' already exists, so no user can take that name", field="username")


def _single_group_name(username: str) -> str:
    return slugify(username) or username


def create_user(
    session: Session,
    *,
    username: str,
    sitewide_group_name: str,
    first_name: str | None = None,
    last_name: str | None = None,
    contact_email: str | None = None,
    contact_phone: str | None = None,
    oauth_uid: str | None = None,
    affiliations: list[str] | None = None,
    expiration_date: datetime | None = None,
    roles: list[str] = ("Full user",),
    acls: list[str] = (),
    group_ids_and_admin: list[tuple[int, bool]] = (),
) -> models.User:
    """Create a user as SkyPortal does: a single-user group named after them (slugified) with only them
    in it, membership of the sitewide group and of ``group_ids_and_admin``, and access to the streams
    of every group they join. ``username`` is taken as given (the API normalises it first)."""
    if not username.strip():
        raise ValidationError("Invalid field 'username': must not be empty", field="username")
    _check_username_free(session, username, None)
    group_name = _single_group_name(username)
    _check_group_name_free(session, group_name, None)
    if oauth_uid is not None and session.execute(
            sa.select(models.User.id).where(models.User.oauth_uid == oauth_uid)).first():
        raise Conflict(f"A user with oauth_uid '{oauth_uid}' already exists", field="oauth_uid")
    user = models.User(
        username=username, first_name=first_name, last_name=last_name,
        contact_email=contact_email, contact_phone=contact_phone, oauth_uid=oauth_uid,
        affiliations=list(affiliations or []), expiration_date=expiration_date,
        roles=_roles(session, roles), acls=_acls(session, acls),
    )
    session.add(user)
    session.flush()
    single = models.Group(name=group_name, single_user_group=True, private=False)
    session.add(single)
    session.flush()
    memberships = {single.id: False, sitewide_group(session, sitewide_group_name).id: False}
    for gid, admin in group_ids_and_admin:
        group = session.get(models.Group, gid)
        if group is None:
            raise ValidationError(f"Invalid groupIDsAndAdmin: no group with ID {gid}", field="groupIDsAndAdmin")
        if group.single_user_group:
            raise ValidationError(f"Invalid groupIDsAndAdmin: group {gid} is another user's single-user group",
                                  field="groupIDsAndAdmin")
        memberships[gid] = bool(admin) or memberships.get(gid, False)
    for gid, admin in memberships.items():
        session.add(models.GroupUser(group_id=gid, user_id=user.id, admin=admin, can_save=True))
    stream_ids = session.execute(
        sa.select(models.group_streams.c.stream_id)
        .where(models.group_streams.c.group_id.in_(list(memberships))).distinct()
    ).scalars().all()
    for sid in sorted(stream_ids):
        session.add(models.StreamUser(stream_id=sid, user_id=user.id))
    session.flush()
    return user


def create_api_user(session: Session, principal: Principal, body: dict, sitewide_group_name: str) -> models.User:
    """SkyPortal's POST /api/user: the username in lower case and slugified, e-mail and phone checked and
    normalised, roles by default 'Full user' (an empty list too), the user in the sitewide group and in
    ``groupIDsAndAdmin``. Ours on top: only roles and ACLs the caller holds, only into groups the caller
    administers; ``acls`` (granted directly) is our addition."""
    roles = body.get("roles") or ["Full user"]
    acls = body.get("acls", [])
    placed = [tuple(x) for x in body.get("groupIDsAndAdmin", [])]
    username = normalize_username(body["username"].lower())
    check_grant(session, principal, acls=acls, roles=roles)
    check_can_place(session, principal, placed)
    return create_user(
        session, username=username, sitewide_group_name=sitewide_group_name,
        first_name=body.get("first_name"), last_name=body.get("last_name"),
        contact_email=normalize_email(body.get("contact_email")),
        contact_phone=normalize_phone(body.get("contact_phone")),
        oauth_uid=body.get("oauth_uid"), affiliations=body.get("affiliations"),
        roles=roles, acls=acls, group_ids_and_admin=placed,
    )


def check_can_place(session: Session, principal: Principal, group_ids_and_admin) -> None:
    """A new user goes only into groups the caller administers (any group, for a System admin); an
    unknown group and another group answer alike."""
    from broker.access.auth import get_readable_group, require_group_admin

    if principal.is_admin:
        return
    for gid, _ in group_ids_and_admin:
        try:
            require_group_admin(session, principal, get_readable_group(session, principal, gid))
        except (NotFound, PermissionDenied):
            raise ValidationError(f"Invalid groupIDsAndAdmin: no group with ID {gid} that you administer",
                                  field="groupIDsAndAdmin") from None


def single_user_group(session: Session, user: models.User) -> models.Group | None:
    """The user's own group: the single-user group they are in."""
    return session.execute(
        sa.select(models.Group).join(models.GroupUser, models.GroupUser.group_id == models.Group.id)
        .where(models.Group.single_user_group, models.GroupUser.user_id == user.id)
        .order_by(models.Group.id)
    ).scalars().first()


def _rename(session: Session, user: models.User, new: str) -> None:
    """A new username; the user's single-user group follows it (SkyPortal renames it to the slug)."""
    if new == user.username:
        return
    _check_username_free(session, new, user)
    single = single_user_group(session, user)
    if single is not None:
        name = _single_group_name(new)
        _check_group_name_free(session, name, single)
        single.name = name
    user.username = new


USER_SORT = {"username": models.User.username, "createdAt": models.User.created_at}


def list_users(
    session: Session,
    principal: Principal,
    page: Page,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    username: str | None = None,
    email: str | None = None,
    role: str | None = None,
    acl: str | None = None,
    group: str | None = None,
    stream: str | None = None,
    include_expired: bool = False,
    sort_by: str = "username",
    sort_order: str = "asc",
) -> dict:
    """SkyPortal's GET /api/user: every user (any caller may list them), filtered by substrings of names
    and e-mail, a role or ACL held directly, a group or stream by name; expired accounts only with
    ``include_expired``. Each user's ``groups`` are all of theirs for a System admin (with ``streams``),
    else only the caller's own (not single-user) groups. A page past the end is empty."""
    U = models.User
    if sort_by not in USER_SORT:
        raise ValidationError(f"Invalid sortBy value: {sort_by} (must be one of {list(USER_SORT)})", field="sortBy")
    if sort_order not in ("asc", "desc"):
        raise ValidationError(f"Invalid sortOrder value: {sort_order} (must be asc or desc)", field="sortOrder")
    stmt = sa.select(U)
    if not include_expired:
        stmt = stmt.where(sa.or_(U.expiration_date.is_(None), U.expiration_date >= models.utcnow()))
    # SkyPortal compares usernames and e-mails as it stores them: slugified, and in lower case
    for col, value in ((U.first_name, first_name), (U.last_name, last_name),
                       (U.username, None if username is None else slugify(username)),
                       (U.contact_email, None if email is None else email.lower())):
        if value is not None:
            stmt = stmt.where(col.contains(value, autoescape=True))
    if role is not None:
        stmt = stmt.where(U.id.in_(sa.select(models.user_roles.c.user_id).where(models.user_roles.c.role_id == role)))
    if acl is not None:
        stmt = stmt.where(U.id.in_(sa.select(models.user_acls.c.user_id).where(models.user_acls.c.acl_id == acl)))
    if group is not None:
        stmt = stmt.where(U.id.in_(sa.select(models.GroupUser.user_id).join(models.Group)
                                   .where(models.Group.name == group)))
    if stream is not None:
        stmt = stmt.where(U.id.in_(sa.select(models.StreamUser.user_id).join(models.Stream)
                                   .where(models.Stream.name == stream)))
    total = session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    col = USER_SORT[sort_by]
    stmt = stmt.order_by(col.desc() if sort_order == "desc" else col.asc(), U.id)
    offset = (page.number - 1) * page.size
    users = [] if offset >= total else session.execute(stmt.limit(page.size).offset(offset)).scalars().all()
    ids = [u.id for u in users]
    groups: dict[int, list] = {i: [] for i in ids}
    gq = (sa.select(models.GroupUser.user_id, models.Group).join(models.Group)
          .where(models.GroupUser.user_id.in_(ids)).order_by(models.Group.name))
    if not principal.is_admin:
        gq = gq.where(~models.Group.single_user_group, models.Group.id.in_(
            sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)))
    for uid, g in session.execute(gq):
        groups[uid].append(g.to_dict())
    streams: dict[int, list] = {i: [] for i in ids}
    if principal.is_admin:
        from broker.access.streams import stream_to_dict

        for uid, s in session.execute(sa.select(models.StreamUser.user_id, models.Stream).join(models.Stream)
                                      .where(models.StreamUser.user_id.in_(ids)).order_by(models.Stream.id)):
            streams[uid].append(stream_to_dict(s))
    out = []
    for u in users:
        d = user_to_dict(u)
        d["groups"] = groups[u.id]
        if principal.is_admin:
            d["streams"] = streams[u.id]
        out.append(d)
    return {"users": out, "totalMatches": total}


def _set_expiration(session: Session, user: models.User, when: datetime | None) -> None:
    """Expiring the last active System admin would lock everyone out of granting it again."""
    _check_not_last_admin(session, user, still_admin=when is None or when > models.utcnow())
    user.expiration_date = when


# SkyPortal's PATCH /api/user/{id} takes these and leaves them alone (its PATCH_PROTECTED_FIELDS)
PATCH_IGNORED = frozenset({"id", "oauth_uid", "created_at", "modified", "expiration_date"})


def update_user(session: Session, principal: Principal, user_id: int, changes: dict) -> models.User:
    """SkyPortal's PATCH /api/user/{id} (the caller holds 'Manage users'): yourself, or anyone for a System
    admin. ``expirationDate`` is parsed; usernames, e-mails and phones are normalised; the single-user group
    follows a new username; the identity columns and ``expiration_date`` are ignored, as SkyPortal does."""
    user = _own_or_admin(session, principal, user_id, f"Cannot find user with ID {user_id}")
    changes = {k: v for k, v in changes.items() if k not in PATCH_IGNORED}
    if "expirationDate" in changes:
        _set_expiration(session, user, parse_expiration(changes.pop("expirationDate")))
    if "username" in changes:
        _rename(session, user, normalize_username(changes.pop("username")))
    if "contact_email" in changes:
        user.contact_email = normalize_email(changes.pop("contact_email"))
    if "contact_phone" in changes:
        user.contact_phone = normalize_phone(changes.pop("contact_phone"))
    for key, value in changes.items():  # first_name, last_name, bio, affiliations, is_bot, preferences
        setattr(user, key, value)
    session.flush()
    return user


BOT_BIO = "Bot users must have a bio between 10 and 1000 characters long."


def _profile_bio(raw: str) -> str:
    """SkyPortal's bio rules: stripped; if not empty 10..1000 characters, capitalised, ending in . ! or ?"""
    bio = raw.strip()
    if bio:
        if len(bio) < 10:
            raise ValidationError("Bio must be at least 10 characters long.", field="bio")
        if len(bio) > 1000:
            raise ValidationError("Bio must be less than 1000 characters long.", field="bio")
        bio = bio[0].upper() + bio[1:]
        if bio[-1] not in ".!?":
            bio += "."
    return bio


def _recursive_update(d: dict, u: dict) -> dict:
    for k, v in u.items():
        if isinstance(v, dict):
            d[k] = _recursive_update(d[k] if isinstance(d.get(k), dict) else {}, v)
        else:
            d[k] = v
    return d


REPLACED_PREFERENCES = ("classificationShortcuts", "photometryButtons", "spectroscopyButtons")


def merge_preferences(current: dict | None, update: dict | None) -> dict:
    """SkyPortal's preference update: merged into the stored ones, key by key; empty strings one level
    down are dropped; classification shortcuts, photometry and spectroscopy buttons and the GCN-event
    notification properties are replaced whole."""
    update = copy.deepcopy(update or {})
    for k, v in update.items():
        if isinstance(v, dict):
            update[k] = {key: val for key, val in v.items() if val != ""}
    prefs = copy.deepcopy(current) if current else None
    if not prefs:
        return update
    for key in REPLACED_PREFERENCES:
        if key in update:
            prefs[key] = update[key]
    notes = update.get("notifications")
    gcn = notes.get("gcn_events") if isinstance(notes, dict) else None
    if isinstance(gcn, dict) and gcn.get("properties") is not None:
        mine = prefs["notifications"] if isinstance(prefs.get("notifications"), dict) else {}
        prefs["notifications"] = mine
        mine_gcn = mine["gcn_events"] if isinstance(mine.get("gcn_events"), dict) else {}
        mine["gcn_events"] = mine_gcn
        mine_gcn["properties"] = gcn["properties"]
    return _recursive_update(prefs, update)


def update_profile(session: Session, principal: Principal, user_id: int | None, body: dict) -> models.User:
    """SkyPortal's PATCH /api/internal/profile[/{user_id}]: your own profile, or anyone's for a System admin."""
    target = principal.user_id if user_id is None else user_id
    user = _own_or_admin(session, principal, target, f"Cannot find User with ID: {target}")
    if body.get("username") is not None and body["username"] != user.username:
        name = body["username"].strip()
        if len(name) < 5:
            raise ValidationError("Username must be at least five characters long.", field="username")
        _rename(session, user, normalize_username(name))
    for key in ("first_name", "last_name", "affiliations", "is_bot"):
        if body.get(key) is not None:
            setattr(user, key, body[key])
    if body.get("bio") is not None:
        user.bio = _profile_bio(body["bio"])
    if user.is_bot and (user.bio is None or not 10 <= len(user.bio) <= 1000):
        raise ValidationError(BOT_BIO, field="bio")
    if body.get("contact_phone") is not None:
        user.contact_phone = normalize_phone(body["contact_phone"])
    if body.get("contact_email") is not None:
        user.contact_email = normalize_email(body["contact_email"])
    # the stored preferences, locked, so that two updates at once both count
    stored = session.execute(sa.select(models.User.preferences).where(models.User.id == user.id)
                             .with_for_update()).scalar()
    user.preferences = merge_preferences(stored, body.get("preferences"))
    session.flush()
    return user


def profile_to_dict(session: Session, user: models.User) -> dict:
    """SkyPortal's GET /api/internal/profile."""
    from broker.access.streams import stream_to_dict

    out = user_to_dict(user)
    tokens = session.execute(sa.select(models.Token).where(models.Token.created_by_id == user.id)
                             .order_by(models.Token.created_at, models.Token.id)).scalars()
    out["tokens"] = [{"id": t.id, "name": t.name, "acls": sorted(a.id for a in t.acls),
                      "created_at": t.created_at.isoformat()} for t in tokens]
    out["preferences"] = user.preferences or {}
    out["groupAdmissionRequests"] = []  # we have no group admission requests
    out["streams"] = [stream_to_dict(s) for s in session.execute(
        sa.select(models.Stream).join(models.StreamUser).where(models.StreamUser.user_id == user.id)
        .order_by(models.Stream.id)).scalars()]
    out["is_anonymous"] = False
    return out


# -- roles and ACLs --------------------------------------------------------------------------------

ADMIN_ACL, ADMIN_ROLE = "System admin", "Super admin"


def check_grant(session: Session, principal: Principal, *, acls=(), roles=(), verb: str = "grant") -> None:
    """Nobody grants (or revokes) an ACL or role they do not hold; 'System admin' and 'Super admin' only
    a System admin may hand out or take away."""
    if principal.is_admin:
        return
    for name in acls:
        if name == ADMIN_ACL or not principal.has(name):
            raise PermissionDenied(f"Insufficient permissions: you cannot {verb} the ACL '{name}'"
                                   + (" (only a System admin can)" if name == ADMIN_ACL else ", which you do not hold"))
    for role in _roles(session, roles):
        lacking = sorted(a.id for a in role.acls if not principal.has(a.id))
        if role.id == ADMIN_ROLE or lacking:
            raise PermissionDenied(f"Insufficient permissions: you cannot {verb} the role '{role.id}'"
                                   + (" (only a System admin can)" if role.id == ADMIN_ROLE
                                      else f": you do not hold {lacking}"))


def _check_target(principal: Principal, user: models.User) -> None:
    """Only a System admin changes the rights of, or deletes, a System admin."""
    if user.is_system_admin and not principal.is_admin:
        raise PermissionDenied("Insufficient permissions: only a System admin can change a System admin")


_ACTIVE_ADMINS = sa.text("""
    SELECT count(*) FROM users u WHERE (u.expiration_date IS NULL OR u.expiration_date > :now) AND u.id IN (
        SELECT user_id FROM user_acls WHERE acl_id = 'System admin'
        UNION SELECT ur.user_id FROM user_roles ur JOIN role_acls ra ON ra.role_id = ur.role_id
        WHERE ra.acl_id = 'System admin')
""")


def _check_not_last_admin(session: Session, user: models.User, still_admin: bool) -> None:
    """The last active System admin cannot lose that right, expire or be deleted: nobody could grant it
    again."""
    active = user.expiration_date is None or user.expiration_date > models.utcnow()
    if user.is_system_admin and active and not still_admin \
            and session.execute(_ACTIVE_ADMINS, {"now": models.utcnow()}).scalar() <= 1:
        raise ValidationError("The last System admin cannot lose 'System admin', expire or be deleted")


def _permissions_without(user: models.User, *, acl: str | None = None, role: str | None = None) -> set[str]:
    """What the user would hold without one of their own ACLs or roles."""
    return ({a.id for a in user.acls if a.id != acl}
            | {a.id for r in user.roles if r.id != role for a in r.acls})


def add_acls(session: Session, principal: Principal, user_id: int, names: list[str]) -> None:
    """SkyPortal's POST /api/user/{id}/acls (an empty list changes nothing)."""
    user = get_user(session, user_id, "Invalid user_id parameter.")
    acls = _acls(session, names, field="aclIds")
    _check_target(principal, user)
    check_grant(session, principal, acls=names)
    for acl in acls:
        if acl not in user.acls:
            user.acls.append(acl)


def remove_acl(session: Session, principal: Principal, user_id: int, name: str) -> None:
    user = get_user(session, user_id, "Invalid user_id")
    if session.get(models.ACL, name) is None:
        raise NoSuchRow(f"Invalid acl_id: no ACL '{name}'")
    _check_target(principal, user)
    check_grant(session, principal, acls=[name], verb="revoke")
    for acl in user.acls:
        if acl.id == name:
            _check_not_last_admin(session, user, ADMIN_ACL in _permissions_without(user, acl=name))
            user.acls.remove(acl)
            return
    raise NoSuchRow(f"User {user.id} does not have the ACL '{name}'")


def add_roles(session: Session, principal: Principal, user_id: int, names: list[str]) -> None:
    """SkyPortal's POST /api/user/{id}/roles (an empty list changes nothing)."""
    user = get_user(session, user_id, "Invalid user_id parameter.")
    roles = _roles(session, names, field="roleIds")
    _check_target(principal, user)
    check_grant(session, principal, roles=names)
    for role in roles:
        if role not in user.roles:
            user.roles.append(role)


def remove_role(session: Session, principal: Principal, user_id: int, name: str) -> None:
    user = get_user(session, user_id, "Invalid user_id parameter.")
    held = [r for r in user.roles if r.id == name]
    if not held:
        raise NoSuchRow("User does not have specified role.")
    _check_target(principal, user)
    check_grant(session, principal, roles=[name], verb="revoke")
    _check_not_last_admin(session, user, ADMIN_ACL in _permissions_without(user, role=name))
    user.roles.remove(held[0])


def delete_user(session: Session, principal: Principal, user_id: int) -> None:
    """SkyPortal's DELETE /api/user/{id} (the caller holds 'Manage users'): yourself, or anyone for a
    System admin; the user's single-user group goes with them."""
    user = _own_or_admin(session, principal, user_id, f"Cannot find/delete user with ID {user_id}")
    _check_target(principal, user)
    _check_not_last_admin(session, user, still_admin=False)
    single = single_user_group(session, user)
    if single is not None:
        session.delete(single)
    session.delete(user)
    session.flush()


def list_roles(session: Session) -> list[dict]:
    return [role_to_dict(r) for r in session.execute(sa.select(models.Role).order_by(models.Role.id)).scalars()]


def list_acl_ids(session: Session) -> list[str]:
    return list(session.execute(sa.select(models.ACL.id).order_by(models.ACL.id)).scalars())


# -- tokens ----------------------------------------------------------------------------------------

def create_token(
    session: Session, user: models.User, name: str, acls: list[str], *, check_owner: bool = True
) -> models.Token:
    """A new token for ``user`` (for the CLI and tests); its ACLs must be ones the user holds."""
    if not name.strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    wanted = _acls(session, acls)
    if check_owner and not user.is_system_admin:
        lacking = [a.id for a in wanted if a.id not in user.permissions]
        if lacking:
            raise PermissionDenied(
                f"Insufficient permissions: you do not hold the ACL(s) {lacking} you asked the token to have"
            )
    _check_token_name(session, user.id, name, None)
    token = models.Token(name=name, created_by_id=user.id, acls=wanted)
    session.add(token)
    session.flush()
    return token


def _check_token_name(session: Session, owner_id: int, name: str, token_id: str | None) -> None:
    stmt = sa.select(models.Token.id).where(models.Token.created_by_id == owner_id, models.Token.name == name)
    if token_id is not None:
        stmt = stmt.where(models.Token.id != token_id)
    if session.execute(stmt).first():
        raise Conflict(f"Duplicate token name: there already is a token named '{name}'", field="name")


def readable_tokens(principal: Principal) -> sa.Select:
    """Your tokens; every token, for a System admin (SkyPortal's Token access)."""
    stmt = sa.select(models.Token)
    if not principal.is_admin:
        stmt = stmt.where(models.Token.created_by_id == principal.user_id)
    return stmt


def get_token(session: Session, principal: Principal, token_id: str, message: str | None = None) -> models.Token:
    token = session.execute(readable_tokens(principal).where(models.Token.id == token_id)).scalar()
    if token is None:
        raise NoSuchRow(message or f"Could not load token with ID {token_id}")
    return token


def list_tokens(session: Session, principal: Principal, user_id: int | None = None) -> list[models.Token]:
    stmt = readable_tokens(principal)
    if user_id is not None:
        stmt = stmt.where(models.Token.created_by_id == user_id)
    return list(session.execute(stmt.order_by(models.Token.created_at, models.Token.id)).scalars())


def _token_user(session: Session, principal: Principal, user_id: int | None) -> models.User:
    """The user a token request names (``user_id``), else the caller; only a System admin names another."""
    if user_id is None or user_id == principal.user_id:
        return session.get(models.User, principal.user_id)
    if not principal.is_admin:
        raise ValidationError("Invalid user_id: only a System admin may name another user", field="user_id")
    user = session.get(models.User, user_id)
    if user is None:
        raise ValidationError(f"Invalid user_id: no user with ID {user_id}", field="user_id")
    return user


def _token_acls(session: Session, principal: Principal, owner: models.User, against: models.User,
                names: list[str]) -> list[models.ACL]:
    """The ACLs a token may get: ones ``against`` holds (SkyPortal's rule) and, ours, ones its owner holds
    and, for a caller other than a System admin, ones the calling token carries."""
    wanted = _acls(session, names)
    lacking = [a.id for a in wanted
               if a.id not in against.permissions
               or (not owner.is_system_admin and a.id not in owner.permissions)
               or not principal.has(a.id)]
    if lacking:
        raise ValidationError("User has attempted to grant token ACLs they do not have access to: "
                              f"{sorted(lacking)}", field="acls")
    return wanted


def create_api_token(session: Session, principal: Principal, *, name: str, acls: list[str],
                     user_id: int | None = None, one_per_user: bool = True) -> models.Token:
    """SkyPortal's POST /api/internal/tokens: a token for yourself or, for a System admin, for ``user_id``;
    with ``one_per_user`` (SkyPortal's limit) a caller other than a System admin gets none while the user
    has one."""
    owner = _token_user(session, principal, user_id)
    wanted = _token_acls(session, principal, owner, owner, acls)
    if one_per_user and not principal.is_admin and session.execute(
            sa.select(models.Token.id).where(models.Token.created_by_id == owner.id)).first():
        raise ValidationError("You have reached the maximum number of tokens allowed for your account type.")
    if not name.strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    _check_token_name(session, owner.id, name, None)
    token = models.Token(name=name, created_by_id=owner.id, acls=wanted)
    session.add(token)
    session.flush()
    return token


def update_token(session: Session, principal: Principal, token_id: str, body: dict) -> models.Token:
    """SkyPortal's PUT /api/internal/tokens/{id}: a new ``name`` and/or ``acls`` (checked against
    ``user_id``'s ACLs, by default the caller's; and against its owner's)."""
    token = get_token(session, principal, token_id, "Either the specified token does not exist, or the user "
                                                   "does not have the necessary permissions to update it.")
    against = _token_user(session, principal, body.get("user_id"))
    if body.get("name") is not None:
        if not body["name"].strip():
            raise ValidationError("Invalid field 'name': must not be empty", field="name")
        _check_token_name(session, token.created_by_id, body["name"], token.id)
        token.name = body["name"]
    if body.get("acls") is not None:
        if not body["acls"]:
            raise ValidationError(f"No new ACLs to add to token {token_id}", field="acls")
        token.acls = _token_acls(session, principal, token.created_by, against, body["acls"])
    session.flush()
    return token


def delete_token(session: Session, principal: Principal, token_id: str) -> None:
    token = get_token(session, principal, token_id, "Either the specified token does not exist, or the user "
                                                   "does not have the necessary permissions to delete it.")
    session.delete(token)
    session.flush()
