"""The pure parts of external clusters: librdkafka properties for each security set-up (GCN's as gcn-kafka makes
them), topic subscriptions (names, patterns, ZTF's nightly {date} names), which stream a topic belongs to, and
where a stream starts."""

from dataclasses import replace
from datetime import date, datetime

import pytest

from broker.errors import ValidationError
from broker.ingest.clusters import ClusterSpec, _preset, default_cluster
from broker.ingest.consumers import consumer_config
from broker.ingest.pipeline import StreamInfo, StreamRoutes, parse_start, subscription
from broker.runtime.config import Secret


def test_scram_over_tls_with_a_ca_of_its_own():
    spec = ClusterSpec("c", "b1:9094,b2:9094", "SASL_SSL", "SCRAM-SHA-256", settings={
        "sasl_username": "u", "ssl_ca_pem": "PEM"}, secrets={"sasl_password": "pw"}, id=3)
    assert spec.client_config() == {"bootstrap.servers": "b1:9094,b2:9094", "security.protocol": "SASL_SSL",
                                    "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "u", "sasl.password": "pw",
                                    "ssl.ca.pem": "PEM"}
    assert "pw" not in repr(spec)


def test_oauthbearer_client_credentials_as_gcn_kafka_configures_them():
    """preset gcn gives what gcn_kafka.Consumer(client_id=..., client_secret=...) gives librdkafka."""
    import certifi

    body = _preset({"name": "gcn", "preset": "gcn", "oauth_client_id": "id", "oauth_client_secret": "secret"})
    spec = ClusterSpec("gcn", body["bootstrap_servers"], body["security_protocol"], body["sasl_mechanism"],
                       settings={k: body[k] for k in ("oauth_client_id", "oauth_token_endpoint_url")},
                       secrets={"oauth_client_secret": body["oauth_client_secret"]}, id=1)
    assert spec.client_config() == {
        "bootstrap.servers": "kafka.gcn.nasa.gov", "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": "id",
        "sasl.oauthbearer.client.secret": "secret",
        "sasl.oauthbearer.token.endpoint.url": "https://auth.gcn.nasa.gov/oauth2/token",
        "ssl.ca.location": certifi.where(), "https.ca.location": certifi.where()}


def test_mutual_tls_and_extra_options():
    spec = ClusterSpec("c", "b:9093", "SSL", settings={"ssl_ca_pem": "CA", "ssl_certificate_pem": "CERT",
                                                       "options": {"ssl.endpoint.identification.algorithm": "none"}},
                       secrets={"ssl_key_pem": "KEY", "ssl_key_password": "kp"}, id=2)
    assert spec.client_config() == {"bootstrap.servers": "b:9093", "security.protocol": "SSL", "ssl.ca.pem": "CA",
                                    "ssl.certificate.pem": "CERT", "ssl.key.pem": "KEY", "ssl.key.password": "kp",
                                    "ssl.endpoint.identification.algorithm": "none"}


def test_consumer_groups_and_offset_keys_per_cluster(config):
    default = default_cluster(config)
    other = ClusterSpec("gcn", "b:9092", id=7)
    own = ClusterSpec("mine", "b:9092", group_id="my-group", id=8)
    assert default.offsets_key("g") == "g"  # the rows ingest_offsets already holds
    assert (other.offsets_key("g"), own.offsets_key("g")) == ("g@cluster7", "my-group@cluster8")
    conf = consumer_config(config, own)
    assert (conf["group.id"], conf["bootstrap.servers"], conf["enable.auto.commit"]) == ("my-group", "b:9092", False)
    assert consumer_config(config)["group.id"] == config.kafka.group_id
    assert other.fingerprint() != replace(other, secrets={"sasl_password": "new"}).fingerprint()


def test_the_default_cluster_from_the_configuration(config):
    k = replace(config.kafka, security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
                sasl_password=Secret("pw"), ssl_ca_location="/etc/ssl/ca.pem")
    conf = default_cluster(replace(config, kafka=k)).client_config()
    assert conf == {"bootstrap.servers": k.bootstrap_servers, "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "pw",
                    "ssl.ca.location": "/etc/ssl/ca.pem"}


def test_subscriptions():
    import re

    today = date(2026, 3, 1)
    assert subscription("ztf_20260301_programid1", today) == "ztf_20260301_programid1"
    assert subscription("^ztf_.*_programid1$", today) == "^ztf_.*_programid1$"
    nightly = subscription("ztf_{date}_programid1", today)
    assert nightly.startswith("^")
    matches = [t for t in ("ztf_20260301_programid1", "ztf_20260228_programid1", "ztf_20260227_programid1",
                           "ztf_20260301_programid2", "ztfX20260301_programid1") if re.search(nightly, t)]
    assert matches == ["ztf_20260301_programid1", "ztf_20260228_programid1"]  # today and yesterday (leap year: no)


def _info(i, topic):
    return StreamInfo(i, f"s{i}", topic, "ztf_avro", ())


def test_topics_find_their_stream():
    routes = StreamRoutes({"exact": _info(1, "exact")},
                          [("^ztf_.*_programid1$", _info(2, "^ztf_.*_programid1$")), ("^ztf_", _info(3, "^ztf_"))])
    assert routes.subscription == ["exact", "^ztf_", "^ztf_.*_programid1$"]
    assert routes["exact"].id == 1
    assert routes.get("ztf_20260301_programid1").id == 2  # first pattern that matches, by stream id
    assert routes.get("ztf_20260301_programid2").id == 3
    assert routes.get("other") is None and routes.get("other") is None and "other" in routes.misses
    with pytest.raises(KeyError):
        routes["other"]


def test_where_a_stream_starts():
    assert parse_start(None) == "earliest" and parse_start("latest") == "latest"
    assert parse_start("2026-11-20") == datetime(2026, 11, 20)
    assert parse_start("2026-11-20T12:00:00+02:00") == datetime(2026, 11, 20, 10)
    with pytest.raises(ValidationError, match="altdata.start"):
        parse_start("last tuesday")


def test_topic_creation_reports_each_topic(config, kafka_bootstrap):
    """A topic the cluster refuses is named on its own; the others asked for with it are still made."""
    import uuid

    from confluent_kafka.admin import AdminClient

    from broker.ingest.clusters import TopicError, ensure_topics

    spec = default_cluster(replace(config, kafka=replace(config.kafka, bootstrap_servers=kafka_bootstrap)))
    good, bad = f"made-{uuid.uuid4().hex[:8]}", "no spaces allowed here"
    with pytest.raises(TopicError) as exc:
        ensure_topics(spec, {good: 2, bad: 1})
    assert exc.value.failed == [bad] and exc.value.created == [good] and bad in exc.value.message
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(timeout=10).topics[good].partitions) == 2
    assert ensure_topics(spec, {good: 2}) == []  # there now: nothing to make
    for fut in admin.delete_topics([good]).values():
        fut.result(30)
