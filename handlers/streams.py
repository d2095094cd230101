"""/api/streams and their users."""

from broker.access import streams as svc
from broker.ingest.clusters import cluster_status, live_window_s
from broker.ingest.decoding import FORMATS
from broker.validation import boolean, integer, nullable, obj, string

import models

from .base import BaseHandler, endpoint

ALTDATA = nullable({
    "type": "object",
    "description": 'Stream settings: {"topic": Kafka topic, "format": ' + " | ".join(f'"{f}"' for f in FORMATS)
                   + ', '
                   '"cluster": Kafka cluster name (default: "default", the configuration\'s), "start": "earliest" | '
                   '"latest" | ISO date or time, "classifications": {"taxonomy_id": id, "scores": {score name: '
                   'class name}}}. Our additions: cluster, start, topic patterns and {date} names',
    "properties": {
        "topic": {"type": "string", "minLength": 1, "maxLength": 1000,
                  "description": "A topic name; a pattern starting with '^' (a regular expression, e.g. "
                                 "'^ztf_.*_programid1$'); or a name with {date}, today's and yesterday's UTC date "
                                 "as YYYYMMDD (e.g. 'ztf_{date}_programid1')"},
        "format": {"type": "string", "enum": list(FORMATS)},
        "cluster": {"type": "string", "minLength": 1, "maxLength": 100,
                    "description": "Name of the Kafka cluster to read from (/api/kafka_clusters)"},
        "partitions": {"type": "integer", "minimum": 1, "maximum": 1000,
                       "description": "Partitions of the topic when skybroker creates it (default "
                                      "kafka.topic_partitions)"},
        "start": {"type": "string", "minLength": 1, "maxLength": 40,
                  "description": "Where the consumer group starts on a topic it has not read yet: 'earliest' "
                                 "(default), 'latest', or an ISO date or time (UTC)"},
        "classifications": {
            "type": "object",
            "properties": {"taxonomy_id": {"type": "integer"},
                           "scores": {"type": "object", "additionalProperties": {"type": "string"}}},
            "required": ["taxonomy_id"],
            "additionalProperties": False,
        },
    },
})
AUTO_JOIN = "Any user may add themselves to this stream, and every user sees it (default false)"
STREAM_POST = obj({"name": string("Stream name (unique)", minLength=1), "altdata": ALTDATA,
                   "auto_join": boolean(AUTO_JOIN)},
                  required=("name",))
STREAM_PATCH = obj({"name": string("Stream name (unique)", minLength=1), "altdata": ALTDATA,
                    "auto_join": nullable(boolean(AUTO_JOIN + "; null leaves it unchanged"))},
                   minProperties=1)
STREAM_USER_POST = obj({"user_id": integer("ID of the user to give access")}, required=("user_id",))


class StreamHandler(BaseHandler):
    @endpoint("Retrieve all streams the user can read (theirs and every auto-join stream), or one; a stream "
              "Kafka reads has ingest_status (our addition): its cluster, consumers and current errors",
              tags="streams")
    def get(self, stream_id=None):
        with self.session() as session:
            status = cluster_status(session, live_window_s(self.config))
            if stream_id is None:
                rows = session.execute(svc.readable_streams(self.principal).order_by(models.Stream.id)).scalars()
                self.success([svc.stream_to_dict(s, status) for s in rows])
            else:
                self.success(svc.stream_to_dict(svc.get_stream(session, self.principal, int(stream_id)), status))

    @endpoint("POST a new stream", tags="streams", acls=("Manage streams",), body=STREAM_POST)
    def post(self):
        with self.session() as session, session.begin():
            stream = svc.create_stream(session, self.principal, self.body)
            self.success({"id": stream.id})

    @endpoint("Update a stream", tags="streams", acls=("Manage streams",), body=STREAM_PATCH)
    def patch(self, stream_id):
        with self.session() as session, session.begin():
            svc.update_stream(session, self.principal, int(stream_id), self.body)
        self.success()

    @endpoint("Delete a stream", tags="streams", acls=("Manage streams",))
    def delete(self, stream_id):
        with self.session() as session, session.begin():
            svc.delete_stream(session, self.principal, int(stream_id))
        self.success()


class StreamUserHandler(BaseHandler):
    @endpoint("Grant a user access to a stream (stream managers: anyone; any user: themselves, to an auto-join "
              "stream)", tags="streams", body=STREAM_USER_POST)
    def post(self, stream_id):
        with self.session() as session, session.begin():
            su = svc.add_user(session, self.principal, int(stream_id), self.body["user_id"])
            self.success({"stream_id": su.stream_id, "user_id": su.user_id})

    @endpoint("Revoke a user's access to a stream", tags="streams", acls=("Manage streams",))
    def delete(self, stream_id, user_id):
        with self.session() as session, session.begin():
            svc.remove_user(session, self.principal, int(stream_id), int(user_id))
        self.success()
