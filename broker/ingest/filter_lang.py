"""The filter criteria language: declarative JSON, validated on save, evaluated vectorised.

Grammar (a filter's ``criteria``; ``{}`` lets every alert pass)::

    C := {}                                         every alert
       | {"and": [C, ...]} | {"or": [C, ...]} | {"not": C}
       | {"field": PATH, "op": OP, "value": V}      OP: < <= > >= == !=
       | {"field": PATH, "in": [V, ...]}
       | {"field": PATH, "exists": true|false}
       | {"cone": {"ra": deg, "dec": deg, "radius": arcsec}}
       | {"detections": {"op": OP, "value": n, "band": BAND?, "within_days": days?}}

    PATH := ra | dec | mjd | band | flux | fluxerr | mag | magerr | snr | ndet | nlimits
          | survey | object_id | alert_id | scores.NAME | extra.NAME

Fluxes are µJy, magnitudes AB, times MJD. ``extra.NAME`` reaches the survey's own fields of the
triggering detection (ZTF ``candidate``, LSST ``diaSource``); a missing value fails every comparison.
``detections`` counts the detections in the alert's history (the triggering one included), optionally
in one band and within ``within_days`` before the alert.

No ``eval``: criteria compile to a tree of numpy operations over a whole batch.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from broker.ingest.decoding import Alert
from broker.errors import ValidationError

OPS: dict[str, Callable] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
NUMERIC_FIELDS = ("ra", "dec", "mjd", "flux", "fluxerr", "mag", "magerr", "snr", "ndet", "nlimits", "alert_id")
STRING_FIELDS = ("band", "survey", "object_id")
PREFIXES = ("scores.", "extra.")


def _fail(where: str, message: str):
    raise ValidationError(f"Invalid filter criteria at {where}: {message}", field=where)


class Batch:
    """Alerts of one batch, with columns computed on first use."""

    def __init__(self, alerts: Sequence[Alert]):
        self.alerts = alerts
        self.n = len(alerts)
        self._cols: dict[str, np.ndarray] = {}

    def column(self, path: str) -> np.ndarray:
        col = self._cols.get(path)
        if col is None:
            col = self._cols[path] = self._compute(path)
        return col

    def _compute(self, path: str) -> np.ndarray:
        a = self.alerts
        n = self.n
        if path in ("ra", "dec", "mjd", "flux", "fluxerr", "alert_id"):
            return np.fromiter((getattr(x, path) for x in a), dtype=float, count=n)
        if path == "mag":
            flux = self.column("flux")
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(flux > 0, 23.9 - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)
        if path == "magerr":
            flux, err = self.column("flux"), self.column("fluxerr")
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(flux > 0, err / flux / (math.log(10) / 2.5), np.nan)
        if path == "snr":
            with np.errstate(divide="ignore", invalid="ignore"):
                return self.column("flux") / self.column("fluxerr")
        if path == "ndet":
            return np.fromiter((len(x.detections) for x in a), dtype=float, count=n)
        if path == "nlimits":
            return np.fromiter((len(x.upper_limits) for x in a), dtype=float, count=n)
        if path in STRING_FIELDS:
            return np.array([getattr(x, path) for x in a], dtype=object)
        if path.startswith("scores."):
            key = path[7:]
            return np.fromiter((x.scores.get(key, np.nan) for x in a), dtype=float, count=n)
        if path.startswith("extra."):
            key = path[6:]
            return np.array([x.extra.get(key) for x in a], dtype=object)
        raise KeyError(path)

    def numeric(self, path: str) -> np.ndarray:
        col = self.column(path)
        if col.dtype != object:
            return col
        key = "#num:" + path
        out = self._cols.get(key)
        if out is None:
            out = np.full(self.n, np.nan)
            for i, v in enumerate(col):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[i] = v
                elif isinstance(v, bool):
                    out[i] = float(v)
            self._cols[key] = out
        return out

    def history(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened detections: (alert index, days before the alert, band)."""
        if "#hist" not in self._cols:
            idx, dt, band = [], [], []
            for i, x in enumerate(self.alerts):
                for p in x.detections:
                    idx.append(i)
                    dt.append(x.mjd - p.mjd)
                    band.append(p.band)
            self._cols["#hist"] = (np.array(idx, dtype=np.int64), np.array(dt, dtype=float),
                                   np.array(band, dtype=object))
        return self._cols["#hist"]


@dataclass(frozen=True)
class Node:
    kind: str
    args: tuple

    def evaluate(self, batch: Batch) -> np.ndarray:
        n = batch.n
        k, a = self.kind, self.args
        if k == "all":
            return np.ones(n, dtype=bool)
        if k == "and":
            out = np.ones(n, dtype=bool)
            for child in a:
                out &= child.evaluate(batch)
            return out
        if k == "or":
            out = np.zeros(n, dtype=bool)
            for child in a:
                out |= child.evaluate(batch)
            return out
        if k == "not":
            return ~a[0].evaluate(batch)
        if k == "cmp":
            path, op, value = a
            if isinstance(value, str):
                col = batch.column(path)
                res = np.array([(v is not None and OPS[op](v, value)) if isinstance(v, str) else False
                                for v in col], dtype=bool)
                return res
            col = batch.numeric(path)
            with np.errstate(invalid="ignore"):
                res = OPS[op](col, float(value))
            return res & ~np.isnan(col) if op == "!=" else res
        if k == "in":
            path, values = a
            nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            strs = {v for v in values if isinstance(v, str)}
            out = np.zeros(n, dtype=bool)
            if nums:
                out |= np.isin(batch.numeric(path), nums)
            if strs:
                out |= np.array([v in strs if isinstance(v, str) else False for v in batch.column(path)],
                                dtype=bool)
            return out
        if k == "exists":
            path, want = a
            col = batch.column(path)
            present = ~np.isnan(col) if col.dtype != object else np.array([v is not None for v in col], dtype=bool)
            return present if want else ~present
        if k == "cone":
            ra0, dec0, radius_arcsec = a
            ra, dec = np.radians(batch.column("ra")), np.radians(batch.column("dec"))
            r0, d0 = math.radians(ra0), math.radians(dec0)
            # haversine: stable for the small radii filters use
            hav = (np.sin((dec - d0) / 2) ** 2 + np.cos(dec) * math.cos(d0) * np.sin((ra - r0) / 2) ** 2)
            sep = 2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))
            return sep <= math.radians(radius_arcsec / 3600.0)
        if k == "detections":
            op, value, band, within = a
            idx, dt, bands = batch.history()
            keep = np.ones(len(idx), dtype=bool)
            if band is not None:
                keep &= bands == band
            if within is not None:
                keep &= dt <= within
            counts = np.bincount(idx[keep], minlength=n).astype(float)
            return OPS[op](counts, float(value))
        raise AssertionError(k)


def _path(where: str, path: Any) -> str:
    if not isinstance(path, str):
        _fail(where, "field must be a string")
    if path in NUMERIC_FIELDS or path in STRING_FIELDS:
        return path
    if path.startswith(PREFIXES) and len(path.split(".", 1)[1]) > 0 and "." not in path.split(".", 1)[1]:
        return path
    _fail(where, f"unknown field '{path}' (known: {', '.join(NUMERIC_FIELDS + STRING_FIELDS)}, "
                 "scores.NAME, extra.NAME)")


def _scalar(where: str, v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        _fail(where, f"value must be a number or a string, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        _fail(where, "value must be finite")
    return v


def _number(where: str, v: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(where, f"must be a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        _fail(where, f"must be between {lo} and {hi}, got {v}")
    return float(v)


def _keys(where: str, node: dict, allowed: set[str], required: set[str]) -> None:
    unknown = set(node) - allowed
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}; allowed here: {sorted(allowed)}")
    missing = required - set(node)
    if missing:
        _fail(where, f"missing key(s) {sorted(missing)}")


def compile_criteria(criteria: Any, where: str = "criteria") -> Node:
    """Validate ``criteria`` and return its evaluation tree (ValidationError names the place)."""
    if not isinstance(criteria, dict):
        _fail(where, "must be a JSON object")
    if not criteria:
        return Node("all", ())
    if "and" in criteria or "or" in criteria:
        key = "and" if "and" in criteria else "or"
        _keys(where, criteria, {key}, {key})
        children = criteria[key]
        if not isinstance(children, list) or not children:
            _fail(f"{where}.{key}", "must be a non-empty list")
        return Node(key, tuple(compile_criteria(c, f"{where}.{key}[{i}]") for i, c in enumerate(children)))
    if "not" in criteria:
        _keys(where, criteria, {"not"}, {"not"})
        return Node("not", (compile_criteria(criteria["not"], f"{where}.not"),))
    if "field" in criteria:
        path = _path(f"{where}.field", criteria["field"])
        if "op" in criteria:
            _keys(where, criteria, {"field", "op", "value"}, {"field", "op", "value"})
            op = criteria["op"]
            if op not in OPS:
                _fail(f"{where}.op", f"unknown operator {op!r} (known: {', '.join(OPS)})")
            value = _scalar(f"{where}.value", criteria["value"])
            if isinstance(value, str) and op not in ("==", "!=") :
                _fail(f"{where}.op", f"operator {op} needs a number")
            return Node("cmp", (path, op, value))
        if "in" in criteria:
            _keys(where, criteria, {"field", "in"}, {"field", "in"})
            values = criteria["in"]
            if not isinstance(values, list) or not values:
                _fail(f"{where}.in", "must be a non-empty list")
            return Node("in", (path, tuple(_scalar(f"{where}.in[{i}]", v) for i, v in enumerate(values))))
        if "exists" in criteria:
            _keys(where, criteria, {"field", "exists"}, {"field", "exists"})
            if not isinstance(criteria["exists"], bool):
                _fail(f"{where}.exists", "must be true or false")
            return Node("exists", (path, criteria["exists"]))
        _fail(where, "a field condition needs 'op' + 'value', 'in' or 'exists'")
    if "cone" in criteria:
        _keys(where, criteria, {"cone"}, {"cone"})
        c = criteria["cone"]
        w = f"{where}.cone"
        if not isinstance(c, dict):
            _fail(w, "must be an object {ra, dec, radius}")
        _keys(w, c, {"ra", "dec", "radius"}, {"ra", "dec", "radius"})
        return Node("cone", (_number(f"{w}.ra", c["ra"], 0, 360), _number(f"{w}.dec", c["dec"], -90, 90),
                             _number(f"{w}.radius", c["radius"], 0, 180 * 3600)))
    if "detections" in criteria:
        _keys(where, criteria, {"detections"}, {"detections"})
        d = criteria["detections"]
        w = f"{where}.detections"
        if not isinstance(d, dict):
            _fail(w, "must be an object {op, value, band?, within_days?}")
        _keys(w, d, {"op", "value", "band", "within_days"}, {"op", "value"})
        if d["op"] not in OPS:
            _fail(f"{w}.op", f"unknown operator {d['op']!r} (known: {', '.join(OPS)})")
        band = d.get("band")
        if band is not None and not isinstance(band, str):
            _fail(f"{w}.band", "must be a band name such as 'ztfr'")
        within = d.get("within_days")
        return Node("detections", (d["op"], _number(f"{w}.value", d["value"], 0), band,
                                   None if within is None else _number(f"{w}.within_days", within, 0)))
    _fail(where, f"unknown operator(s) {sorted(criteria)}; known: and, or, not, field, cone, detections")


def evaluate(node: Node, batch: Batch) -> np.ndarray:
    """Boolean mask over the batch: which alerts pass."""
    return node.evaluate(batch)
