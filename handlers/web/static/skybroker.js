// skybroker's pages call the API itself: the sign-in cookie authenticates, the page's XSRF token
// (a meta tag) guards writes. Errors come back in SkyPortal's envelope; ours names the field in data.field.
"use strict";

const skybroker = (() => {
  const xsrf = () => document.querySelector('meta[name="xsrf-token"]').content;

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-XSRFToken": xsrf() } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      return { status: "error", message: `The server could not be reached (${err.message})`, data: {} };
    }
    try {
      return await resp.json();
    } catch (err) {
      return { status: "error", message: `HTTP ${resp.status}: the answer was not JSON`, data: {} };
    }
  }

  // Show an API error beside the fields it names (data.errors: a facility's messages per field; else
  // data.field: the field the message is about), else in `fallback`. Only the visible fields count (a
  // form may hold several allocations' fieldsets).
  function showErrors(form, answer, fallback) {
    clearErrors(form);
    const data = answer.data || {};
    const errors = data.errors && Object.keys(data.errors).length ? data.errors
      : (data.field ? { [data.field]: answer.message } : {});
    let shown = 0;
    for (const [field, message] of Object.entries(errors)) {
      const slot = fieldSlot(form, field);
      if (slot) {
        slot.textContent = message;
        shown += 1;
      }
    }
    if (shown === 0 && fallback) fallback.textContent = answer.message;
  }

  function fieldSlot(form, field) {
    for (const name of [field, field.replace(/^payload\./, "")]) {
      const slot = Array.from(form.querySelectorAll(`[data-error-for="${CSS.escape(name)}"]`))
        .find((el) => !el.closest("fieldset[disabled]"));
      if (slot) return slot;
    }
    return null;
  }

  function clearErrors(form) {
    if (!form) return;
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
    form.querySelectorAll(".form-error").forEach((el) => { el.textContent = ""; });
  }

  // Render a Bokeh document (made once on the server for many pages) into element `id`, then put this
  // page's data into its named sources; the element gets data-ready="1" once drawn with its data.
  async function plot(id, docScriptId, dataScriptId) {
    const item = JSON.parse(document.getElementById(docScriptId).textContent);
    const data = JSON.parse(document.getElementById(dataScriptId).textContent);
    await Bokeh.embed.embed_item(item, id);
    const doc = Bokeh.documents[Bokeh.documents.length - 1];
    for (const [name, columns] of Object.entries(data)) {
      const source = doc.get_model_by_name(name);
      if (source) source.data = columns;
    }
    document.getElementById(id).dataset.ready = "1";
    return doc;
  }

  return { api, showErrors, clearErrors, plot };
})();
