/* dxassist audit page: GET /api/v1/audit with the filters, which stay in the address bar. */
"use strict";

(() => {
  const { el, api, formatDateTime } = window.dx;
  const form = document.getElementById("audit-filters");
  const tbody = document.querySelector("#audit-table tbody");
  const empty = document.getElementById("audit-empty");
  const errorBox = document.getElementById("audit-error");
  const FIELDS = ["user", "study", "action", "since", "until", "limit"];

  function params() {
    const out = new URLSearchParams();
    for (const name of FIELDS) {
      const value = form.elements[name].value.trim();
      if (value) out.set(name, value);
    }
    return out;
  }

  function readUrl() {
    const given = new URLSearchParams(location.search);
    for (const name of FIELDS) {
      const value = given.get(name);
      if (value !== null) form.elements[name].value = value;
    }
  }

  function detailText(detail) {
    if (detail === null || detail === undefined) return "";
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  function row(e) {
    const study = e.study_id
      ? el("a", { href: `/studies/${encodeURIComponent(e.study_id)}`, class: "mono", text: e.study_id.slice(0, 8) })
      : "";
    return el(
      "tr",
      { data: { action: e.action, id: String(e.id) } },
      el("td", { class: "col-num", text: String(e.id) }),
      el("td", { title: e.at, text: formatDateTime(e.at) }),
      el("td", { text: e.actor }),
      el("td", { text: e.actor_role || "" }),
      el("td", { class: "mono", text: e.action }),
      el("td", {}, study),
      el("td", { class: "mono", text: e.client || "" }),
      el("td", { class: "mono", text: detailText(e.detail) }),
    );
  }

  async function load() {
    const query = params();
    const search = query.toString();
    const shown = new URLSearchParams(query);
    if (shown.get("limit") === "100") shown.delete("limit"); // the default
    const bar = shown.toString();
    history.replaceState(null, "", bar ? `?${bar}` : location.pathname);
    try {
      const data = await api(`/api/v1/audit${search ? `?${search}` : ""}`);
      errorBox.hidden = true;
      tbody.replaceChildren(...data.items.map(row));
      empty.hidden = data.items.length > 0;
    } catch (err) {
      errorBox.textContent = `The audit trail cannot be shown: ${err.message}`;
      errorBox.hidden = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  form.addEventListener("reset", () => setTimeout(load, 0));
  readUrl();
  load();
})();
