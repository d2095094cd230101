"""HTML form fields generated from a facility's JSON Schema (the instrument's ``form_schema``, the schema
the API validates follow-up payloads against), as SkyPortal's react-jsonschema-form draws them. The page's
script turns the inputs back into a payload by each field's ``kind``; the API does all the validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # select, choices (several of an enum), number, integer, boolean, text, list (comma-separated)
    required: bool
    default: object = None
    options: tuple = ()
    description: str = ""
    attrs: dict = field(default_factory=dict)  # min / max / step for numbers; data-item-kind: a value's type


def _window_defaults(now: datetime) -> dict[str, str]:
    """SkyPortal's forms open a window now, for a week, where the schema gives no default."""
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start_date": now.strftime(fmt), "end_date": (now + timedelta(days=7)).strftime(fmt)}


def form_fields(schema: dict, now: datetime | None = None) -> list[FormField]:
    """One field per property of ``schema`` (required ones first, then the schema's order)."""
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    defaults = _window_defaults(now or datetime.now(timezone.utc))
    out = []
    for name in sorted(props, key=lambda n: (n not in required, list(props).index(n))):
        p = props[name]
        kinds = p.get("type")
        kind_of = kinds if isinstance(kinds, str) else next((k for k in kinds or [] if k != "null"), "string")
        label = p.get("title") or name.replace("_", " ")
        default = p.get("default", defaults.get(name))
        attrs = {}
        if "enum" in p:
            kind, options = "select", tuple(p["enum"])
            attrs["data-item-kind"] = kind_of
        elif kind_of == "array" and "enum" in p.get("items", {}):
            kind, options = "choices", tuple(p["items"]["enum"])
            attrs["data-item-kind"] = p["items"].get("type", "string")
        elif kind_of == "array":
            kind, options = "list", ()
            attrs["data-item-kind"] = p.get("items", {}).get("type", "string")
        elif kind_of in ("number", "integer"):
            kind, options = kind_of, ()
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if key in p:
                    attrs[attr] = p[key]
            attrs["step"] = "1" if kind_of == "integer" else "any"
        elif kind_of == "boolean":
            kind, options = "boolean", ()
        else:
            kind, options = "text", ()
        out.append(FormField(name=name, label=label, kind=kind, required=name in required, default=default,
                             options=options, description=p.get("description", ""), attrs=attrs))
    return out
