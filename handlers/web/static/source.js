// The source page: add a comment, submit a follow-up request from the allocation's form, and keep the
// requests' statuses current (re-read from the API every few seconds while the page is open).
"use strict";

(() => {
  const commentForm = document.getElementById("comment-form");
  if (commentForm) {
    commentForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const objId = commentForm.dataset.objId;
      const text = commentForm.querySelector("textarea[name=text]").value;
      const answer = await skybroker.api("POST", `/api/sources/${encodeURIComponent(objId)}/comments`, { text });
      if (answer.status === "success") {
        window.location.reload();
      } else {
        skybroker.showErrors(commentForm, answer, commentForm.querySelector(".form-error"));
      }
    });
  }

  const form = document.getElementById("followup-form");
  if (form) {
    const select = form.querySelector("#allocation");
    const fieldsets = () => form.querySelectorAll("fieldset.allocation-form");
    const chosen = () => form.querySelector(`fieldset[data-allocation-id="${select.value}"]`);
    select.addEventListener("change", () => {
      fieldsets().forEach((fs) => { fs.hidden = fs.disabled = fs !== chosen(); });
      skybroker.clearErrors(form);
    });

    // a field's value as the schema types it; undefined leaves it out of the payload
    const numeric = (kind) => kind === "number" || kind === "integer";
    const typed = (field, value) => (numeric(field.dataset.itemKind) ? Number(value) : value);
    const valueOf = (field) => {
      const kind = field.dataset.kind;
      if (kind === "choices") {
        return Array.from(field.querySelectorAll("input:checked")).map((i) => typed(field, i.value));
      }
      const input = field.querySelector("input, select");
      if (kind === "boolean") return input.checked ? true : undefined;
      const raw = input.value.trim();
      if (raw === "") return undefined;
      if (numeric(kind)) return Number(raw);
      if (kind === "select") return typed(field, raw);
      if (kind === "list") {
        return raw.split(",").map((s) => s.trim()).filter((s) => s !== "").map((v) => typed(field, v));
      }
      return raw;
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      skybroker.clearErrors(form);
      document.getElementById("followup-ok").textContent = "";
      const payload = {};
      chosen().querySelectorAll(".form-field").forEach((field) => {
        const value = valueOf(field);
        if (value !== undefined) payload[field.dataset.name] = value;
      });
      const body = { obj_id: form.dataset.objId, allocation_id: Number(select.value), payload };
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const answer = await skybroker.api("POST", "/api/followup_request", body);
      button.disabled = false;
      if (answer.status === "success") {
        document.getElementById("followup-ok").textContent = `Request ${answer.data.id} submitted`;
        window.location.reload();
      } else {
        // beside the chosen form's fields, the allocation, or (the facility's whole refusal) the payload
        skybroker.showErrors(form, answer, form.querySelector(".form-error"));
      }
    });
  }

  // follow the requests' statuses while any is unfinished (the worker polls the facilities; this page
  // re-reads what it stored), one read at a time
  const FINAL = new Set(["completed", "expired", "failed", "cancelled", "rejected", "error"]);
  const table = document.getElementById("followup-requests");
  const rows = table ? Array.from(table.querySelectorAll("tr.followup")) : [];
  const refresh = async () => {
    const answer = await skybroker.api("GET", `/api/followup_request?sourceID=${encodeURIComponent(table.dataset.objId)}&numPerPage=500`);
    let open = rows.length;
    if (answer.status === "success") {
      const byId = new Map(answer.data.followup_requests.map((r) => [String(r.id), r]));
      open = 0;
      rows.forEach((row) => {
        const r = byId.get(row.dataset.requestId);
        if (!r) return;
        row.querySelector(".status").textContent = r.status;
        if (!FINAL.has(r.facility_status)) open += 1;
      });
    }
    if (open > 0) setTimeout(refresh, 3000);
  };
  if (rows.length) setTimeout(refresh, 3000);
})();
