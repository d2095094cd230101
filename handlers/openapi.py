"""/api/openapi.json: the OpenAPI 3.1 spec of the whole API, built from the route table.

Every handler method is declared with ``@endpoint``; its summary, ACLs, query
parameters and body schema (the very schema used to validate requests) become
the spec here, so the spec cannot drift from what the server does.
"""

from __future__ import annotations

import json
import re

from broker import __version__

from .base import BaseHandler, EndpointSpec, endpoint

ENVELOPE_OK = {
    "type": "object",
    "required": ["status", "data", "version"],
    "properties": {"status": {"const": "success"}, "data": {}, "version": {"type": "string"}},
}
ENVELOPE_ERROR = {
    "type": "object",
    "required": ["status", "message", "data", "version"],
    "properties": {"status": {"const": "error"}, "message": {"type": "string"},
                   "data": {"type": "object"}, "version": {"type": "string"}},
}


def _operation(path: str, method: str, spec: EndpointSpec, int_params: set[str]) -> dict:
    op: dict = {
        "summary": spec.summary,
        "tags": list(spec.tags),
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "parameters": [],
        "responses": {
            "200": {"description": "Success",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}}},
            "400": {"description": "Invalid input",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "Not found (or not visible to you)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if spec.description:
        op["description"] = spec.description
    if spec.auth:
        op["security"] = [{"token": []}]
        op["responses"]["401"] = {"description": "Missing or invalid token",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        op["responses"]["403"] = {"description": "Insufficient permissions",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if spec.acls:
            op["x-acls"] = list(spec.acls)
    else:
        op["security"] = []
    for name in re.findall(r"\{(\w+)\}", path):
        op["parameters"].append({"name": name, "in": "path", "required": True,
                                 "schema": {"type": "integer" if name in int_params else "string"}})
    for p in spec.params:
        op["parameters"].append({"name": p.name, "in": "query", "required": p.required,
                                 "description": p.description, "schema": p.schema})
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": spec.body}}}
    return op


def build_spec(routes, server_url: str) -> dict:
    from .routes import INT_PARAMS

    paths: dict = {}
    for r in routes:
        item = paths.setdefault(r.path, {})
        for method in sorted(r.methods):
            fn = getattr(r.handler, method.lower())
            spec = getattr(fn, "__endpoint__", None)
            if spec is None:
                raise RuntimeError(f"{r.handler.__name__}.{method.lower()} has no @endpoint declaration")
            item[method.lower()] = _operation(r.path, method.lower(), spec, INT_PARAMS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "skybroker", "version": __version__,
                 "description": "SkyPortal-compatible API of the skybroker alert broker. Every response "
                                "is the SkyPortal envelope, except this spec itself."},
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization",
                                          "description": "'token <token_id>'"}},
            "schemas": {"Success": ENVELOPE_OK, "Error": ENVELOPE_ERROR},
        },
        "paths": paths,
    }


class OpenAPIHandler(BaseHandler):
    @endpoint("The OpenAPI 3.1 specification of this API (not enveloped)", tags="system_info", auth=False)
    def get(self):
        from .routes import ROUTES

        self.finish(json.dumps(build_spec(ROUTES, self.config.server.url)))
