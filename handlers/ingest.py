"""/api/ingest_stats: ingestion counters and consumer status."""

from broker.ingest.consumers import ingest_stats

from .base import BaseHandler, endpoint


class IngestStatsHandler(BaseHandler):
    @endpoint("Ingestion counters per stream and filter, each live consumer's partitions, lag and rate",
              tags="system_info", acls=("System admin",))
    def get(self):
        with self.session() as session:
            # a consumer that missed three reports is gone (a dead one's row is also removed by its parent)
            self.success(ingest_stats(session, stale_after_s=max(30.0, 3 * self.config.ingest.stats_interval_s)))
