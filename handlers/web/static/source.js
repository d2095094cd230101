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
    const valueOf = (field) => {
      const kind = field.dataset.kind;
      if (kind === "choices") {
        return Array.from(field.querySelectorAll("input:checked")).map((i) => i.value);
      }
      const input = field.querySelector("input, select");
      if (kind === "boolean") return input.checked ? true : undefined;
      const raw = input.value.trim();
      if (raw === "") return undefined;
      if (kind === "number" || kind === "integer") return Number(raw);
      if (kind === "list") {
        const items = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
        return field.dataset.itemKind === "integer" || field.dataset.itemKind === "number" ? items.map(Number) : items;
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
        skybroker.showErrors(chosen(), answer, form.querySelector(".form-error"));
        const payloadSlot = form.querySelector('[data-error-for="payload"]');
        const data = answer.data || {};
        if (data.field === "payload" && !data.errors) payloadSlot.textContent = answer.message;
        if (data.field === "allocation_id") form.querySelector('[data-error-for="allocation_id"]').textContent = answer.message;
      }
    });
  }

  // follow the requests' statuses (the worker polls the facilities; this page re-reads what it stored)
  const table = document.getElementById("followup-requests");
  const rows = table ? table.querySelectorAll("tr.followup") : [];
  if (rows.length) {
    const refresh = async () => {
      const answer = await skybroker.api("GET", `/api/followup_request?sourceID=${encodeURIComponent(table.dataset.objId)}&numPerPage=500`);
      if (answer.status !== "success") return;
      const byId = new Map(answer.data.followup_requests.map((r) => [String(r.id), r]));
      rows.forEach((row) => {
        const r = byId.get(row.dataset.requestId);
        if (r) row.querySelector(".status").textContent = r.status;
      });
    };
    setInterval(refresh, Number(document.body.dataset.refreshMs || 3000));
  }
})();
