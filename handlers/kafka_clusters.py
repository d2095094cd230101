"""/api/kafka_clusters: the Kafka clusters streams read from (our addition; System admins only)."""

from broker.ingest import clusters as svc
from broker.validation import nullable, obj, string

from .base import BaseHandler, endpoint

_SECRET = " (secret: stored encrypted, never returned; null removes it)"
FIELDS = {
    "name": string("Unique name, used in a stream's altdata.cluster ('default' is the configuration's cluster)",
                   minLength=1, maxLength=100),
    "bootstrap_servers": string("host:port[,host:port...]", minLength=1, maxLength=2000),
    "security_protocol": string("How to connect", enum=list(svc.PROTOCOLS)),
    "sasl_mechanism": nullable(string("SASL mechanism (SASL_* protocols)", enum=[*svc.MECHANISMS, None])),
    "group_id": nullable(string("Consumer group on this cluster (null: the configuration's kafka.group_id)",
                                minLength=1, maxLength=255)),
    "sasl_username": nullable(string("SASL user name (PLAIN, SCRAM)", maxLength=1000)),
    "sasl_password": nullable(string("SASL password" + _SECRET, maxLength=1000)),
    "oauth_client_id": nullable(string("OAuth client id (OAUTHBEARER: client-credentials flow)", maxLength=1000)),
    "oauth_client_secret": nullable(string("OAuth client secret" + _SECRET, maxLength=1000)),
    "oauth_token_endpoint_url": nullable(string("OAuth token endpoint (http or https URL)", maxLength=2000)),
    "oauth_scope": nullable(string("OAuth scope to ask for (optional)", maxLength=1000)),
    "ssl_ca_pem": nullable(string("CA certificate(s), PEM (SSL protocols; default: the certifi bundle)",
                                  maxLength=200_000)),
    "ssl_certificate_pem": nullable(string("Client certificate, PEM (mutual TLS)", maxLength=200_000)),
    "ssl_key_pem": nullable(string("Client private key, PEM" + _SECRET, maxLength=200_000)),
    "ssl_key_password": nullable(string("Password of the client private key" + _SECRET, maxLength=1000)),
    "options": nullable({"type": "object", "description": "Other librdkafka client properties that are not "
                         "secret (e.g. {\"ssl.endpoint.identification.algorithm\": \"none\"})",
                         "additionalProperties": {"type": ["string", "number", "boolean"]}}),
    "preset": string("'gcn': NASA's GCN Kafka with OAuth (give oauth_client_id and oauth_client_secret)",
                     enum=["gcn"]),
    "domain": string("With preset 'gcn': gcn.nasa.gov (default), test.gcn.nasa.gov or dev.gcn.nasa.gov",
                     enum=list(svc.GCN_DOMAINS)),
}
CLUSTER_POST = obj(FIELDS, required=("name",))
CLUSTER_PATCH = obj(FIELDS, minProperties=1)


class KafkaClusterHandler(BaseHandler):
    @endpoint("Our addition: the Kafka clusters streams read from, with each one's consumers, lag and last "
              "error (the configuration's 'default' cluster first, with id null); secrets are only named",
              tags="system_info", acls=("System admin",))
    def get(self, cluster_id=None):
        vault = self.application.followup.vault
        with self.session() as session:
            if cluster_id is None:
                self.success(svc.list_clusters(session, self.principal, self.config, vault))
                return
            row = svc.get_cluster(session, self.principal, int(cluster_id))
            status = svc.cluster_status(session, svc.live_window_s(self.config))
            self.success(svc.cluster_to_dict(row, vault, status.get(row.name)))

    @endpoint("Our addition: add a Kafka cluster (bootstrap servers and security: PLAINTEXT, SSL, SASL "
              "PLAIN/SCRAM, OAUTHBEARER with client credentials; preset 'gcn' for NASA's GCN Kafka)",
              tags="system_info", acls=("System admin",), body=CLUSTER_POST)
    def post(self):
        with self.session() as session, session.begin():
            row = svc.create_cluster(session, self.principal, self.application.followup.vault, self.body)
            self.success({"id": row.id})

    @endpoint("Our addition: change a Kafka cluster; secrets not named stay as they are, and its consumers "
              "are remade within ingest.refresh_interval_s", tags="system_info", acls=("System admin",),
              body=CLUSTER_PATCH)
    def patch(self, cluster_id):
        with self.session() as session, session.begin():
            svc.update_cluster(session, self.principal, self.application.followup.vault, int(cluster_id),
                               self.body)
        self.success()

    @endpoint("Our addition: remove a Kafka cluster that no stream reads", tags="system_info",
              acls=("System admin",))
    def delete(self, cluster_id):
        with self.session() as session, session.begin():
            svc.delete_cluster(session, self.principal, int(cluster_id))
        self.success()
