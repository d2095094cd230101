// The scanning page: save a candidate to a group (POST /api/sources) or reject it (SkyPortal's
// rejected_candidates listing, POST /api/listing) in one click.
"use strict";

const rejectList = document.getElementById("candidates")?.dataset.rejectList;

document.querySelectorAll("tr.candidate").forEach((row) => {
  const objId = row.dataset.objId;
  const status = row.querySelector(".row-status");
  const say = (text, ok) => { status.textContent = text; status.className = "row-status " + (ok ? "ok" : "field-error"); };

  row.querySelector("button.save").addEventListener("click", async () => {
    const select = row.querySelector("select.save-group");
    const answer = await skybroker.api("POST", "/api/sources", { id: objId, group_ids: [Number(select.value)] });
    if (answer.status === "success") {
      say("saved", true);
      const saved = row.querySelector(".saved-groups");
      const name = select.options[select.selectedIndex].text;
      if (!saved.textContent.includes(name)) {
        saved.appendChild(document.createTextNode(name));
        saved.appendChild(document.createElement("br"));
      }
    } else {
      say(answer.message, false);
    }
  });

  row.querySelector("button.reject").addEventListener("click", async () => {
    const answer = await skybroker.api("POST", "/api/listing", { obj_id: objId, list_name: rejectList });
    if (answer.status === "success") {
      row.classList.add("rejected");
      say("rejected", true);
    } else {
      say(answer.message, false);
    }
  });
});
