"""/api/kafka_clusters (our addition): System admins manage the clusters streams read from; secrets are stored
encrypted and never returned; every bad field gets a 400 naming it; streams name existing clusters."""

import uuid

import pytest
import sqlalchemy as sa

from broker.followup.vault import vault_from_config

from ..broker.ingest.secure_kafka import make_tls


def _name(prefix="cl"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


SCRAM = {"bootstrap_servers": "broker1.example.org:9094,broker2.example.org:9094", "security_protocol": "SASL_SSL",
         "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "reader", "sasl_password": "very-secret-pw"}


def add(admin, **body):
    r = admin.post("/api/kafka_clusters", json={"name": _name(), **body})
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def error_of(r, status=400):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error"
    return body["message"]


def test_only_system_admins_manage_clusters(admin, user):
    assert "System admin" in error_of(user.get("/api/kafka_clusters"), 401)
    assert "System admin" in error_of(user.post("/api/kafka_clusters", json={"name": _name(), **SCRAM}), 401)
    cid = add(admin, **SCRAM)
    assert "System admin" in error_of(user.get(f"/api/kafka_clusters/{cid}"), 401)
    assert "System admin" in error_of(user.delete(f"/api/kafka_clusters/{cid}"), 401)


def test_secrets_are_encrypted_named_and_never_returned(admin, config, engine):
    cid = add(admin, **SCRAM)
    r = admin.get(f"/api/kafka_clusters/{cid}")
    assert r.status_code == 200, r.text
    got = r.json()["data"]
    assert "very-secret-pw" not in r.text
    assert got["secrets_set"] == ["sasl_password"]
    assert {k: got[k] for k in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username")} == \
        {k: SCRAM[k] for k in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username")}
    assert got["status"] == {}  # no consumer reads it yet
    listing = admin.get("/api/kafka_clusters")
    assert "very-secret-pw" not in listing.text
    first = listing.json()["data"][0]
    assert (first["id"], first["name"], first["bootstrap_servers"]) == (None, "default",
                                                                        config.kafka.bootstrap_servers)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT secrets FROM kafka_clusters WHERE id=:i"), {"i": cid}).scalar()
    assert "very-secret-pw" not in stored
    assert vault_from_config(config).decrypt(stored) == {"sasl_password": "very-secret-pw"}


def test_patch_keeps_secrets_not_named_and_checks_the_whole(admin):
    cid = add(admin, **SCRAM)
    assert admin.patch(f"/api/kafka_clusters/{cid}", json={"sasl_username": "other"}).status_code == 200
    got = admin.get(f"/api/kafka_clusters/{cid}").json()["data"]
    assert got["sasl_username"] == "other" and got["secrets_set"] == ["sasl_password"]
    r = admin.patch(f"/api/kafka_clusters/{cid}", json={"sasl_password": None})
    assert "'sasl_password'" in error_of(r)  # SCRAM needs it
    assert admin.get(f"/api/kafka_clusters/{cid}").json()["data"]["secrets_set"] == ["sasl_password"]  # unchanged
    # to plain TLS: the SASL fields go
    r = admin.patch(f"/api/kafka_clusters/{cid}", json={"security_protocol": "SSL", "sasl_mechanism": None,
                                                        "sasl_username": None, "sasl_password": None})
    assert r.status_code == 200, r.text
    got = admin.get(f"/api/kafka_clusters/{cid}").json()["data"]
    assert (got["security_protocol"], got["sasl_mechanism"], got["secrets_set"]) == ("SSL", None, [])


@pytest.mark.parametrize("body, field", [
    ({"security_protocol": "SASL_SSL"}, "sasl_mechanism"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "sasl_password"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER", "oauth_client_id": "c",
      "oauth_client_secret": "s"}, "oauth_token_endpoint_url"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER", "oauth_client_id": "c",
      "oauth_client_secret": "s", "oauth_token_endpoint_url": "ftp://idp/token"}, "oauth_token_endpoint_url"),
    ({"security_protocol": "PLAINTEXT", "sasl_mechanism": "PLAIN"}, "sasl_mechanism"),
    ({"security_protocol": "PLAINTEXT", "ssl_ca_pem": "x"}, "ssl_ca_pem"),
    ({"security_protocol": "SSL", "ssl_ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
     "ssl_ca_pem"),
    ({"security_protocol": "SSL", "ssl_key_pem": "x"}, "ssl_certificate_pem"),
    ({"security_protocol": "SSL", "options": {"sasl.password": "x"}}, "options.sasl.password"),
    ({"security_protocol": "SSL", "options": {"enable.auto.commit": True}}, "options.enable.auto.commit"),
    ({"security_protocol": "SSL", "options": {"no.such.property": "1"}}, "options"),
    ({"security_protocol": "SSL", "options": {"sasl.kerberos.kinit.cmd": "touch /tmp/x"}},
     "options.sasl.kerberos.kinit.cmd"),
    ({"security_protocol": "SSL", "options": {"plugin.library.paths": "/tmp/evil.so"}}, "options.plugin.library.paths"),
    ({"security_protocol": "SSL", "options": {"on_commit": "x"}}, "options.on_commit"),
    ({"security_protocol": "SSL", "options": {"fetch.max.bytes": "lots"}}, "options"),
    ({"security_protocol": "KERBEROS"}, "security_protocol"),
])
def test_bad_fields_are_named(admin, body, field):
    r = admin.post("/api/kafka_clusters", json={"name": _name(), "bootstrap_servers": "b:9092", **body})
    message = error_of(r)
    assert f"'{field}'" in message, message


def test_names_are_unique_and_default_is_reserved(admin):
    name = _name()
    assert admin.post("/api/kafka_clusters", json={"name": name, **SCRAM}).status_code == 200
    assert "already exists" in error_of(admin.post("/api/kafka_clusters", json={"name": name, **SCRAM}))
    assert "'name'" in error_of(admin.post("/api/kafka_clusters", json={"name": "default", **SCRAM}))
    assert "'name'" in error_of(admin.post("/api/kafka_clusters", json={"name": "a b", **SCRAM}))
    assert "bootstrap_servers" in error_of(admin.post("/api/kafka_clusters", json={"name": _name()}))


def test_gcn_preset_is_gcn_kafka_with_client_credentials(admin):
    cid = add(admin, preset="gcn", oauth_client_id="my-client-id", oauth_client_secret="my-client-secret")
    got = admin.get(f"/api/kafka_clusters/{cid}").json()["data"]
    assert {k: got[k] for k in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "oauth_client_id",
                                "oauth_token_endpoint_url", "secrets_set")} == {
        "bootstrap_servers": "kafka.gcn.nasa.gov", "security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
        "oauth_client_id": "my-client-id", "oauth_token_endpoint_url": "https://auth.gcn.nasa.gov/oauth2/token",
        "secrets_set": ["oauth_client_secret"]}
    cid = add(admin, preset="gcn", domain="test.gcn.nasa.gov", oauth_client_id="c", oauth_client_secret="s")
    got = admin.get(f"/api/kafka_clusters/{cid}").json()["data"]
    assert (got["bootstrap_servers"], got["oauth_token_endpoint_url"]) == (
        "kafka.test.gcn.nasa.gov", "https://auth.test.gcn.nasa.gov/oauth2/token")
    assert "'oauth_client_secret'" in error_of(admin.post("/api/kafka_clusters", json={
        "name": _name(), "preset": "gcn", "oauth_client_id": "c"}))
    assert "'domain'" in error_of(admin.post("/api/kafka_clusters", json={
        "name": _name(), "preset": "gcn", "domain": "example.org", "oauth_client_id": "c",
        "oauth_client_secret": "s"}))


def test_mutual_tls_certificates_are_checked(admin, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca = make_tls(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    enc = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"key-pass")).decode()
    body = {"security_protocol": "SSL", "ssl_ca_pem": ca, "ssl_certificate_pem": ca, "ssl_key_pem": enc}
    assert "'ssl_key_pem'" in error_of(admin.post("/api/kafka_clusters", json={
        "name": _name(), "bootstrap_servers": "b:9093", **body}))  # no password for the encrypted key
    cid = add(admin, bootstrap_servers="b:9093", ssl_key_password="key-pass",
              options={"ssl.endpoint.identification.algorithm": "none", "fetch.max.bytes": 1048576}, **body)
    got = admin.get(f"/api/kafka_clusters/{cid}").json()["data"]
    assert got["secrets_set"] == ["ssl_key_password", "ssl_key_pem"]
    assert got["options"] == {"ssl.endpoint.identification.algorithm": "none", "fetch.max.bytes": 1048576}
    assert "PRIVATE KEY" not in admin.get(f"/api/kafka_clusters/{cid}").text


def test_streams_name_existing_clusters_which_then_stay(admin):
    name = _name()
    r = admin.post("/api/kafka_clusters", json={"name": name, **SCRAM})
    cid = r.json()["data"]["id"]

    def stream(**altdata):
        return admin.post("/api/streams", json={"name": _name("s"), "altdata": altdata})

    r = stream(topic="t", format="ztf_avro", cluster="no-such-cluster")
    assert "'altdata.cluster'" in error_of(r)
    assert "'altdata.topic'" in error_of(stream(topic="^ztf_(", format="ztf_avro"))
    assert "'altdata.topic'" in error_of(stream(topic="bad topic", format="ztf_avro"))
    assert "'altdata.start'" in error_of(stream(topic="t", format="ztf_avro", start="yesterday"))
    assert "'altdata.topic'" in error_of(stream(cluster=name))
    for ok in ({"topic": "^ztf_.*_programid1$"}, {"topic": "ztf_{date}_programid1", "start": "latest"},
               {"topic": "igwn.gwalert", "start": "2026-11-20"}, {"topic": "x", "start": "2026-11-20T12:00:00Z"}):
        r = stream(format="ztf_avro", cluster=name, **ok)
        assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    got = admin.get(f"/api/streams/{sid}").json()["data"]
    assert got["ingest_status"] == {"cluster": name, "consumers": 0, "error": None, "error_at": None,
                                    "topic_errors": {}}
    assert "used by stream(s)" in error_of(admin.delete(f"/api/kafka_clusters/{cid}"))
    assert "used by stream(s)" in error_of(admin.patch(f"/api/kafka_clusters/{cid}", json={"name": _name()}))
    for s in admin.get("/api/streams").json()["data"]:
        if (s.get("altdata") or {}).get("cluster") == name:
            assert admin.delete(f"/api/streams/{s['id']}").status_code == 200
    assert admin.delete(f"/api/kafka_clusters/{cid}").status_code == 200
    assert "Could not retrieve" in error_of(admin.get(f"/api/kafka_clusters/{cid}"))
