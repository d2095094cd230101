"""/api/ingest_stats: ingestion counters and consumer status."""

from broker.ingest.clusters import live_window_s
from broker.ingest.consumers import ingest_stats

from .base import BaseHandler, endpoint


class IngestStatsHandler(BaseHandler):
    @endpoint("Ingestion counters per stream and filter, each live consumer's partitions, lag and rate",
              tags="system_info", acls=("System admin",))
    def get(self):
        with self.session() as session:
            self.success(ingest_stats(session, stale_after_s=live_window_s(self.config)))
