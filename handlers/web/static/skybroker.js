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

  // Show an API error next to the field it names (data.field, or each of data.errors), else in `fallback`.
  function showErrors(form, answer, fallback) {
    clearErrors(form);
    const data = answer.data || {};
    const errors = Object.assign({}, data.errors || {});
    if (data.field && !(data.field in errors)) errors[data.field] = answer.message;
    let shown = 0;
    for (const [field, message] of Object.entries(errors)) {
      const slot = form && fieldSlot(form, field);
      if (slot) {
        slot.textContent = message;
        shown += 1;
      }
    }
    if (fallback && (shown === 0 || !data.field)) fallback.textContent = answer.message;
  }

  function fieldSlot(form, field) {
    const names = [field, field.replace(/^payload\./, "")];
    for (const name of names) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
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
