"""/api/ingest_stats: ingestion counters and consumer status."""

import sqlalchemy as sa

import models
from broker.ingest.consumers import counters

from .base import BaseHandler, endpoint


class IngestStatsHandler(BaseHandler):
    @endpoint("Ingestion counters per stream and filter, and each consumer's partitions, lag and rate",
              tags="system_info", acls=("System admin",))
    def get(self):
        with self.session() as session:
            consumers = [c.to_dict() for c in session.execute(
                sa.select(models.IngestStatus).order_by(models.IngestStatus.consumer)).scalars()]
            self.success({"counters": counters(session), "consumers": consumers,
                          "failed_alerts": session.execute(
                              sa.select(sa.func.count()).select_from(models.FailedAlert)).scalar_one()})
