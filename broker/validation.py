"""Request-body validation with JSON Schema (the same schemas feed /api/openapi.json)."""

from __future__ import annotations

import json
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


MAX_DEPTH = 32  # nesting of objects and arrays in a request body
INT64 = 1 << 63


def loads_strict(raw: bytes | str) -> Any:
    """JSON as RFC 8259 has it, for request bodies: NaN/Infinity, NUL characters, integers beyond int64
    and nesting deeper than ``MAX_DEPTH`` are refused with a ValidationError naming the field."""
    try:
        value = json.loads(raw)  # takes NaN/Infinity literals, so that check_json can name their field
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Malformed JSON in request body: {exc}") from None
    except RecursionError:
        raise ValidationError(f"Invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    check_json(value)
    return value


def _check_text(v: str, path: str, what: str = "") -> None:
    """Text PostgreSQL can store: no NUL, no unpaired UTF-16 surrogate (JSON's \\ud800 escapes)."""
    if "\x00" in v:
        raise ValidationError(f"Invalid value for {what}field '{path or 'body'}': contains a NUL character",
                              field=path or None)
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"Invalid value for {what}field '{path or 'body'}': contains an unpaired "
                                  f"UTF-16 surrogate (not Unicode text)", field=path or None) from None


def check_json(value: Any, where: str = "") -> None:
    """Walk a decoded JSON value (iteratively: no recursion limit to hit) and refuse what
    :func:`loads_strict` refuses; the error names the field."""
    stack = [(value, where, 0)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, str):
            _check_text(v, path)
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if not -INT64 <= v < INT64:
                raise ValidationError(f"Invalid value for field '{path or 'body'}': integer out of the 64-bit range",
                                      field=path or None)
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ValidationError(f"Invalid value for field '{path or 'body'}': must be a finite number",
                                      field=path or None)
        elif isinstance(v, (dict, list)):
            if depth >= MAX_DEPTH:
                raise ValidationError(f"Invalid JSON: nested deeper than {MAX_DEPTH} levels at '{path or 'body'}'",
                                      field=path or None)
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, child in items:
                if isinstance(k, str):
                    _check_text(k, path, "a field name in ")
                sub = f"{path}[{k}]" if isinstance(k, int) else (f"{path}.{k}" if path else k)
                stack.append((child, sub, depth + 1))


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
