"""/candidates: the scanning page of a filter or group (SkyPortal's Candidates page)."""

from __future__ import annotations

import models

from broker.access.auth import readable_filters, readable_groups
from broker.errors import ValidationError
from broker.followup.reports import latest_magnitudes
from broker.objects import candidates as cands
from broker.objects.objs import DETECTION_SNR

from ..base import QueryArgs
from ..candidates import candidate_query
from .base import PageHandler

REJECT_LIST = "rejected_candidates"  # SkyPortal's list of the scanner's rejected candidates
# the page's filter form: (query argument, label, input type); the same names the API takes
FIELDS = (("startDate", "Passed after (UTC)", "date"), ("endDate", "Passed before (UTC)", "date"),
          ("minLatestMagnitude", "Latest mag ≤", "number"), ("maxLatestMagnitude", "Latest mag ≥", "number"),
          ("classifications", "Classified as", "text"), ("classificationsReject", "Not classified as", "text"))
SAVED = (("all", "all"), ("notSavedToAnyAccessible", "not saved"), ("savedToAnyAccessible", "saved"))


class CandidatesPage(QueryArgs, PageHandler):
    async def get(self):
        args = {name: self.get_query_argument(name, "") for name in
                ("filterIDs", "groupIDs", "savedStatus", "showRejected", "numPerPage", *(f[0] for f in FIELDS))}
        out, error = await self.in_pool(self._read)
        self.render_page("candidates.html", args=args, fields=FIELDS, saved_options=SAVED, error=error,
                         reject_list=REJECT_LIST, **out)

    def _read(self) -> tuple[dict, ValidationError | None]:
        with self.session() as session:
            filters = [(f.id, f.name) for f in session.execute(readable_filters(self.principal)
                                                               .order_by(models.Filter.id)).scalars()]
            groups = [(g.id, g.name) for g in session.execute(readable_groups(self.principal)
                                                              .order_by(models.Group.name)).scalars()
                      if not g.single_user_group]
            base = {"filters": filters, "groups": groups, "page": None, "mags": {}}
            try:
                page = self.page(default=25)
                q = candidate_query(self)
                if q.list_name_reject is None and not self.bool_arg("showRejected"):
                    q.list_name_reject = REJECT_LIST
                result = cands.list_candidates(session, self.principal, q, page, self.str_arg("queryID"))
            except ValidationError as exc:  # a bad filter value: the form shows it beside the field
                return base, exc
            ids = [c["id"] for c in result["candidates"]]
            # the latest detection's magnitude, as the magnitude filter reads it
            base.update(page=result, mags=latest_magnitudes(session, self.principal, ids, snr=DETECTION_SNR))
            return base, None
