"""GCN summaries, as SkyPortal's GcnSummaryHandler and add_gcn_summary (handlers/api/gcn.py) write them.

A summary is a Markdown text: a header (title, number, subject, date, the author and the users it names,
on behalf of a group), then the sources of that group inside the event's localization (first and last
detection within [startDate, endDate], at least numberDetections detections) as a GitHub table, the
rejected ones apart, and each source's photometry (within the window when photometryInWindow).

Deliberate differences from SkyPortal: the text is written in the request (SkyPortal answers at once and
writes it in the background, "pending" until then), so a missing localization or a bad date is a 400 here
rather than a summary reading "Failed to generate summary."; galaxies and observations (showGalaxies,
showObservations) do not exist here and are refused with a 400 naming the field.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from broker.access.auth import Principal
from broker.errors import NotFound, ValidationError
from broker.pagination import Page
from broker.sky.gcn import _utc, find_event, find_localization

PAGE_SIZE = 1000  # sources fetched per query (SkyPortal's MAX_SOURCES_PER_PAGE is 100)
INT32 = 2**31 - 1


# -- GitHub tables (tabulate's "github" format, as SkyPortal prints them) ---------------------------

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def github_table(columns: dict[str, list], floatfmt: str | dict[str, str] = ".4f") -> str:
    """``columns`` (header -> values) as a GitHub Markdown table: numbers right-aligned with ``floatfmt``,
    text left-aligned, None as an empty cell."""
    heads = list(columns)
    cells, right = [], []
    for h in heads:
        values = columns[h]
        numeric = any(_is_number(v) for v in values) and all(_is_number(v) or v is None or v == ""
                                                              for v in values)
        fmt = floatfmt.get(h, ".4f") if isinstance(floatfmt, dict) else floatfmt
        col = []
        for v in values:
            if v is None:
                col.append("")
            elif isinstance(v, float) and numeric:
                col.append(format(v, fmt) if math.isfinite(v) else str(v))
            else:
                col.append(str(v))
        cells.append(col)
        right.append(numeric)
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(heads, cells)]

    def line(row):
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)) + " |"

    rows = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    n = len(next(iter(columns.values()), []))
    rows += [line([col[i] for col in cells]) for i in range(n)]
    return "\n".join(rows)


# -- body ---------------------------------------------------------------------------------------------

def _int(value, name: str, message: str) -> int:
    if isinstance(value, bool):
        raise ValidationError(message, field=name)
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValidationError(message, field=name) from None
    if isinstance(value, float) and value != out:
        raise ValidationError(message, field=name)
    if not -INT32 <= out <= INT32:
        raise ValidationError(message, field=name)
    return out


def _user_ids(raw) -> list[int]:
    if raw is None:
        return []
    if isinstance(raw, str):  # SkyPortal documents a comma-separated string
        raw = [x.strip() for x in raw.split(",") if x.strip()]
    elif not isinstance(raw, list):
        raw = [raw]
    return [_int(x, "userIds", "User IDs (userIds) must be integers") for x in raw]


def parse_body(b: dict) -> dict:
    """The POST body, checked as SkyPortal's handler checks it (same defaults, same messages)."""
    for name in ("showGalaxies", "showObservations"):
        if b.get(name):
            raise ValidationError(f"Invalid {name}: galaxies and executed observations are not served by this "
                                  "broker; only sources (showSources) can be summarised", field=name)
    if b.get("title") is None:
        raise ValidationError("Title is required", field="title")
    if b.get("groupId") is None:
        raise ValidationError("Group ID (groupId) is required", field="groupId")
    stats = b.get("statsMethod", "python")
    if stats not in ("db", "python"):
        raise ValidationError("statsMethod for observations querying must be 'db' or 'python'", field="statsMethod")
    out = {
        "title": b["title"],
        "group_id": _int(b["groupId"], "groupId", "Group ID (groupId) must be an integer"),
        "localization_name": b.get("localizationName"),
        "show_sources": bool(b.get("showSources", False)),
        "no_text": bool(b.get("noText", False)),
        "photometry_in_window": bool(b.get("photometryInWindow", False)),
        "number": b.get("number"), "subject": b.get("subject"), "user_ids": [], "acknowledgements": None,
    }
    try:
        out["localization_cumprob"] = float(b.get("localizationCumprob", 0.95))
    except (TypeError, ValueError):
        raise ValidationError("Invalid localizationCumprob: must be a number", field="localizationCumprob") from None
    if not 0 < out["localization_cumprob"] <= 1:
        raise ValidationError("Invalid localizationCumprob: must be in (0, 1]", field="localizationCumprob")
    for name, key in (("numberDetections", "number_detections"), ("numberObservations", "number_observations")):
        raw = b.get(name)
        value = 2 if raw is None and name == "numberDetections" else 1 if raw is None else \
            _int(raw, name, f"{name} must be an integer")
        if value < 1:
            raise ValidationError(f"Error parsing query params: {name} must be greater than or equal to 1.",
                                  field=name)
        out[key] = value
    for name, key in (("startDate", "start_date"), ("endDate", "end_date")):
        if b.get(name) is None:  # SkyPortal documents both as required (its summary fails without them)
            raise ValidationError(f"{name} is required", field=name)
        out[key] = _utc(b[name], name)
    if out["start_date"] > out["end_date"]:
        raise ValidationError("Invalid startDate: after endDate", field="startDate")
    ids = b.get("instrumentIds")  # only for observations, which are not served: checked as SkyPortal does
    if ids is not None:
        ids = ids if isinstance(ids, list) else [ids]
        [_int(i, "instrumentIds", "Instrument IDs (instrumentIds) must be a list of integers") for i in ids]
    if not out["no_text"]:
        if out["number"] is not None:
            out["number"] = _int(out["number"], "number", "Number must be an integer")
        if not out["subject"]:
            raise ValidationError("Subject is required", field="subject")
        out["user_ids"] = _user_ids(b.get("userIds"))
        ack = b.get("acknowledgements")
        if ack is not None:
            ack = ack.strip('"')
            out["acknowledgements"] = ack or None
    return out


# -- access -------------------------------------------------------------------------------------------

def _member_group(session: Session, principal: Principal, group_id: int) -> models.Group:
    group = session.get(models.Group, group_id)
    if group is not None and not principal.is_admin:
        member = session.execute(sa.select(models.GroupUser).where(models.GroupUser.group_id == group_id,
                                                                   models.GroupUser.user_id == principal.user_id))
        if member.first() is None:
            group = None
    if group is None:
        raise ValidationError(f"Group not found with ID {group_id}", field="groupId")
    return group


def _summary_id(raw: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"Invalid summary_id: {raw}", field="summary_id") from None
    if not 0 < value <= INT32:
        raise NotFound("Summary not found")
    return value


def find_summary(session: Session, principal: Principal, dateobs: str, summary_id: str,
                 mode: str = "read") -> models.GcnSummary:
    """A summary of a readable event: to read, the caller is a member of its group; to change or delete it,
    the caller wrote it or holds Manage GCNs (SkyPortal's rules). Otherwise 404, as SkyPortal."""
    S = models.GcnSummary
    sid = _summary_id(summary_id)
    event = find_event(session, dateobs, principal)
    summary = session.execute(sa.select(S).where(S.id == sid, S.dateobs == event.dateobs)).scalar()
    if summary is not None and not principal.is_admin:
        if mode == "read":
            member = session.execute(sa.select(models.GroupUser).where(
                models.GroupUser.group_id == summary.group_id, models.GroupUser.user_id == principal.user_id))
            allowed = member.first() is not None
        else:
            allowed = summary.sent_by_id == principal.user_id or principal.has("Manage GCNs")
        if not allowed:
            summary = None
    if summary is None:
        raise NotFound("Summary not found")
    return summary


# -- writing --------------------------------------------------------------------------------------------

def _header(session: Session, principal: Principal, p: dict, group: models.Group) -> list[str]:
    user = session.get(models.User, principal.user_id)
    out = [f"## TITLE: {p['title'].upper()}\n"]
    if p["number"] is not None:
        out.append(f"#### NUMBER: {p['number']}\n")
    subject = p["subject"]
    out.append(f"#### SUBJECT: {subject[0].upper() + subject[1:]}\n")
    out.append(f"#### DATE: {datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=' ', timespec='milliseconds')}\n")
    affiliations = ", ".join(user.affiliations) if user.affiliations else "..."
    line = f"#### FROM: {user.first_name} {user.last_name} at {affiliations}"
    if user.contact_email is not None:
        line += f" <{user.contact_email}>\n"
    out.append(line)
    ids = list(dict.fromkeys([principal.user_id, *p["user_ids"]]))
    users = {u.id: u for u in session.execute(sa.select(models.User).where(models.User.id.in_(ids))).scalars()}
    unknown = [i for i in ids if i not in users]
    if unknown:
        raise ValidationError(f"Invalid userIds: no user with ID {unknown[0]}", field="userIds")
    names = []
    for i in ids:
        u = users[i]
        if u.first_name and u.last_name:
            aff = ", ".join(u.affiliations) if u.affiliations else "..."
            names.append(f"{u.first_name[0].upper()}. {u.last_name} ({aff})")
    text = "\n".join(", ".join(names[i:i + 5]) for i in range(0, len(names), 5))
    out.append(f"\n{text} report{'s' if len(ids) == 1 else ''} on behalf of the {group.name} group:\n")
    return out


def _sources(session: Session, principal: Principal, p: dict, dateobs: datetime, group: models.Group) -> list[dict]:
    from broker.objects.objs import SourceQuery, list_sources

    q = SourceQuery(group_ids=[group.id], localization_dateobs=dateobs.isoformat(),
                    localization_name=p["localization_name"], localization_cumprob=p["localization_cumprob"],
                    first_detection_after=p["start_date"], last_detection_before=p["end_date"],
                    number_detections=p["number_detections"])
    out, number = [], 1
    while True:
        page = list_sources(session, principal, q, Page(number, PAGE_SIZE))["sources"]
        out.extend(page)
        if len(page) < PAGE_SIZE:
            return out
        number += 1


def _mjd(t: datetime) -> float:
    return (t - datetime(1858, 11, 17)).total_seconds() / 86400.0


def _sources_text(session: Session, principal: Principal, p: dict, dateobs: datetime,
                  group: models.Group) -> list[str]:
    from broker.objects.photometry import serialize_all, visible_clause

    sources = _sources(session, principal, p, dateobs, group)
    if not sources:
        return []
    G = models.GcnEventObj
    status = {r.obj_id: r for r in session.execute(
        sa.select(G).where(G.dateobs == dateobs, G.obj_id.in_([s["id"] for s in sources]))).scalars()}
    rows = []
    for s in sources:
        z = s.get("redshift")
        redshift = z if _is_number(z) and math.isfinite(z) else ""
        if s.get("redshift_error") is not None and redshift != "":
            redshift = f"{redshift}±{s['redshift_error']}"
        row = status.get(s["id"])
        rows.append({"id": s["id"], "tns": str(s["tns_name"]).replace(" ", "") if isinstance(s.get("tns_name"), str)
                     else "", "ra": None if s.get("ra") is None else round(s["ra"], 5),
                     "dec": None if s.get("dec") is None else round(s["dec"], 5), "redshift": redshift,
                     "comment": None if row is None else row.explanation,
                     "rejected": row is not None and row.status == "rejected"})
    kept = [r for r in rows if not r["rejected"]]
    rejected = [r for r in rows if r["rejected"]]
    text = []
    if not p["no_text"]:
        n, nr = len(sources), len(rejected)
        text.append(f"\nFound **{n} {'sources' if n > 1 else 'source'}** in the event's localization, {nr} of which "
                    f"{'have' if nr > 1 else 'has'} been rejected after characterization:\n")
    for title, part in (("Sources:", kept), ("Rejected sources:", rejected)):
        if part:
            if not p["no_text"]:
                text.append(title)
            cols = {k: [r[k] for r in part] for k in ("id", "tns", "ra", "dec", "redshift", "comment")}
            text.append(github_table(cols, ".4f") + "\n")
    P = models.Photometry
    for s in sources:
        stmt = sa.select(P).where(P.obj_id == s["id"])
        if not principal.is_admin:
            stmt = stmt.where(visible_clause(principal))
        if p["photometry_in_window"]:
            stmt = stmt.where(P.mjd >= _mjd(p["start_date"]), P.mjd <= _mjd(p["end_date"]))
        points = session.execute(stmt.order_by(P.mjd, P.id)).scalars().all()
        if not points:
            continue
        if not p["no_text"]:
            text.append(f"\nPhotometry of **{s['id']}**:\n")
        cols: dict[str, list] = {"mjd": [], "mag±err (ab)": [], "filter": [], "origin": [], "instrument": []}
        for d in serialize_all(session, principal, points, "mag", "ab"):
            cols["mjd"].append(d.get("mjd"))
            if d.get("mag") is not None and d.get("magerr") is not None:
                cols["mag±err (ab)"].append(f"{round(d['mag'], 2)}±{round(d['magerr'], 2)}")
            elif d.get("limiting_mag") is not None:
                cols["mag±err (ab)"].append(f"< {round(d['limiting_mag'], 1)}")
            else:
                cols["mag±err (ab)"].append("--")
            cols["filter"].append(d.get("filter") or "--")
            origin = d.get("origin")
            cols["origin"].append(origin if origin is not None and str(origin).strip() else "")
            cols["instrument"].append(d.get("instrument_name") or "--")
        if p["no_text"]:
            cols = {"obj_id": [pt.obj_id for pt in points], **cols}
        text.append(github_table(cols, ".5f") + "\n")
    return text


def create_summary(session: Session, principal: Principal, dateobs: str, body: dict) -> int:
    """POST: check the body, write the summary's text and store it; its id."""
    p = parse_body(body)
    event = find_event(session, dateobs, principal)  # 404 "GCN event not found", as SkyPortal's 404
    group = _member_group(session, principal, p["group_id"])
    S = models.GcnSummary
    same = session.execute(sa.select(S.id).where(S.dateobs == event.dateobs, S.title == p["title"],
                                                 S.group_id == group.id, S.sent_by_id == principal.user_id))
    if same.first() is not None:
        raise ValidationError("A summary with the same title, group, and event already exists for this user",
                              field="title")
    if p["show_sources"]:  # the sources are those in this localization (the latest when unnamed)
        try:
            find_localization(session, event.dateobs.isoformat(), p["localization_name"], principal)
        except NotFound as e:
            raise ValidationError(f"Invalid localizationName: {e.message}", field="localizationName") from None
    contents = [] if p["no_text"] else _header(session, principal, p, group)
    if p["show_sources"]:
        contents.extend(_sources_text(session, principal, p, event.dateobs, group))
    if not p["no_text"] and p["acknowledgements"]:
        contents.append("\n*" + p["acknowledgements"] + "*")
    summary = S(dateobs=event.dateobs, title=p["title"], text="\n".join(contents), sent_by_id=principal.user_id,
                group_id=group.id)
    session.add(summary)
    session.flush()
    return summary.id


def update_summary(session: Session, principal: Principal, dateobs: str, summary_id: str, text: str) -> dict:
    """PATCH {body}: replace the text (surrounding double quotes stripped, as SkyPortal)."""
    summary = find_summary(session, principal, dateobs, summary_id, mode="update")
    summary.text = text.strip('"')
    session.flush()
    return summary.to_dict()


def delete_summary(session: Session, principal: Principal, dateobs: str, summary_id: str) -> None:
    session.delete(find_summary(session, principal, dateobs, summary_id, mode="delete"))


def event_summaries(session: Session, principal: Principal, dateobs: datetime) -> list[dict]:
    """The ``summaries`` of GET /api/gcn_event/{dateobs}: those of the caller's groups (all for a System
    admin), newest first, each with its ``sent_by`` (id, username, names) and ``group`` (id, name)."""
    from broker.objects.objs import _user_brief

    S = models.GcnSummary
    stmt = sa.select(S).where(S.dateobs == dateobs)
    if not principal.is_admin:
        stmt = stmt.where(S.group_id.in_(sa.select(models.GroupUser.group_id)
                                         .where(models.GroupUser.user_id == principal.user_id)))
    out = []
    for s in session.execute(stmt.order_by(S.created_at.desc(), S.id.desc())).scalars():
        group = session.get(models.Group, s.group_id)
        out.append({**s.to_dict(), "sent_by": _user_brief(session.get(models.User, s.sent_by_id)),
                    "group": {"id": group.id, "name": group.name}})
    return out
