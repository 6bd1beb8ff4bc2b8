/* dxassist worklist: polls GET /api/v1/worklist, keeps the filters in the address bar. */
"use strict";

(() => {
  const { el } = window.dx;
  const root = document.getElementById("worklist");
  const form = document.getElementById("filters");
  const table = document.getElementById("worklist-table");
  const tbody = table.querySelector("tbody");
  const empty = document.getElementById("worklist-empty");
  const errorBox = document.getElementById("worklist-error");
  const range = document.getElementById("worklist-range");
  const updated = document.getElementById("worklist-updated");
  const title = document.getElementById("worklist-title");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const POLL_MS = Number(root.dataset.pollMs) || 4000;
  const FIELDS = ["status", "priority", "received_from", "received_to", "limit"];

  let offset = 0;
  let total = 0;
  let timer = null;
  let generation = 0; // answers to an older query are dropped

  /* ---- filters <-> address bar ---- */

  function readUrl() {
    const params = new URLSearchParams(location.search);
    for (const name of FIELDS) {
      const value = params.get(name);
      if (value !== null && form.elements[name]) form.elements[name].value = value;
    }
    form.elements.reviewed.checked = params.get("reviewed") === "true";
    offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    params.set("reviewed", form.elements.reviewed.checked ? "true" : "false");
    if (offset) params.set("offset", String(offset));
    return params;
  }

  function writeUrl() {
    const params = query();
    if (params.get("reviewed") === "false") params.delete("reviewed");
    if (params.get("limit") === "50") params.delete("limit");
    const search = params.toString();
    history.replaceState(null, "", search ? `?${search}` : location.pathname);
  }

  function limit() {
    return parseInt(form.elements.limit.value, 10) || 50;
  }

  /* ---- rendering ---- */

  function findingCell(item) {
    if (item.status === "skipped" || item.status === "quarantined") {
      return el(
        "td",
        { class: "col-finding", colspan: "2" },
        el("span", { class: "failure-label", text: item.status === "quarantined" ? "Held: " : "Not analysed: " }),
        el("span", { class: "failure-reason", text: item.failure_reason || "not a chest radiograph" }),
      );
    }
    if (item.status === "failed") {
      return el(
        "td",
        { class: "col-finding failure", colspan: "2" },
        el("span", { class: "failure-label", text: "Analysis failed: " }),
        el("span", { class: "failure-reason", text: item.failure_reason || "no reason recorded" }),
      );
    }
    if (item.review_labels && item.review_labels.length) {
      // reviewed studies: the radiologist's read is what counts; the AI's is in the title
      const names = item.review_labels.map((l) => window.dx.LABEL_NAMES[l] || l).join(", ");
      const ai = item.top_finding ? window.dx.FINDING_NAMES[item.top_finding] || item.top_finding : "none";
      return [
        el("td", { class: "col-finding", title: `AI top finding: ${ai}` },
          el("span", { class: "read-label", text: "Read: " }), names),
        el("td", { class: "col-num", text: window.dx.score(item.abnormal) }),
      ];
    }
    if (!item.top_finding) {
      return el("td", { class: "col-finding muted", colspan: "2", text: "—" });
    }
    return [
      el("td", { class: "col-finding", text: window.dx.FINDING_NAMES[item.top_finding] || item.top_finding }),
      el("td", { class: "col-num", text: window.dx.score(item.abnormal) }),
    ];
  }

  function retryButton(item) {
    return el("button", {
      type: "button",
      class: "retry",
      text: "Retry",
      title: "Queue this study for analysis again",
      onclick: async (event) => {
        event.stopPropagation();
        const button = event.currentTarget;
        button.disabled = true;
        button.textContent = "Queued…";
        try {
          await window.dx.api(item.urls.retry || `/api/v1/studies/${item.id}/retry`, { method: "POST" });
          showError("");
        } catch (err) {
          showError(`Retry of ${item.original_filename || item.id} failed: ${err.message}`);
          button.disabled = false;
          button.textContent = "Retry";
        }
        refresh();
      },
    });
  }

  function patientText(patient) {
    if (!patient) return "—";
    const parts = [patient.pseudonym];
    if (patient.age_years !== null && patient.age_years !== undefined) {
      parts.push(patient.age_years >= 2 ? `${Math.floor(patient.age_years)} y` : `${Math.round(patient.age_years * 12)} mo`);
    }
    if (patient.sex) parts.push(patient.sex);
    const text = parts.filter(Boolean).join(" · ");
    return text || "—";
  }

  function row(item) {
    const open = () => location.assign(`/studies/${encodeURIComponent(item.id)}`);
    const warnings = item.n_warnings || 0;
    const tr = el(
      "tr",
      {
        class: `prio-row prio-row-${item.priority || "none"}${item.status === "failed" ? " row-failed" : ""}`,
        tabindex: "0",
        data: { studyId: item.id, status: item.status, priority: item.priority || "none" },
        onclick: open,
        onkeydown: (event) => {
          if (event.key === "Enter") open();
        },
      },
      el("td", { class: "col-prio" }, window.dx.priorityBadge(item.priority)),
      el("td", { class: "col-patient", text: patientText(item.patient), title: "Pseudonym (dxassist keeps no names or IDs) · age · sex" }),
      el("td", { class: "col-age", text: window.dx.formatAge(item.age_seconds), title: window.dx.formatDateTime(item.received_at) }),
      el("td", { class: "col-status" }, window.dx.statusBadge(item.status)),
      findingCell(item),
      el(
        "td",
        { class: "col-file" },
        el("a", {
          href: `/studies/${encodeURIComponent(item.id)}`,
          text: item.original_filename || item.id,
          onclick: (event) => event.stopPropagation(),
        }),
      ),
      el("td", { class: "col-mod muted", text: [item.modality, item.view].filter(Boolean).join(" · ") || "—" }),
      el(
        "td",
        { class: "col-num" },
        warnings
          ? el("span", { class: "warn-count", text: `⚠ ${warnings}`, title: `${warnings} warning(s): open the study to read them` })
          : el("span", { class: "muted", text: "0" }),
      ),
      el("td", { class: "col-reviewed muted", text: window.dx.formatDateTime(item.reviewed_at) || "—" }),
      el("td", { class: "col-actions" }, item.status === "failed" ? retryButton(item) : null),
    );
    return tr;
  }

  function render(data) {
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.studyId
      : undefined;
    total = data.total;
    table.dataset.total = String(total);
    table.classList.toggle("show-reviewed", form.elements.reviewed.checked);
    tbody.replaceChildren(...data.items.map(row));
    if (focusedId) {
      const again = tbody.querySelector(`tr[data-study-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    const reviewed = form.elements.reviewed.checked;
    title.textContent = reviewed ? "Reviewed studies" : "Open worklist";
    empty.hidden = data.items.length > 0;
    if (!data.items.length) {
      if (total > 0) empty.textContent = "No studies on this page: go back a page.";
      else if (filtered()) empty.textContent = "No study matches these filters.";
      else if (reviewed) empty.textContent = "No study has been reviewed yet.";
      else empty.textContent = "No open studies. New uploads appear here by themselves.";
    }
    const first = data.items.length ? data.offset + 1 : 0;
    const last = data.offset + data.items.length;
    range.textContent = `${first}–${last} of ${total} ${total === 1 ? "study" : "studies"}`;
    prev.disabled = data.offset <= 0;
    next.disabled = last >= total;
    updated.textContent = `Updated ${window.dx.formatTime(new Date())}`;
    updated.classList.remove("stale");
  }

  function filtered() {
    return ["status", "priority", "received_from", "received_to"].some(
      (name) => form.elements[name].value.trim() !== "",
    );
  }

  function showError(message) {
    errorBox.hidden = !message;
    errorBox.textContent = message;
  }

  /* ---- polling ---- */

  async function refresh() {
    clearTimeout(timer);
    const mine = ++generation;
    const params = query();
    params.set("limit", String(limit()));
    try {
      const data = await window.dx.api(`/api/v1/worklist?${params}`);
      if (mine !== generation) return;
      if (!data.items.length && data.total > 0 && offset > 0) {
        // the page emptied under us (studies were reviewed): step back
        offset = Math.max(0, Math.floor((data.total - 1) / limit()) * limit());
        writeUrl();
        refresh();
        return;
      }
      render(data);
      showError("");
    } catch (err) {
      if (mine !== generation) return;
      if (err.status === 401) return;
      showError(`Cannot refresh the worklist: ${err.message}`);
      updated.classList.add("stale");
    }
    if (mine === generation) timer = setTimeout(refresh, POLL_MS);
  }

  function changed() {
    offset = 0;
    writeUrl();
    refresh();
  }

  form.addEventListener("change", changed);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    changed();
  });
  form.addEventListener("reset", () => setTimeout(changed, 0));
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - limit());
    writeUrl();
    refresh();
  });
  next.addEventListener("click", () => {
    if (offset + limit() < total) offset += limit();
    writeUrl();
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refresh(); // back from a study: show the current list at once
  });

  readUrl();
  refresh();
})();
