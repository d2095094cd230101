"""/allocations: each allocation's hours used against granted and its requests by status, per instrument,
with the report and schedule plots the API makes (GET /api/allocation/report/{id}, GET
/api/followup_request/schedule/{id})."""

from __future__ import annotations

from broker.followup import allocations as asvc
from broker.followup import reports

from .base import PageHandler


class AllocationsPage(PageHandler):
    async def get(self):
        instruments = await self.in_pool(self._read)
        self.render_page("allocations.html", instruments=instruments)

    def _read(self) -> list[dict]:
        with self.session() as session:
            service = self.application.followup
            ids = sorted({a.instrument_id for a in asvc.list_allocations(session, self.principal, service.adapters)})
            out = []
            for iid in ids:
                report = reports.allocation_report(session, self.principal, iid)
                out.append({**report, "active": reports.active_requests(session, self.principal, iid)})
            return sorted(out, key=lambda r: r["instrument_name"])
