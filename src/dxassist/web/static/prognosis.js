/* dxassist: the outcome-risk page. Sends the form to POST /api/v1/prognosis and shows
   risk, band, reasons and warnings. No inline script (strict CSP). */
"use strict";

(() => {
  const form = document.getElementById("prognosis-form");
  const errorBox = document.getElementById("prognosis-error");
  const result = document.getElementById("prognosis-result");
  const submit = document.getElementById("prognosis-submit");
  const LAB_KEYS = ["LDH", "hsCRP", "lymphocyte_pct"];
  let info = null;

  async function loadInfo() {
    try {
      info = await dx.api("/api/v1/prognosis/model");
      const b = info.bands;
      document.getElementById("prognosis-bands").textContent =
        `Bands: low below ${b.intermediate}, intermediate from ${b.intermediate}, ` +
        `high from ${b.high} (set on cross-validation of the training cohort; see the model card).`;
      document.getElementById("prognosis-model").textContent =
        `Model ${info.name} ${info.version} (${info.kind}); ${info.admission_window}.`;
    } catch (err) {
      showError(err.message);
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function fill(listId, items, empty) {
    const list = document.getElementById(listId);
    const nodes = items.length
      ? items.map((t) => dx.el("li", { text: t }))
      : [dx.el("li", { class: "none", text: empty })];
    list.replaceChildren(...nodes);
  }

  function show(answer) {
    document.getElementById("prognosis-risk-value").textContent = dx.pct(answer.risk);
    const band = document.getElementById("prognosis-band");
    band.textContent = answer.band;
    band.className = `badge band-${answer.band}`;
    band.dataset.band = answer.band;
    document.getElementById("prognosis-id").textContent =
      answer.id === null ? "" : `Patient ${answer.id}`;
    fill("prognosis-reasons", answer.reasons, "none");
    fill("prognosis-warnings", answer.warnings, "none");
    result.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    result.hidden = true;
    const data = new FormData(form);
    const labs = {};
    for (const key of LAB_KEYS) {
      const value = String(data.get(key) || "").trim();
      if (value) labs[key] = value;
    }
    const body = { labs };
    const id = String(data.get("id") || "").trim();
    if (id) body.id = id;
    submit.disabled = true;
    try {
      show(await dx.api("/api/v1/prognosis", { method: "POST", body }));
    } catch (err) {
      showError(err.message);
    } finally {
      submit.disabled = false;
    }
  });
  form.addEventListener("reset", () => {
    errorBox.hidden = true;
    result.hidden = true;
  });

  loadInfo();
})();
