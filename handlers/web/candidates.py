"""/candidates: the scanning page of a filter or group (SkyPortal's Candidates page)."""

from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa

from broker.access.auth import readable_filters, readable_groups
from broker.errors import ValidationError
from broker.followup.reports import latest_magnitudes
from broker.objects import candidates as cands
from broker.objects import objs as svc

from ..base import QueryArgs
from .base import PageHandler

REJECT_LIST = "rejected_candidates"  # SkyPortal's list of the scanner's rejected candidates
# the page's filter form: (query argument, label, input type); the same names the API takes
FIELDS = (("startDate", "Passed after (UTC)", "datetime-local"), ("endDate", "Passed before (UTC)", "datetime-local"),
          ("minLatestMagnitude", "Latest mag ≤", "number"), ("maxLatestMagnitude", "Latest mag ≥", "number"),
          ("classifications", "Classified as", "text"), ("classificationsReject", "Not classified as", "text"))
SAVED = (("all", "all"), ("notSavedToAnyAccessible", "not saved"), ("savedToAnyAccessible", "saved"))


class CandidatesPage(QueryArgs, PageHandler):
    async def get(self):
        args = {name: self.get_query_argument(name, "") for name in
                ("filterIDs", "groupIDs", "savedStatus", "showRejected", "numPerPage", *(f[0] for f in FIELDS))}
        out, error = await self.in_pool(self._read)
        self.render_page("candidates.html", args=args, fields=FIELDS, saved_options=SAVED, error=error,
                         reject_list=REJECT_LIST, page_link=self.page_link, **out)

    def page_link(self, number: int, query_id: str | None) -> str:
        """This page's query at page ``number``, with the answer's queryID (its total is reused)."""
        args = [(k, v) for k, vs in self.request.query_arguments.items() if k not in ("pageNumber", "queryID")
                for v in (x.decode("utf-8", "replace") for x in vs)]
        args += [("pageNumber", str(number))] + ([("queryID", query_id)] if query_id else [])
        return "?" + urlencode(args)

    def _read(self) -> tuple[dict, ValidationError | None]:
        with self.session() as session:
            filters = [(f.id, f.name, f.group_id) for f in session.execute(readable_filters(self.principal)
                                                                         .order_by(sa.text("id"))).scalars()]
            groups = [(g.id, g.name) for g in session.execute(readable_groups(self.principal)
                                                              .order_by(sa.text("name"))).scalars()
                      if not g.single_user_group]
            base = {"filters": filters, "groups": groups, "page": None, "mags": {}}
            try:
                page = self.page(default=25)
                q = cands.CandidateQuery(
                    filter_ids=svc.parse_ids(self.str_arg("filterIDs"), "filterIDs"),
                    group_ids=svc.parse_ids(self.str_arg("groupIDs"), "groupIDs"),
                    saved_status=self.str_arg("savedStatus", "all"),
                    start_date=svc.parse_date(self.str_arg("startDate"), "startDate"),
                    end_date=svc.parse_date(self.str_arg("endDate"), "endDate"),
                    classifications=svc.parse_strings(self.str_arg("classifications")),
                    classifications_reject=svc.parse_strings(self.str_arg("classificationsReject")),
                    min_latest_magnitude=self.float_arg("minLatestMagnitude"),
                    max_latest_magnitude=self.float_arg("maxLatestMagnitude"),
                    list_name_reject=None if self.bool_arg("showRejected") else REJECT_LIST,
                )
                result = cands.list_candidates(session, self.principal, q, page, self.str_arg("queryID"))
            except ValidationError as exc:  # a bad filter value: the form shows it beside the field
                return base, exc
            ids = [c["id"] for c in result["candidates"]]
            base.update(page=result, mags=latest_magnitudes(session, self.principal, ids))
            return base, None
