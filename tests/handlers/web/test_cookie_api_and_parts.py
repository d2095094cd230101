"""Without a browser: the sign-in cookie on the API (reads; writes only with the page's XSRF token), the
form fields made from a form schema, the Mollweide projection against matplotlib's, and the light curve's
split of detections and upper limits."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone

import numpy as np
import requests

from handlers.web.forms import form_fields
from handlers.web.plots import inverse_mollweide, light_curve, light_curve_data, light_curve_model, mollweide


class Browserless:
    """Cookies kept as a browser keeps them for http://127.0.0.1 (requests would not send the Secure ones
    over http: browsers do, for localhost), sent with every request."""

    def __init__(self, base: str):
        self.base, self.jar = base, {}

    def request(self, method: str, path: str, **kw):
        r = requests.request(method, self.base + path, cookies=dict(self.jar), allow_redirects=False, timeout=10,
                             **kw)
        for c in r.cookies:
            self.jar[c.name] = c.value
        for header in r.raw.headers.getlist("Set-Cookie"):  # a deletion (an empty, expired value) drops it
            name, value = header.split(";", 1)[0].split("=", 1)
            if value in ("", '""'):
                self.jar.pop(name, None)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def xsrf(self) -> str:
        page = self.get("/login")
        return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def signed_in(api_server, client) -> Browserless:
    """A client that signed in through the form (its cookies: the signed token and _xsrf)."""
    b = Browserless(api_server.url)
    b.xsrf_token = b.xsrf()
    r = b.post("/login", data={"token": client.token, "_xsrf": b.xsrf_token, "next": "/sources"})
    assert r.status_code == 302 and r.headers["Location"] == "/sources"
    assert "skybroker_token" in b.jar
    return b


def test_the_cookie_reads_the_api_and_writes_only_with_the_xsrf_token(api_server, user):
    s = signed_in(api_server, user)
    me = s.get("/api/internal/profile").json()["data"]
    assert me["username"] == user.username
    body = {"name": f"cookie-{user.username[-6:]}"}
    r = s.post("/api/groups", json=body)  # no XSRF token: refused, nothing written
    assert r.status_code == 403 and "_xsrf" in r.json()["message"]
    assert body["name"] not in [g["name"] for g in user.get("/api/groups").json()["data"]["user_groups"]]
    r = s.post("/api/groups", json=body, headers={"X-XSRFToken": s.xsrf_token})
    assert r.status_code == 200, r.text
    assert body["name"] in [g["name"] for g in user.get("/api/groups").json()["data"]["user_groups"]]
    # a token header wins over the cookie
    bad = "token 00000000-0000-0000-0000-000000000000"
    assert s.get("/api/internal/profile", headers={"Authorization": bad}).status_code == 401
    # signing out ends the cookie's reads
    assert s.post("/logout", data={"_xsrf": s.xsrf_token}).status_code == 302
    assert "skybroker_token" not in s.jar
    assert s.get("/api/internal/profile").status_code == 401


def test_a_revoked_token_signs_the_page_out(api_server, make_user):
    client = make_user()
    s = signed_in(api_server, client)
    assert s.get("/sources").status_code == 200
    assert client.delete(f"/api/internal/tokens/{client.token}").status_code == 200
    r = s.get("/sources")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_sign_in_goes_back_only_to_our_own_pages(api_server, user):
    b = Browserless(api_server.url)
    xsrf = b.xsrf()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
                 "/\n/evil.example", "/ /evil.example"):
        r = b.post("/login", data={"token": user.token, "_xsrf": xsrf, "next": evil})
        assert r.status_code == 302 and r.headers["Location"] == "/"
    r = Browserless(api_server.url).post("/login", data={"token": user.token})
    assert r.status_code == 403  # no XSRF token: no sign-in


def test_form_fields_follow_the_schema():
    schema = {"type": "object", "required": ["b", "when"], "properties": {
        "a": {"type": "number", "minimum": 1, "maximum": 2, "default": 1.5, "title": "A"},
        "b": {"type": "string", "enum": ["x", "y"], "default": "y"},
        "c": {"type": "array", "items": {"type": "string", "enum": ["u", "g"]}},
        "d": {"type": "boolean"}, "e": {"type": "array", "items": {"type": "integer"}},
        "n": {"type": ["integer", "null"]}, "start_date": {"type": "string"}, "when": {"type": "string"}}}
    now = datetime(2031, 5, 1, 12, tzinfo=timezone.utc)
    fields = {f.name: f for f in form_fields(schema, now)}
    assert [f.name for f in form_fields(schema, now)][:2] == ["b", "when"]  # required first
    assert (fields["a"].kind, fields["a"].attrs, fields["a"].default, fields["a"].label) == (
        "number", {"min": 1, "max": 2, "step": "any"}, 1.5, "A")
    assert (fields["b"].kind, fields["b"].options, fields["b"].default, fields["b"].required) == (
        "select", ("x", "y"), "y", True)
    assert (fields["c"].kind, fields["c"].options, fields["c"].attrs) == (
        "choices", ("u", "g"), {"data-item-kind": "string"})
    assert form_fields({"properties": {"k": {"type": "integer", "enum": [1, 2]}}})[0].attrs == {
        "data-item-kind": "integer"}
    assert fields["d"].kind == "boolean" and fields["n"].kind == "integer" and fields["n"].attrs["step"] == "1"
    assert (fields["e"].kind, fields["e"].attrs) == ("list", {"data-item-kind": "integer"})
    assert fields["start_date"].default == "2031-05-01T12:00:00" and fields["when"].default is None


def test_mollweide_is_matplotlibs():
    from matplotlib.projections.geo import MollweideAxes

    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 2000), rng.uniform(-89.5, 89.5, 2000)
    x, y = mollweide(ra, dec)
    lon = np.radians(-((ra - 180.0 + 180.0) % 360.0 - 180.0))  # RA grows to the left: longitude is its negative
    ref = MollweideAxes.MollweideTransform(resolution=1).transform(np.column_stack((lon, np.radians(dec))))
    # matplotlib's ellipse has our semi-axes 2√2 and √2; its Newton iteration stops at a step of 1e-3 rad
    assert np.allclose(x, ref[:, 0], atol=2e-3) and np.allclose(y, ref[:, 1], atol=2e-3)
    # ours solves the defining equation 2θ + sin 2θ = π sin φ to the last digits
    theta = np.arcsin(y / np.sqrt(2))
    assert np.allclose(2 * theta + np.sin(2 * theta), np.pi * np.sin(np.radians(dec)), atol=1e-10)
    back_ra, back_dec = inverse_mollweide(x, y)
    assert np.allclose((back_ra - ra + 180) % 360 - 180, 0, atol=1e-8) and np.allclose(back_dec, dec, atol=1e-8)
    assert np.isnan(inverse_mollweide([2.9], [1.4])[0]).all()  # off the ellipse


def test_light_curve_puts_each_point_once_in_its_band():
    from bokeh.models import ColumnDataSource, GlyphRenderer

    pts = [{"id": i, "mjd": 60000 + i, "filter": "ztfg" if i % 2 else "ztfr", "origin": None,
            "mag": 19.0 if i % 3 else None, "magerr": 0.1 if i % 3 else None, "snr": 8.0 if i % 5 else 2.0,
            "limiting_mag": 20.5, "flux": 50.0 if i % 7 else None, "fluxerr": 5.0, "zp": 23.9} for i in range(30)]
    data = light_curve_data(pts)
    for band in ("ztfg", "ztfr"):
        mine = [p for p in pts if p["filter"] == band]
        # a detection: a magnitude at S/N >= 5; the rest at their limits; in flux, those that have one
        assert data[f"src:det:{band}"]["id"] == [p["id"] for p in mine if p["mag"] is not None and p["snr"] >= 5]
        assert data[f"src:lim:{band}"]["id"] == [p["id"] for p in mine if p["mag"] is None or p["snr"] < 5]
        assert data[f"src:flux:{band}"]["id"] == [p["id"] for p in mine if p["flux"] is not None]
    # each data set has its source in the document, drawn by the renderer of the same name
    model = light_curve_model(("ztfg", "ztfr"))
    sources = {m.name: m for m in model.select({"type": ColumnDataSource})}
    renderers = {r.name: r for r in model.select({"type": GlyphRenderer}) if r.name}
    for name, columns in data.items():
        assert set(columns) <= set(sources[name].data)
        assert renderers[name[len("src:"):]].data_source is sources[name]
    doc, payload = light_curve(pts)
    assert json.loads(doc)["doc"]["roots"] and json.loads(payload) == data
    assert light_curve(pts)[0] is doc  # made once per set of bands


def test_no_api_answer_runs_as_a_page_of_ours(api_server, user):
    """With the pages' cookie a browser can load API URLs directly (a comment's attachment shown inline,
    an image): each answer is sandboxed and never sniffed into HTML."""
    obj = f"CSP{uuid.uuid4().hex[:8]}"
    assert user.post("/api/sources", json={"id": obj, "ra": 1.0, "dec": 1.0}).status_code == 200
    html = base64.b64encode(b"<script>alert(document.cookie)</script>").decode()
    r = user.post(f"/api/sources/{obj}/comments", json={"text": "x", "attachment": {"body": html,
                                                                                     "name": "evil.html"}})
    assert r.status_code == 200, r.text
    cid = r.json()["data"]["comment_id"]
    s = signed_in(api_server, user)
    for path in (f"/api/sources/{obj}/comments/{cid}/attachment?download=false&preview=true", "/api/sysinfo"):
        r = s.get(path)
        assert r.status_code == 200
        assert r.headers["Content-Security-Policy"].startswith("sandbox")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
