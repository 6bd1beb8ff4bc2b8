/* dxassist: the diagnostic assistant page (plain JS, strict CSP: no inline code). */
"use strict";

(() => {
  const { api, el } = window.dx;
  const $ = (id) => document.getElementById(id);
  const state = { dataset: null, datasets: new Map(), vocab: [], byName: new Map(), chosen: new Map(), answered: new Map() };

  function showError(message) {
    const box = $("assist-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  async function loadDatasets() {
    const data = await api("/api/v1/assist/datasets");
    const select = $("assist-dataset");
    state.datasets = new Map(data.datasets.map((d) => [d.dataset, d]));
    select.replaceChildren(
      ...data.datasets.map((d) =>
        el("option", {
          value: d.dataset,
          text: `${d.label}: ${d.population}, ${d.language}, ${d.diseases} diseases${d.default ? " (default)" : ""}`,
        }),
      ),
    );
    // the server lists the default (DDXPlus) first; a saved choice wins
    const saved = localStorage.getItem("dxassist.assist.dataset");
    if (saved && state.datasets.has(saved)) select.value = saved;
    await loadVocab(select.value);
  }

  function showPopulation(dataset) {
    const d = state.datasets.get(dataset);
    $("assist-population").textContent = d
      ? `Patients: ${d.population}. Language: ${d.language}. ${d.diseases} diseases; ${d.source}.`
      : "";
  }

  async function loadVocab(dataset) {
    state.dataset = dataset;
    showPopulation(dataset);
    localStorage.setItem("dxassist.assist.dataset", dataset);
    const data = await api(`/api/v1/assist/datasets/${encodeURIComponent(dataset)}/symptoms`);
    state.vocab = data.symptoms;
    state.byName = new Map();
    for (const s of state.vocab) {
      state.byName.set(s.name.toLowerCase(), s);
      state.byName.set(s.code.toLowerCase(), s);
    }
    $("assist-vocab").replaceChildren(...state.vocab.map((s) => el("option", { value: s.name })));
    state.chosen.clear();
    state.answered.clear();
    renderChosen();
  }

  function renderChosen() {
    const items = [];
    for (const [code, entry] of [...state.chosen, ...state.answered]) {
      items.push(
        el(
          "li",
          { class: `v-${entry.value}` },
          `${entry.name} = ${entry.value === "unsure" ? "not sure" : entry.value}`,
          el("button", {
            type: "button",
            class: "secondary",
            "aria-label": `remove ${entry.name}`,
            text: "×",
            onclick: () => {
              state.chosen.delete(code);
              state.answered.delete(code);
              renderChosen();
            },
          }),
        ),
      );
    }
    $("assist-chosen").replaceChildren(...items);
  }

  function addSymptom() {
    const raw = $("assist-symptom").value.trim().toLowerCase();
    if (!raw) return;
    const s = state.byName.get(raw);
    if (!s) {
      showError(`"${raw}" is not in this vocabulary; pick a symptom from the list`);
      return;
    }
    showError("");
    state.chosen.set(s.code, { name: s.name, value: $("assist-value").value });
    $("assist-symptom").value = "";
    renderChosen();
  }

  function body() {
    const symptoms = {};
    for (const [code, e] of state.chosen) symptoms[code] = e.value;
    const answered = {};
    for (const [code, e] of state.answered) answered[code] = e.value;
    const out = { dataset: state.dataset, symptoms, answered, top: 5, questions: 3 };
    const text = $("assist-text").value.trim();
    if (text) out.text = text;
    const age = $("assist-age").value;
    if (age !== "") out.age = Number(age);
    const sex = $("assist-sex").value;
    if (sex) out.sex = sex;
    return out;
  }

  function renderMapped(text, mappings) {
    const out = [];
    let pos = 0;
    for (const m of mappings) {
      if (m.start > pos) out.push(text.slice(pos, m.start));
      const cls = m.value === "no" ? "neg" : m.value === "unsure" ? "unsure" : "";
      out.push(
        el("mark", { class: cls, title: `${m.name} = ${m.value}${m.cue ? ` (cue "${m.cue}")` : ""}` },
          text.slice(m.start, m.end)),
      );
      out.push(el("span", { class: "assist-ev", text: ` [${m.name}: ${m.value}] ` }));
      pos = m.end;
    }
    if (pos < text.length) out.push(text.slice(pos));
    $("assist-mapped").replaceChildren(...out);
  }

  function evidence(label, rows) {
    if (!rows.length) return null;
    return el("div", { class: "assist-ev" },
      `${label}: ` + rows.map((e) => `${e.name}=${e.value} (${e.weight > 0 ? "+" : ""}${e.weight})`).join(", "));
  }

  function render(op, text) {
    $("assist-flags").replaceChildren(
      ...op.red_flags.map((f) => el("div", { class: "banner assist-flag", role: "alert", text: `Red flag: ${f}` })),
    );
    const rows = op.differential.map((d, i) =>
      el("tr", {},
        el("td", { text: String(i + 1) }),
        el("td", {}, el("div", { text: d.name }), evidence("for", d.evidence_for), evidence("against", d.evidence_against)),
        el("td", {}, el("span", { class: `assist-bar w${Math.round(d.probability * 10)}` }), ` ${(d.probability * 100).toFixed(1)}%`),
      ),
    );
    $("assist-diff").tBodies[0].replaceChildren(...rows);
    $("assist-status").textContent = op.stop_reason;
    const qs = op.confident ? [] : op.next_questions;
    $("assist-questions").replaceChildren(
      ...qs.map((q) =>
        el("li", {},
          el("span", { text: `${q.question} ` }),
          ...[["yes", "Yes"], ["no", "No"], ["unsure", "Not sure"]].map(([v, label]) =>
            el("button", {
              type: "button",
              class: "secondary",
              text: label,
              onclick: () => {
                state.answered.set(q.symptom, { name: q.name, value: v });
                renderChosen();
                submit();
              },
            }),
          ),
        ),
      ),
    );
    renderMapped(text, op.mappings);
    $("assist-notes").replaceChildren(...op.notes.map((n) => el("li", { text: n })), el("li", { text: op.disclaimer }));
  }

  async function submit(event) {
    if (event) event.preventDefault();
    showError("");
    const b = body();
    try {
      const op = await api("/api/v1/assist", { method: "POST", body: b });
      render(op, b.text || "");
    } catch (err) {
      showError(err.message);
    }
  }

  $("assist-form").addEventListener("submit", submit);
  $("assist-add").addEventListener("click", addSymptom);
  $("assist-symptom").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addSymptom();
    }
  });
  $("assist-dataset").addEventListener("change", (e) => loadVocab(e.target.value).catch((err) => showError(err.message)));
  $("assist-reset").addEventListener("click", () => {
    state.chosen.clear();
    state.answered.clear();
    $("assist-text").value = "";
    renderChosen();
  });
  loadDatasets().catch((err) => showError(err.message));
})();
