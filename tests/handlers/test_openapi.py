"""/api/openapi.json describes every route and method the server answers."""

from handlers.routes import INT_PARAMS, ROUTES


def test_spec_is_complete(anonymous):
    r = anonymous.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    for route in ROUTES:
        assert route.path in spec["paths"], route.path
        assert set(spec["paths"][route.path]) == {m.lower() for m in route.methods}, route.path
    assert set(spec["paths"]) == {r.path for r in ROUTES}


def test_spec_carries_body_schemas_and_acls(anonymous, admin):
    spec = anonymous.get("/api/openapi.json").json()
    post_filter = spec["paths"]["/api/filters"]["post"]
    schema = post_filter["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"name", "stream_id", "group_id"}
    assert schema["additionalProperties"] is False
    assert spec["paths"]["/api/db_stats"]["get"]["x-acls"] == ["System admin"]
    params = {p["name"]: p for p in spec["paths"]["/api/filters/{filter_id}"]["get"]["parameters"]}
    assert params["filter_id"]["in"] == "path" and params["filter_id"]["schema"]["type"] == "integer"
    # the schema in the spec is the one that validates: a body it rejects, the server rejects
    r = admin.post("/api/filters", json={"name": "x", "stream_id": 1})
    assert r.status_code == 400 and "group_id" in r.json()["message"]


def test_every_route_is_reachable_with_the_declared_methods(admin):
    """An undeclared method on every route answers 405 (the route table is what is served)."""
    for route in ROUTES:
        path = route.path.replace("{", "").replace("}", "")
        path = "".join(ch for ch in path)
        for part in INT_PARAMS:
            path = path.replace(part, "1")
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - route.methods:
            assert admin.request(method, path).status_code == 405, (method, route.path)
