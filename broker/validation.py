"""Request-body validation with JSON Schema (the same schemas feed /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from broker.errors import ValidationError

_VALIDATORS: dict[int, Draft202012Validator] = {}


def _validator(schema: dict) -> Draft202012Validator:
    key = id(schema)
    v = _VALIDATORS.get(key)
    if v is None:
        Draft202012Validator.check_schema(schema)
        v = _VALIDATORS[key] = Draft202012Validator(schema)
    return v


def _field(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(body: Any, schema: dict) -> dict:
    """Return ``body`` if it matches ``schema``; else raise ValidationError naming the field."""
    errors = sorted(_validator(schema).iter_errors(body), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return body
    e = errors[0]
    where = _field(e.absolute_path)
    if e.validator == "required":
        missing = [k for k in e.validator_value if isinstance(e.instance, dict) and k not in e.instance][0]
        name = f"{where}.{missing}" if where else missing
        raise ValidationError(f"Missing required field '{name}'", field=name)
    if e.validator == "additionalProperties":
        allowed = set(e.schema.get("properties", {}))
        extra = sorted(k for k in e.instance if k not in allowed)[0]
        name = f"{where}.{extra}" if where else extra
        raise ValidationError(f"Unknown field '{name}'", field=name)
    if e.validator == "type":
        expected = e.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        if not where:
            raise ValidationError(f"Request body must be a JSON {expected}")
        raise ValidationError(
            f"Invalid type for field '{where}': expected {expected}, got {type(e.instance).__name__}",
            field=where,
        )
    if not where:
        raise ValidationError(f"Invalid request body: {e.message}")
    raise ValidationError(f"Invalid value for field '{where}': {e.message}", field=where)


def obj(properties: dict, required: tuple[str, ...] = (), **extra) -> dict:
    """A closed JSON object schema (unknown fields rejected)."""
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def string(description: str = "", **kw) -> dict:
    return {"type": "string", "description": description, **kw}


def integer(description: str = "", **kw) -> dict:
    return {"type": "integer", "description": description, **kw}


def boolean(description: str = "", **kw) -> dict:
    return {"type": "boolean", "description": description, **kw}


def nullable(schema: dict) -> dict:
    t = schema["type"]
    return {**schema, "type": [t, "null"] if isinstance(t, str) else [*t, "null"]}


def array(items: dict, description: str = "", **kw) -> dict:
    return {"type": "array", "items": items, "description": description, **kw}
