"""Request-body validation with JSON Schema (the same schemas feed /api/openapi.json)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from broker.errors import ValidationError

_VALIDATORS: dict[int, Draft202012Validator] = {}
_FAST: dict[int, object] = {}

# Keywords that mean the same in draft 7 (what fastjsonschema compiles) as in 2020-12 (our schemas'
# dialect); a schema with any other keyword (prefixItems, ...) is only checked by jsonschema.
_SAME_IN_DRAFT7 = frozenset({
    "type", "properties", "additionalProperties", "required", "minProperties", "maxProperties", "enum", "const",
    "items", "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "pattern", "anyOf", "oneOf", "allOf", "not", "description", "title", "default",
})


def _keywords(schema, out: set) -> set:
    if isinstance(schema, dict):
        for k, v in schema.items():
            out.add(k)
            for sub in (v.values() if k == "properties" else [v]):
                _keywords(sub, out)
    elif isinstance(schema, list):
        for v in schema:
            _keywords(v, out)
    return out


def _fast(schema: dict):
    """fastjsonschema's compiled check of ``schema`` (about 50x faster than jsonschema on a 50,000-point
    photometry body), or None where it would not mean the same."""
    key = id(schema)
    if key not in _FAST:
        import fastjsonschema

        ok = _keywords(schema, set()) <= _SAME_IN_DRAFT7
        _FAST[key] = fastjsonschema.compile(schema, use_default=False, use_formats=False) if ok else None
    return _FAST[key]


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
    """Return ``body`` if it matches ``schema``; else raise ValidationError naming the field.

    A compiled check passes valid bodies quickly; jsonschema, the authority, judges the rest and
    names the field."""
    fast = _fast(schema)
    if fast is not None:
        import fastjsonschema

        try:
            fast(body)
            return body
        except fastjsonschema.JsonSchemaException:
            pass
    errors = sorted(_validator(schema).iter_errors(body), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return body
    e = errors[0]
    while e.validator in ("anyOf", "oneOf") and e.context:
        # e.g. "a number or a list of numbers": the branch that got furthest names the field best
        e = max(e.context, key=lambda c: len(c.absolute_path))
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
    message = e.message if len(e.message) <= 300 else e.message[:300] + "…"  # jsonschema quotes whole values
    if not where:
        raise ValidationError(f"Invalid request body: {message}")
    raise ValidationError(f"Invalid value for field '{where}': {message}", field=where)


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
