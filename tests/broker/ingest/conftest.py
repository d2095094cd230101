"""Two more Kafka clusters for the tests of external clusters, started once per session when first asked
for: SASL/SCRAM-SHA-512 over TLS, and SASL/OAUTHBEARER with a local token endpoint."""

import pytest

from broker.runtime.kafka import ClientListener, LocalKafka, free_port

from .secure_kafka import TokenEndpoint, make_tls

SCRAM_USER, SCRAM_PASSWORD = "skybroker-reader", "scram-pa55word"
OAUTH_CLIENT, OAUTH_SECRET = "skybroker-client", "oauth-s3cret"


def _kafka(config, directory, listener) -> LocalKafka:
    return LocalKafka(version=config.kafka.local.version, data_dir=directory, cache_dir=config.paths.cache_dir,
                      port=free_port(), controller_port=free_port(), heap="384m", listener=listener)


@pytest.fixture(scope="session")
def scram_kafka(tmp_path_factory, config):
    """A cluster whose clients must use SASL_SSL with SCRAM-SHA-512 (a CA made here); ``.ca_pem`` is that CA.
    Producers in tests use its PLAINTEXT listener (``bootstrap_servers``)."""
    root = tmp_path_factory.mktemp("kafka-scram")
    ca_pem = make_tls(root / "tls")
    kafka = _kafka(config, root / "kafka", ClientListener(
        port=free_port(), protocol="SASL_SSL", mechanism="SCRAM-SHA-512", keystore_pem=root / "tls" / "keystore.pem",
        users={SCRAM_USER: SCRAM_PASSWORD}))
    kafka.ca_pem = ca_pem
    kafka.start(progress=lambda msg: print(msg, flush=True))
    yield kafka
    kafka.stop()


@pytest.fixture(scope="session")
def oauth_kafka(tmp_path_factory, config):
    """A cluster whose clients must use SASL_PLAINTEXT with OAUTHBEARER; ``.tokens`` is its token endpoint."""
    with TokenEndpoint(OAUTH_CLIENT, OAUTH_SECRET) as tokens:
        kafka = _kafka(config, tmp_path_factory.mktemp("kafka-oauth"),
                       ClientListener(port=free_port(), protocol="SASL_PLAINTEXT", mechanism="OAUTHBEARER"))
        kafka.tokens = tokens
        kafka.start(progress=lambda msg: print(msg, flush=True))
        yield kafka
        kafka.stop()
