"""Default follow-up rules: fire at most once per (rule, object) when an object passes one of the rule's
filters or is saved to one of its groups (and, if the rule says so, is classified as one of its classes and/or
lies inside the ``cumprob`` credible region of an event at most ``max_age_days`` old).

Firing only writes rows — the (rule, object) mark and a ``pending`` follow-up request — in the caller's
transaction, then NOTIFYs the follow-up worker, which submits it as soon as that transaction commits.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

NOTIFY_CHANNEL = "skybroker_followup"

_FIRE = sa.text("""
    WITH due AS (  -- a rule with classifications fires only for objects classified so
        SELECT v.r, v.o
        FROM unnest(CAST(:r AS int[]), CAST(:o AS text[])) AS v(r, o)
        JOIN default_followup_requests d ON d.id = v.r
        WHERE (coalesce(jsonb_array_length(d.source_filter -> 'classifications'), 0) = 0
               OR EXISTS (SELECT 1 FROM classifications c
                          WHERE c.obj_id = v.o AND c.classification IN (
                              SELECT jsonb_array_elements_text(d.source_filter -> 'classifications'))
                            -- a classification the rule's requester can see (shared with one of their groups)
                            AND EXISTS (SELECT 1 FROM classification_groups cg
                                        JOIN group_users gu ON gu.group_id = cg.group_id
                                        WHERE cg.classification_id = c.id AND gu.user_id = d.requester_id)))
          -- and a rule with a localization condition only inside the X% region of a recent event
          AND (d.source_filter -> 'localization' IS NULL
               OR EXISTS (SELECT 1 FROM obj_localizations ol
                          JOIN localizations l ON l.id = ol.localization_id
                          JOIN gcnevents e ON e.dateobs = l.dateobs
                          WHERE ol.obj_id = v.o AND NOT e.retracted
                            AND ol.credible_level <= (d.source_filter -> 'localization' ->> 'cumprob')::float8
                            AND e.dateobs >= CAST(:now AS timestamp) - make_interval(
                                secs => (d.source_filter -> 'localization' ->> 'max_age_days')::float8 * 86400)))
    ), fired AS (
        INSERT INTO default_followup_fired (default_followup_id, obj_id, created_at)
        SELECT r, o, :now FROM due
        ON CONFLICT DO NOTHING
        RETURNING default_followup_id, obj_id
    ), made AS (
        INSERT INTO followup_requests (obj_id, allocation_id, requester_id, payload, status, remote_request_ids,
                                       revision, default_followup_id, frames, created_at, modified)
        SELECT f.obj_id, d.allocation_id, d.requester_id, d.payload, 'pending', '[]', 0, d.id, '[]', :now, :now
        FROM fired f JOIN default_followup_requests d ON d.id = f.default_followup_id
        RETURNING id
    )
    SELECT id FROM made
""")

# A second statement: the CTE's sub-statements cannot see each other's rows.
_LINK = sa.text("""
    UPDATE default_followup_fired AS x SET followup_request_id = f.id
    FROM followup_requests f
    WHERE f.id = ANY(CAST(:ids AS int[])) AND x.default_followup_id = f.default_followup_id
      AND x.obj_id = f.obj_id
""")


def rules_by_trigger(session: Session) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(filter id -> rule ids, group id -> rule ids)."""
    by_filter, by_group = defaultdict(list), defaultdict(list)
    for rule in session.execute(sa.select(models.DefaultFollowupRequest)).scalars():
        sf = rule.source_filter or {}
        for fid in sf.get("filter_ids", []):
            by_filter[int(fid)].append(rule.id)
        for gid in sf.get("group_ids", []):
            by_group[int(gid)].append(rule.id)
    return dict(by_filter), dict(by_group)


def fire(session: Session, pairs: set[tuple[int, str]]) -> list[int]:
    """Mark (rule, object) pairs as fired and create their pending requests; return the new request ids."""
    if not pairs:
        return []
    rows = sorted(pairs)
    ids = session.execute(_FIRE, {"r": [p[0] for p in rows], "o": [p[1] for p in rows],
                                  "now": models.utcnow()}).scalars().all()
    if ids:
        session.execute(_LINK, {"ids": list(ids)})
        session.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return list(ids)


def fire_for_saved(session: Session, obj_id: str, group_ids) -> list[int]:
    _, by_group = rules_by_trigger(session)
    return fire(session, {(r, obj_id) for g in group_ids for r in by_group.get(g, [])})
