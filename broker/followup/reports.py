"""Allocation reports, instrument schedules and priorities from magnitudes: data, CSV and plots."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.followup import FollowupStatus

from broker.access.auth import Principal
from broker.errors import NotFound, ValidationError
from broker.followup.allocations import readable_allocations
from broker.followup.requests import readable_requests

FR = models.FollowupRequest
ACTIVE = (FollowupStatus.pending, FollowupStatus.submitted, FollowupStatus.scheduled)
FORMATS = ("json", "csv", "png", "pdf")


def _instrument(session: Session, instrument_id: int) -> models.Instrument:
    inst = session.get(models.Instrument, instrument_id)
    if inst is None:
        raise NotFound(f"No instrument with ID {instrument_id}")
    return inst


def allocation_report(session: Session, principal: Principal, instrument_id: int) -> dict:
    """Hours allocated, used (completed requests) and committed (still active) per allocation."""
    inst = _instrument(session, instrument_id)
    allocations = session.execute(readable_allocations(principal)
                                  .where(models.Allocation.instrument_id == inst.id)
                                  .order_by(models.Allocation.id)).scalars().all()
    rows = []
    for a in allocations:
        counts: dict[str, int] = defaultdict(int)
        used = committed = 0.0
        for status, duration in session.execute(sa.select(FR.status, FR.duration_s)
                                                .where(FR.allocation_id == a.id)).all():
            counts[status.value] += 1
            if status is FollowupStatus.completed:
                used += (duration or 0.0) / 3600.0
            elif status in ACTIVE:
                committed += (duration or 0.0) / 3600.0
        rows.append({"allocation_id": a.id, "group_id": a.group_id, "group_name": a.group.name, "pi": a.pi,
                     "proposal_id": a.proposal_id, "hours_allocated": a.hours_allocated,
                     "hours_used": round(used, 4), "hours_committed": round(committed, 4),
                     "hours_left": round(a.hours_allocated - used, 4),
                     "requests": dict(counts), "start_date": a.start_date and a.start_date.isoformat(),
                     "end_date": a.end_date and a.end_date.isoformat()})
    return {"instrument_id": inst.id, "instrument_name": inst.name, "allocations": rows}


def schedule(session: Session, principal: Principal, instrument_id: int, start=None, end=None) -> dict:
    """The active requests on an instrument, by priority then window: what we have asked the facility for."""
    inst = _instrument(session, instrument_id)
    stmt = (readable_requests(principal)
            .where(FR.status.in_(ACTIVE),
                   FR.allocation_id.in_(sa.select(models.Allocation.id)
                                        .where(models.Allocation.instrument_id == inst.id))))
    out = []
    for req in session.execute(stmt).scalars():
        p = req.payload
        w_start, w_end = p.get("start_date"), p.get("end_date")
        if start and w_end and arrow.get(w_end).naive < start:
            continue
        if end and w_start and arrow.get(w_start).naive > end:
            continue
        out.append({"id": req.id, "obj_id": req.obj_id, "ra": req.obj.ra, "dec": req.obj.dec,
                    "status": req.status.value, "priority": req.priority, "ipp_value": p.get("ipp_value"),
                    "start_date": w_start, "end_date": w_end, "remote_id": req.remote_id,
                    "duration_s": req.duration_s, "allocation_id": req.allocation_id})
    out.sort(key=lambda r: (-(r["priority"] or 0.0), r["start_date"] or "", r["id"]))
    return {"instrument_id": inst.id, "instrument_name": inst.name, "requests": out}


def active_requests(session: Session, principal: Principal, instrument_id: int) -> int:
    """How many of the caller's readable requests on an instrument are still active (what its schedule
    lists)."""
    A = models.Allocation
    return session.execute(sa.select(sa.func.count()).select_from(
        readable_requests(principal).where(FR.status.in_(ACTIVE), FR.allocation_id.in_(
            sa.select(A.id).where(A.instrument_id == instrument_id))).subquery())).scalar_one()


def to_csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: (v if not isinstance(v, dict) else ";".join(f"{a}={b}" for a, b in v.items()))
                    for k, v in r.items()})
    return buf.getvalue().encode()


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _render(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def _plain(text) -> str:
    """User text as a plot label: shown as typed (a '$' is not mathtext) and printable only (a BOM or a
    control character breaks matplotlib's PDF backend)."""
    return "".join(c for c in str(text) if c.isprintable()).replace("$", r"\$")


def report_plot(report: dict, fmt: str) -> bytes:
    plt = _figure()
    rows = report["allocations"]
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(len(rows), 1) + 1.5))
    names = [_plain(f"{r['group_name']} ({r['proposal_id'] or r['allocation_id']})") for r in rows]
    y = range(len(rows))
    def hours(v):  # a bar matplotlib can draw (an absurd allocation would overflow its tick maths)
        return min(float(v), 1e9) if math.isfinite(v) else 1e9

    ax.barh(y, [hours(r["hours_allocated"]) for r in rows], color="#d9d9d9", label="allocated")
    ax.barh(y, [hours(r["hours_used"] + r["hours_committed"]) for r in rows], color="#9ecae1", label="committed")
    ax.barh(y, [hours(r["hours_used"]) for r in rows], color="#3182bd", label="used")
    ax.set_yticks(list(y), names)
    ax.set_xlabel("hours")
    ax.set_title(f"Allocations on {_plain(report['instrument_name'])}")
    ax.legend(loc="lower right")
    return _render(fig, fmt)


def schedule_plot(sched: dict, fmt: str) -> bytes:
    plt = _figure()
    rows = sched["requests"]
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(rows), 1) + 1.5))
    for i, r in enumerate(rows):
        if r["start_date"] and r["end_date"]:
            s, e = arrow.get(r["start_date"]).datetime, arrow.get(r["end_date"]).datetime
            ax.barh(i, (e - s).total_seconds() / 86400.0, left=_date2num(s), color="#3182bd")
    ax.set_yticks(range(len(rows)), [_plain(f"{r['obj_id']} (p={r['priority']})") for r in rows])
    ax.xaxis_date()
    ax.set_title(f"Follow-up requests on {_plain(sched['instrument_name'])}")
    fig.autofmt_xdate()
    return _render(fig, fmt)


def _date2num(dt):
    import matplotlib.dates as mdates

    return mdates.date2num(dt)


# -- priorities ------------------------------------------------------------------------------------

def latest_magnitudes(session: Session, principal: Principal, obj_ids, snr: float | None = None) -> dict[str, float]:
    """The most recent detected AB magnitude of each object (flux > 0 in µJy-compatible zp; with ``snr``,
    at flux/fluxerr >= snr), from the photometry the caller can see."""
    from broker.objects.objs import photometry_visible_clause

    P = models.Photometry
    detected = [P.flux.is_not(None), P.flux > 0]
    if snr is not None:
        detected += [P.fluxerr > 0, P.flux / P.fluxerr >= snr]
    ranked = (sa.select(P.obj_id, P.flux, P.zp,
                        sa.func.row_number().over(partition_by=P.obj_id, order_by=P.mjd.desc()).label("n"))
              .where(P.obj_id.in_(list(obj_ids)), *detected))
    if not principal.is_admin:
        ranked = ranked.where(photometry_visible_clause(principal))
    ranked = ranked.subquery()
    rows = session.execute(sa.select(ranked.c.obj_id, ranked.c.flux, ranked.c.zp).where(ranked.c.n == 1)).all()
    return {o: zp - 2.5 * math.log10(flux) for o, flux, zp in rows}


def priorities_by_magnitude(mags: dict[str, float], lo: float, hi: float) -> dict[str, float]:
    """Linear: the brightest object gets ``hi``, the faintest ``lo`` (all equal: ``hi``)."""
    if not mags:
        return {}
    bright, faint = min(mags.values()), max(mags.values())
    if faint == bright:
        return {o: hi for o in mags}
    return {o: lo + (hi - lo) * (faint - m) / (faint - bright) for o, m in mags.items()}


def priorities_by_score(scores: dict[str, float], lo: float, hi: float) -> dict[str, float]:
    """Linear: the highest score gets ``hi``, the lowest ``lo`` (all equal: ``hi``)."""
    if not scores:
        return {}
    top, bottom = max(scores.values()), min(scores.values())
    if top == bottom:
        return {o: hi for o in scores}
    return {o: lo + (hi - lo) * (v - bottom) / (top - bottom) for o, v in scores.items()}


def localization_scores(sm, positions: dict[str, tuple]) -> dict[str, float]:
    """Probability density [1/sr] of the sky map ``sm`` at each object; for a 3-D map and an object with
    a redshift, times the conditional distance density at its luminosity distance [1/Mpc]."""
    import numpy as np

    from broker.sky import kernels as K

    ids = list(positions)
    ra = np.array([positions[o][0] for o in ids])
    dec = np.array([positions[o][1] for o in ids])
    res = K.crossmatch(sm.uniq, sm.probdensity, ra, dec)
    idx = K.locate(sm.uniq, ra, dec)
    out = {}
    for k, o in enumerate(ids):
        dens = res["probdensity"][k]
        if not np.isfinite(dens) or dens <= 0:
            continue
        z = positions[o][2]
        if z is not None and sm.distmu is not None and idx[k] >= 0:
            from astropy.cosmology import Planck18

            r = float(Planck18.luminosity_distance(z).to_value("Mpc"))
            mu, sigma, norm = sm.distmu[idx[k]], sm.distsigma[idx[k]], sm.distnorm[idx[k]]
            if np.isfinite(mu) and sigma > 0:
                dens = dens * norm * r**2 * math.exp(-0.5 * ((r - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        out[o] = float(dens)
    return out


PRIORITY_LIMIT = 1e9  # |priority| beyond this is no priority anyone means, and hi - lo could overflow


def check_range(lo: float, hi: float) -> None:
    for name, v in (("minimumPriority", lo), ("maximumPriority", hi)):
        if not -PRIORITY_LIMIT <= v <= PRIORITY_LIMIT:
            raise ValidationError(f"Invalid field '{name}': must be a number between {-PRIORITY_LIMIT:g} and "
                                  f"{PRIORITY_LIMIT:g}", field=name)
    if hi < lo:
        raise ValidationError("Invalid field 'maximumPriority': must not be below minimumPriority",
                              field="maximumPriority")
