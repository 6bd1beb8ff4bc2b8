/* dxassist viewer: the radiograph on a canvas (zoom, pan, window/level, heatmap overlay),
   the AI read, warnings and the review form with keyboard shortcuts. */
"use strict";

(() => {
  const dx = window.dx;
  const { el } = dx;
  const $ = (id) => document.getElementById(id);

  const root = $("viewer");
  const studyId = root.dataset.studyId;
  const studyUrl = `/api/v1/studies/${encodeURIComponent(studyId)}`;
  const POLL_MS = 2000;

  /* ================= image display ================= */

  const stage = $("stage");
  const canvas = $("view-canvas");
  const ctx = canvas.getContext("2d");
  const stageMessage = $("stage-message");
  const brightness = $("brightness");
  const contrast = $("contrast");
  const heatToggle = $("heatmap-toggle");
  const heatOpacity = $("heatmap-opacity");
  const zoomLabel = $("zoom-level");
  const wlLabel = $("overlay-wl");

  /** scale: CSS px per image px; tx, ty: image origin in CSS px; brightness/contrast: -100..100 */
  const view = { scale: 1, tx: 0, ty: 0, brightness: 0, contrast: 0, heatmap: false, opacity: 0.5 };
  let base = null; // {w, h, lum: Uint8Array, display: canvas, ctx, pixels: ImageData, out: Uint32Array}
  let heat = null; // ImageBitmap of the RGBA heatmap layer
  let heatWanted = false; // H was pressed while the layer was still loading
  let fitted = true; // follow the stage size until the user zooms or pans
  let frame = 0;
  let lutDirty = true;
  let drag = null;
  const lut = new Uint32Array(256);

  function dpr() {
    return window.devicePixelRatio || 1;
  }

  function stageSize() {
    return { w: canvas.width / dpr(), h: canvas.height / dpr() };
  }

  function fitScale() {
    if (!base) return 1;
    const { w, h } = stageSize();
    return Math.min(w / base.w, h / base.h) * 0.98;
  }

  function fit() {
    if (!base) return;
    const { w, h } = stageSize();
    view.scale = fitScale();
    view.tx = (w - base.w * view.scale) / 2;
    view.ty = (h - base.h * view.scale) / 2;
    fitted = true;
  }

  function windowing() {
    const center = 127.5 - view.brightness * 1.275;
    const width = 255 * Math.pow(2, -view.contrast / 50);
    return { center, width };
  }

  function applyLut() {
    const { center, width } = windowing();
    const lo = center - width / 2;
    for (let v = 0; v < 256; v++) {
      const g = Math.max(0, Math.min(255, Math.round(((v - lo) / width) * 255)));
      lut[v] = ((255 << 24) | (g << 16) | (g << 8) | g) >>> 0;
    }
    const { lum, out } = base;
    for (let i = 0, n = lum.length; i < n; i++) out[i] = lut[lum[i]];
    base.ctx.putImageData(base.pixels, 0, 0);
    lutDirty = false;
  }

  function draw() {
    frame = 0;
    const ratio = dpr();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!base) return;
    if (lutDirty) applyLut();
    ctx.setTransform(view.scale * ratio, 0, 0, view.scale * ratio, view.tx * ratio, view.ty * ratio);
    ctx.imageSmoothingEnabled = view.scale < 4;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(base.display, 0, 0);
    const heatOn = view.heatmap && heat !== null;
    if (heatOn && view.opacity > 0) {
      ctx.globalAlpha = view.opacity;
      ctx.drawImage(heat, 0, 0, base.w, base.h);
      ctx.globalAlpha = 1;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    // state for people and tests: what is on the canvas now
    const { center, width } = windowing();
    canvas.dataset.ready = "1";
    canvas.dataset.heatmap = heatOn ? "on" : "off";
    canvas.dataset.zoom = view.scale.toFixed(4);
    canvas.dataset.brightness = String(view.brightness);
    canvas.dataset.contrast = String(view.contrast);
    canvas.dataset.opacity = String(Math.round(view.opacity * 100));
    zoomLabel.textContent = `${Math.round(view.scale * 100)}%`;
    wlLabel.textContent = `W ${Math.round(width)} · L ${Math.round(center)} · zoom ${Math.round(view.scale * 100)}%`;
  }

  function schedule(lutChanged = false) {
    if (lutChanged) lutDirty = true;
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function resize() {
    const rect = stage.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width * dpr()));
    const h = Math.max(1, Math.round(rect.height * dpr()));
    if (canvas.width !== w || canvas.height !== h) {
      const old = stageSize();
      canvas.width = w;
      canvas.height = h;
      if (fitted) fit();
      else {
        const now = stageSize();
        view.tx += (now.w - old.w) / 2;
        view.ty += (now.h - old.h) / 2;
      }
    }
    schedule();
  }

  function zoomAt(x, y, factor) {
    if (!base) return;
    const fs = fitScale();
    const next = Math.min(Math.max(8, fs * 4), Math.max(fs * 0.25, view.scale * factor));
    view.tx = x - (x - view.tx) * (next / view.scale);
    view.ty = y - (y - view.ty) * (next / view.scale);
    view.scale = next;
    fitted = false;
    schedule();
  }

  function zoomCenter(factor) {
    const { w, h } = stageSize();
    zoomAt(w / 2, h / 2, factor);
  }

  function setWindow(b, c) {
    view.brightness = Math.round(Math.max(-100, Math.min(100, b)));
    view.contrast = Math.round(Math.max(-100, Math.min(100, c)));
    brightness.value = String(view.brightness);
    contrast.value = String(view.contrast);
    schedule(true);
  }

  function resetView() {
    setWindow(0, 0);
    fit();
    schedule(true);
  }

  function setHeatmap(on) {
    if (on && heat === null) {
      const loading = study && study.status === "ready" && heatRequested;
      heatWanted = loading; // shown as soon as it has loaded
      flash(loading ? "The heatmap is loading…" : "No heatmap: it exists once the AI read is ready.");
      heatToggle.checked = false;
      return;
    }
    heatWanted = false;
    view.heatmap = on;
    heatToggle.checked = on;
    schedule();
  }

  /** Fetch a PNG (with the session cookie) and decode it; errors carry the API's detail. */
  async function fetchBitmap(url, options) {
    let resp;
    try {
      resp = await fetch(url, { credentials: "same-origin" });
    } catch (err) {
      throw new dx.ApiError(0, "the server cannot be reached (network error)");
    }
    if (resp.status === 401) {
      location.assign(dx.loginUrl());
      throw new dx.ApiError(401, "log in again");
    }
    if (!resp.ok) {
      let detail = "";
      try {
        detail = dx.detailText((await resp.json()).detail);
      } catch (err) {
        detail = "";
      }
      throw new dx.ApiError(resp.status, detail || `HTTP ${resp.status}`);
    }
    return createImageBitmap(await resp.blob(), options);
  }

  async function loadImage(url) {
    try {
      const bitmap = await fetchBitmap(url, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const w = bitmap.width;
      const h = bitmap.height;
      const scratch = document.createElement("canvas");
      scratch.width = w;
      scratch.height = h;
      const sctx = scratch.getContext("2d", { willReadFrequently: true });
      sctx.drawImage(bitmap, 0, 0);
      const rgba = sctx.getImageData(0, 0, w, h).data;
      bitmap.close();
      const lum = new Uint8Array(w * h);
      for (let i = 0, j = 0; i < lum.length; i++, j += 4) lum[i] = rgba[j];
      const display = document.createElement("canvas");
      display.width = w;
      display.height = h;
      const dctx = display.getContext("2d");
      const pixels = dctx.createImageData(w, h);
      base = { w, h, lum, display, ctx: dctx, pixels, out: new Uint32Array(pixels.data.buffer) };
      stageMessage.hidden = true;
      fit();
      schedule(true);
    } catch (err) {
      stageMessage.hidden = false;
      stageMessage.classList.add("error");
      stageMessage.textContent = `The radiograph cannot be shown: ${err.message}`;
    }
  }

  async function loadHeatmap(url) {
    try {
      heat = await fetchBitmap(url);
      heatToggle.disabled = false;
      heatOpacity.disabled = false;
      if (heatWanted) {
        setHeatmap(true);
        if (message.textContent === "The heatmap is loading…") say("");
      }
      schedule();
    } catch (err) {
      heat = null;
      heatToggle.disabled = true;
      heatToggle.parentElement.title = `No heatmap: ${err.message}`;
    }
  }

  new ResizeObserver(resize).observe(stage);

  canvas.addEventListener("pointerdown", (event) => {
    if (!base) return;
    let mode = null;
    if (event.button === 2 || (event.button === 0 && event.shiftKey)) mode = "window";
    else if (event.button === 0) mode = "pan";
    if (!mode) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drag = {
      mode,
      x: event.clientX,
      y: event.clientY,
      tx: view.tx,
      ty: view.ty,
      b: view.brightness,
      c: view.contrast,
    };
    canvas.classList.add(mode === "pan" ? "panning" : "windowing");
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dxp = event.clientX - drag.x;
    const dyp = event.clientY - drag.y;
    if (drag.mode === "pan") {
      view.tx = drag.tx + dxp;
      view.ty = drag.ty + dyp;
      fitted = false;
      schedule();
    } else {
      // up: brighter, right: more contrast
      setWindow(drag.b - dyp * 0.5, drag.c + dxp * 0.5);
    }
  });
  const endDrag = () => {
    drag = null;
    canvas.classList.remove("panning", "windowing");
  };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener(
    "wheel",
    (event) => {
      if (!base) return;
      event.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const delta = event.deltaMode === 1 ? event.deltaY * 40 : event.deltaY;
      zoomAt(event.clientX - rect.left, event.clientY - rect.top, Math.exp(-delta * 0.0015));
    },
    { passive: false },
  );
  canvas.addEventListener("dblclick", () => {
    fit();
    schedule();
  });

  $("zoom-in").addEventListener("click", () => zoomCenter(1.25));
  $("zoom-out").addEventListener("click", () => zoomCenter(0.8));
  $("view-reset").addEventListener("click", resetView);
  brightness.addEventListener("input", () => setWindow(Number(brightness.value), view.contrast));
  contrast.addEventListener("input", () => setWindow(view.brightness, Number(contrast.value)));
  heatToggle.addEventListener("change", () => setHeatmap(heatToggle.checked));
  heatOpacity.addEventListener("input", () => {
    view.opacity = Number(heatOpacity.value) / 100;
    if (!view.heatmap && heat) setHeatmap(true);
    schedule();
  });

  /* ================= study, AI read, warnings ================= */

  let study = null;
  let imageRequested = false;
  let heatRequested = false;
  let pollTimer = null;
  let formFilled = false;
  let nextAfterReview; // undefined until a review is saved here; then an id or null

  function showError(message) {
    const box = $("study-error");
    box.hidden = !message;
    box.textContent = message;
  }

  function fact(term, value, cls) {
    if (value === null || value === undefined || value === "") return [];
    return [el("dt", { text: term }), el("dd", { class: cls, text: String(value), title: String(value) })];
  }

  function renderStudy() {
    const s = study;
    document.title = `${s.original_filename || "Study"} · dxassist`;
    $("study-title").textContent = s.original_filename || s.id;
    const img = s.image || {};
    const facts = $("study-facts");
    facts.replaceChildren(
      el("dt", { text: "Status" }),
      el("dd", {}, dx.statusBadge(s.status), s.reviewed_at ? el("span", { class: "badge reviewed", text: "Reviewed" }) : null),
      ...fact("Received", `${dx.formatDateTime(s.received_at)} (${dx.formatAge(s.age_seconds)} ago)`),
      ...fact("Modality · view", [img.modality, img.view].filter(Boolean).join(" · ")),
      ...fact("Matrix", img.columns && img.rows ? `${img.columns} × ${img.rows}` : ""),
      ...fact("Patient age", img.patient_age_years !== null && img.patient_age_years !== undefined ? `${img.patient_age_years} y` : ""),
      ...fact("AI attempts", s.attempts),
      ...fact("Received via", s.received_via === "dicom" ? `DICOM from ${s.calling_ae || "?"}` : "upload"),
      ...studyImages(s),
      ...deliveries(s),
      ...fact("Study id", s.id, "mono"),
    );
    $("overlay-study").replaceChildren(
      el("div", { text: s.original_filename || "" }),
      el("div", { text: [img.modality, img.view, img.columns && img.rows ? `${img.columns}×${img.rows}` : ""].filter(Boolean).join(" · ") }),
    );
    renderAi();
    renderWarnings();
    renderReview();
  }

  function studyImages(s) {
    const others = (s.study_images || []).filter((i) => i.id !== s.id);
    if (!others.length) return [];
    return [
      el("dt", { text: "Same study" }),
      el(
        "dd",
        {},
        ...others.map((i, n) =>
          el("a", { href: i.page, class: "study-image", text: `${n ? ", " : ""}${[i.modality, i.view].filter(Boolean).join(" ") || "image"} (${dx.STATUS_NAMES[i.status] || i.status})` }),
        ),
      ),
    ];
  }

  function deliveries(s) {
    const list = s.deliveries || [];
    const out = [];
    if (list.length) {
      out.push(
        el("dt", { text: "Results sent to" }),
        el(
          "dd",
          {},
          el(
            "ul",
            { class: "deliveries" },
            ...list.map((d) =>
              el("li", {
                class: `delivery-${d.status}`,
                title: d.last_error || "",
                text:
                  d.status === "sent"
                    ? `${d.destination}: sent ${dx.formatDateTime(d.sent_at)}`
                    : d.status === "failed"
                    ? `${d.destination}: cannot be sent (${d.last_error || "no reason recorded"}); an admin can retry once fixed`
                    : `${d.destination}: not sent yet (${d.attempts} attempt${d.attempts === 1 ? "" : "s"}${d.last_error ? `; last: ${d.last_error}` : ""}); next try ${dx.formatDateTime(d.next_attempt_at)}`,
              }),
            ),
          ),
        ),
      );
    }
    if (s.urls && s.urls.fhir) {
      out.push(el("dt", { text: "FHIR" }), el("dd", {}, el("a", { href: s.urls.fhir, text: "DiagnosticReport bundle (JSON)" })));
    }
    return out;
  }

  function renderAi() {
    const s = study;
    const status = $("ai-status");
    const read = $("ai-read");
    status.replaceChildren();
    status.className = "ai-status";
    if (s.status === "received" || s.status === "analysing") {
      status.classList.add("waiting");
      status.append(
        el("span", { class: "spinner", "aria-hidden": "true" }),
        s.status === "received"
          ? "Not read yet: the study is queued for the AI. This page updates by itself."
          : "The AI is reading this study now. This page updates by itself.",
      );
    } else if (s.status === "quarantined") {
      status.classList.add("failed");
      status.append(
        el("strong", { text: "Held, not analysed yet: " }),
        el("span", { class: "failure-reason", text: s.failure_reason || "possibly burned-in text" }),
        el("br"),
        el("span", { text: "Look at the film: if it shows no name, ID or other identifying text, an administrator can release it for analysis. " }),
        el("button", { type: "button", class: "retry", id: "release", text: "Release for analysis", onclick: release }),
      );
    } else if (s.status === "skipped") {
      status.append(
        el("strong", { text: "Not analysed: " }),
        el("span", { class: "failure-reason", text: s.failure_reason || "not a chest radiograph." }),
        el("br"),
        el("span", { text: "dxassist keeps what the hospital sends, but reads chest radiographs only." }),
      );
    } else if (s.status === "failed") {
      status.classList.add("failed");
      status.append(
        el("strong", { text: "The AI analysis failed. " }),
        el("span", { class: "failure-reason", text: s.failure_reason || "No reason was recorded." }),
        el("br"),
        el("span", { text: "You can review the film without the AI, or retry the analysis. " }),
        el("button", {
          type: "button",
          class: "retry",
          id: "retry",
          text: "Retry analysis",
          onclick: retry,
        }),
      );
    }
    if (!s.ai) {
      read.hidden = true;
      return;
    }
    read.hidden = false;
    const ai = s.ai;
    $("ai-priority").replaceChildren(dx.priorityBadge(ai.priority));
    $("ai-abnormal").textContent = dx.score(ai.abnormal);
    $("ai-top").textContent = dx.FINDING_NAMES[ai.top_finding] || ai.top_finding;
    const probs = ai.probabilities || {};
    const names = [...dx.FINDINGS, ...Object.keys(probs).filter((k) => !dx.FINDINGS.includes(k))];
    $("probabilities").replaceChildren(
      ...names
        .filter((k) => typeof probs[k] === "number")
        .map((k) => {
          const p = probs[k];
          const fill = el("span", { class: "prob-fill" });
          fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`; // CSSOM: allowed by the CSP
          return el(
            "div",
            { class: `prob${k === ai.top_finding ? " top" : ""}`, data: { finding: k, value: String(p) } },
            el("span", { class: "prob-name", text: dx.FINDING_NAMES[k] || k }),
            el(
              "span",
              { class: "prob-bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": String(p) },
              fill,
            ),
            el("span", { class: "prob-value", text: dx.pct(p) }),
          );
        }),
    );
    const model = ai.model || {};
    $("ai-model").textContent = `Model ${model.name || "?"} ${model.version || ""}`.trim();
    const t = ai.thresholds;
    $("ai-thresholds").textContent = t
      ? `Priority from the abnormal score (1 − p(no pneumonia)): urgent ≥ ${t.urgent.toFixed(3)}, priority ≥ ${t.priority.toFixed(3)}, else routine.`
      : "";
    $("ai-heatmap-finding").textContent = ai.heatmap_finding
      ? `Heatmap: where the evidence for ${dx.FINDING_NAMES[ai.heatmap_finding] || ai.heatmap_finding} lies in this film (red = strongest in this film, whatever its probability; coarse, not a lesion outline).`
      : "";
  }

  function renderWarnings() {
    const list = study.warnings || [];
    const box = $("warnings");
    box.hidden = list.length === 0;
    $("warnings-title").textContent = `⚠ ${list.length} warning${list.length === 1 ? "" : "s"}: read before you rely on the AI`;
    $("warnings-list").replaceChildren(...list.map((w) => el("li", { text: w })));
  }

  async function release(event) {
    event.currentTarget.disabled = true;
    try {
      await dx.api(`${studyUrl}/release`, { method: "POST" });
      showError("");
    } catch (err) {
      showError(`Release failed: ${err.message}`);
    }
    loadStudy();
  }

  async function retry(event) {
    event.currentTarget.disabled = true;
    try {
      await dx.api(`${studyUrl}/retry`, { method: "POST" });
      showError("");
    } catch (err) {
      showError(`Retry failed: ${err.message}`);
    }
    loadStudy();
  }

  async function loadStudy() {
    clearTimeout(pollTimer);
    try {
      study = await dx.api(studyUrl);
      showError("");
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 404) {
        showError(err.message);
        stageMessage.textContent = "No such study.";
        setFormEnabled(false);
        return;
      }
      showError(`Cannot load the study: ${err.message}`);
      pollTimer = setTimeout(loadStudy, POLL_MS * 2);
      return;
    }
    renderStudy();
    if (!imageRequested) {
      imageRequested = true;
      loadImage(study.urls.image);
    }
    if (study.urls.heatmap_layer && !heatRequested) {
      heatRequested = true;
      loadHeatmap(study.urls.heatmap_layer);
    }
    if (study.status === "received" || study.status === "analysing") {
      pollTimer = setTimeout(loadStudy, POLL_MS);
    }
  }

  /* ================= review ================= */

  const form = $("review-form");
  const note = $("review-note");
  const submit = $("review-submit");
  const message = $("review-message");
  const nextButton = $("next-study");
  let selected = []; // labels, primary first
  let busy = false;

  const labelBoxes = dx.REVIEW_LABELS.map((label, i) => {
    const box = el("input", { type: "checkbox", name: "label", value: label });
    box.addEventListener("change", () => toggleLabel(label, box.checked));
    const wrap = el(
      "label",
      { class: "check label-opt", data: { label } },
      box,
      el("kbd", { text: String(i + 1) }),
      el("span", { class: "label-name", text: dx.LABEL_NAMES[label] }),
      el("span", { class: "tag tag-ai", text: "AI" }),
      el("span", { class: "tag tag-primary", text: "primary" }),
    );
    return { label, box, wrap };
  });
  $("label-options").replaceChildren(...labelBoxes.map((b) => b.wrap));

  const TYPED = ["bacterial_pneumonia", "viral_pneumonia", "covid19"];

  function toggleLabel(label, on) {
    if (on) {
      if (label === "normal") selected = [];
      else selected = selected.filter((l) => l !== "normal");
      if (label === "pneumonia") selected = selected.filter((l) => !TYPED.includes(l));
      if (TYPED.includes(label)) selected = selected.filter((l) => l !== "pneumonia");
      if (!selected.includes(label)) selected.push(label);
    } else {
      selected = selected.filter((l) => l !== label);
    }
    syncLabels();
  }

  function syncLabels() {
    const top = study && study.ai ? study.ai.top_finding : null;
    for (const { label, box, wrap } of labelBoxes) {
      box.checked = selected.includes(label);
      wrap.classList.toggle("is-primary", selected[0] === label);
      wrap.classList.toggle("is-ai", label === top);
    }
  }

  function agreement() {
    const chosen = form.querySelector('input[name="agree"]:checked');
    return chosen ? chosen.value === "true" : null;
  }

  function setAgreement(value) {
    for (const radio of form.querySelectorAll('input[name="agree"]')) {
      radio.checked = value !== null && radio.value === String(value);
    }
  }

  function setFormEnabled(on) {
    for (const node of form.querySelectorAll("input, textarea, button")) {
      if (node !== nextButton) node.disabled = !on;
    }
  }

  function say(text, kind = "") {
    message.textContent = text;
    message.className = `form-message ${kind}`;
  }

  function flash(text) {
    say(text, "info");
  }

  function renderReview() {
    const s = study;
    const hasAi = Boolean(s.ai);
    const waiting = s.status === "received" || s.status === "analysing";
    $("agree-field").hidden = !hasAi;
    if (root.dataset.canReview === "no") {
      // a clinician reads results; reviews are for radiologists (studies:review)
      setFormEnabled(false);
      $("labels-field").hidden = true;
      $("agree-field").hidden = true;
      say("Your role can read this study; reviews are made by radiologists.", "info");
    } else {
      setFormEnabled(!waiting && !busy);
      if (waiting) say("The review opens once the AI read is ready.", "info");
      else if (message.textContent === "The review opens once the AI read is ready.") say("");
    }
    const box = $("existing-review");
    const r = s.review;
    box.hidden = !r;
    if (r) {
      const labels = r.labels.map((l, i) =>
        el("li", { text: `${dx.LABEL_NAMES[l] || l}${i === 0 && r.labels.length > 1 ? " (primary)" : ""}` }),
      );
      let verdict = "read without the AI";
      if (hasAi) verdict = r.agrees_with_ai ? "agreed with the AI" : "disagreed with the AI";
      let verdictClass = "no-ai";
      if (hasAi) verdictClass = r.agrees_with_ai ? "agree" : "disagree";
      const parts = [
        el(
          "p",
          { class: "who" },
          "Reviewed by ",
          el("strong", { class: "reviewer", text: r.reviewer || "unknown" }),
          ` · ${dx.formatDateTime(r.reviewed_at)} · `,
          el("span", { class: verdictClass, text: verdict }),
        ),
        el("ul", { class: "review-labels" }, labels),
      ];
      if (r.note) parts.push(el("p", { class: "review-note", text: r.note }));
      box.replaceChildren(...parts); // (replaceChildren would print a null as "null")
      $("review-title").textContent = "Review";
      submit.textContent = "Submit correction";
    } else {
      $("review-title").textContent = "Your review";
      submit.textContent = "Submit review";
    }
    if (!formFilled && !waiting) {
      formFilled = true;
      if (r) {
        selected = [...r.labels];
        setAgreement(hasAi ? r.agrees_with_ai : null);
        note.value = r.note || "";
      }
    }
    syncLabels();
    nextButton.textContent = "";
    nextButton.append(nextAfterReview === null ? "Back to worklist " : "Next study ", el("kbd", { text: "N" }));
  }

  async function sendReview(body) {
    if (busy) return;
    busy = true;
    setFormEnabled(false);
    say("Saving…", "info");
    try {
      const answer = await dx.api(`${studyUrl}/review`, { method: "POST", body });
      study.review = answer.review;
      study.reviewed_at = study.reviewed_at || answer.review.reviewed_at;
      nextAfterReview = answer.next_study_id;
      busy = false;
      renderStudy();
      say(
        answer.next_study_id
          ? "Review saved; the study left the open worklist. Press N for the next study."
          : "Review saved; the open worklist is now empty. Press N to go back to it.",
        "ok",
      );
    } catch (err) {
      busy = false;
      setFormEnabled(true);
      say(`Not saved: ${err.message}`, "error");
    }
  }

  function reviewBody(labels, agrees) {
    const body = { labels, note: note.value.trim() };
    if (study.ai) body.agrees_with_ai = agrees;
    return body;
  }

  function canReview() {
    if (!study) return false;
    if (study.status === "received" || study.status === "analysing") {
      say("The AI has not read this study yet: wait until it is ready.", "error");
      return false;
    }
    return true;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!canReview()) return;
    if (!selected.length) {
      say("Choose at least one final label (keys 1–6).", "error");
      return;
    }
    const agrees = agreement();
    if (study.ai && agrees === null) {
      say("Say whether you agree with the AI read (Agree or Disagree).", "error");
      return;
    }
    sendReview(reviewBody([...selected], agrees));
  });

  for (const radio of form.querySelectorAll('input[name="agree"]')) {
    radio.addEventListener("change", () => {
      if (radio.checked && radio.value === "true" && !selected.length && study && study.ai) {
        selected = [study.ai.top_finding];
        syncLabels();
      }
    });
  }

  function agreeAndSubmit() {
    if (!canReview()) return;
    if (!study.ai) {
      say("There is no AI read to agree with (the analysis failed): choose labels and submit.", "error");
      return;
    }
    selected = [study.ai.top_finding];
    setAgreement(true);
    syncLabels();
    sendReview(reviewBody([study.ai.top_finding], true));
  }

  async function goNext() {
    if (nextAfterReview !== undefined) {
      location.assign(nextAfterReview ? `/studies/${encodeURIComponent(nextAfterReview)}` : "/");
      return;
    }
    try {
      const list = await dx.api("/api/v1/worklist?limit=500");
      const ids = list.items.map((i) => i.id);
      const at = ids.indexOf(studyId);
      const target = at >= 0 ? ids[at + 1] : ids.find((id) => id !== studyId);
      if (target) location.assign(`/studies/${encodeURIComponent(target)}`);
      else {
        say("No other open study on the worklist.", "info");
        location.assign("/");
      }
    } catch (err) {
      say(`Cannot find the next study: ${err.message}`, "error");
    }
  }

  nextButton.addEventListener("click", goNext);

  /* ================= keyboard ================= */

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && dx.isTyping(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || dx.isTyping(event.target)) return;
    const key = event.key.toLowerCase();
    if (event.repeat && !["+", "=", "-", "_"].includes(key)) return;
    let handled = true;
    if (key === "a") agreeAndSubmit();
    else if (key === "n") goNext();
    else if (key === "h") setHeatmap(!view.heatmap);
    else if (key === "d") {
      if (study && study.ai) setAgreement(false);
      else say("There is no AI read to disagree with.", "info");
    } else if (key === "r") resetView();
    else if (key === "+" || key === "=") zoomCenter(1.25);
    else if (key === "-" || key === "_") zoomCenter(0.8);
    else if (/^[1-6]$/.test(key)) {
      if (study && !(study.status === "received" || study.status === "analysing")) {
        const label = dx.REVIEW_LABELS[Number(key) - 1];
        toggleLabel(label, !selected.includes(label));
      }
    } else handled = false;
    if (handled) event.preventDefault();
  });

  loadStudy();
})();
