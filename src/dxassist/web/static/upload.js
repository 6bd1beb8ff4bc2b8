/* dxassist upload: every file is its own POST /api/v1/studies (XHR, so it has progress). */
"use strict";

(() => {
  const dx = window.dx;
  const { el } = dx;
  const input = document.getElementById("upload-files");
  const zone = document.getElementById("dropzone");
  const table = document.getElementById("upload-list");
  const tbody = table.querySelector("tbody");
  const counts = document.getElementById("upload-counts");
  const clear = document.getElementById("upload-clear");
  const PARALLEL = 2;

  const queue = [];
  const items = [];
  let running = 0;

  function updateCounts() {
    const by = { waiting: 0, uploading: 0, done: 0, error: 0 };
    for (const item of items) by[item.state] += 1;
    const parts = [];
    if (by.uploading || by.waiting) parts.push(`${by.uploading + by.waiting} uploading`);
    if (by.done) parts.push(`${by.done} received`);
    if (by.error) parts.push(`${by.error} refused`);
    counts.textContent = parts.join(" · ");
    clear.hidden = !(by.done || by.error);
  }

  function setState(item, state) {
    item.state = state;
    item.row.dataset.state = state;
    item.row.className = `upload-item state-${state}`;
    updateCounts();
  }

  function add(files) {
    for (const file of files) {
      const progress = el("progress", { max: "100", value: "0" });
      const result = el("td", { class: "col-result muted", text: "Waiting…" });
      const row = el(
        "tr",
        { class: "upload-item", data: { file: file.name } },
        el("td", { class: "col-file", text: file.name }),
        el("td", { class: "col-size muted", text: dx.formatBytes(file.size) }),
        el("td", { class: "col-progress" }, progress),
        result,
      );
      const item = { file, row, progress, result, state: "waiting" };
      items.push(item);
      queue.push(item);
      tbody.append(row);
      setState(item, "waiting");
    }
    table.hidden = items.length === 0;
    pump();
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      running += 1;
      send(queue.shift()).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  function errorText(status, data) {
    if (data && data.detail !== undefined) {
      const detail = data.detail;
      if (detail && typeof detail === "object" && Array.isArray(detail.files) && detail.files.length) {
        return detail.files.map((f) => f.error || `${f.file}: cannot be read`).join("; ");
      }
      const text = dx.detailText(detail);
      if (text) return text;
    }
    if (status === 413) return "the file is over the upload limit; nothing was stored";
    return `the server answered HTTP ${status}; nothing was stored`;
  }

  function showStored(item, data) {
    const studies = (data && data.studies) || [];
    const parts = studies.map((s) =>
      el(
        "span",
        { class: "stored" },
        el("a", { href: `/studies/${encodeURIComponent(s.id)}`, text: "Open study", data: { studyId: s.id } }),
        s.duplicate
          ? el("span", { class: "dup", text: ` · already received earlier (${dx.STATUS_NAMES[s.status] || s.status}): this is that study, not a new one` })
          : el("span", { class: "muted", text: " · received; the AI reads it in the background (see the worklist)" }),
      ),
    );
    item.result.className = "col-result ok";
    item.result.replaceChildren(...parts);
    item.progress.value = 100;
    setState(item, "done");
  }

  function showRefused(item, text) {
    item.result.className = "col-result error";
    item.result.replaceChildren(el("span", { class: "error-text", text: `Refused: ${text}` }));
    setState(item, "error");
  }

  function send(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const body = new FormData();
      body.append("files", item.file, item.file.name);
      xhr.open("POST", "/api/v1/studies");
      xhr.responseType = "json";
      xhr.setRequestHeader("Accept", "application/json");
      setState(item, "uploading");
      item.result.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) {
          item.progress.value = Math.round((event.loaded / event.total) * 100);
          if (event.loaded >= event.total) item.result.textContent = "Checking the file…";
        }
      });
      xhr.addEventListener("load", () => {
        const data = xhr.response;
        if (xhr.status === 202 || xhr.status === 200) showStored(item, data);
        else if (xhr.status === 401) {
          showRefused(item, "your session has ended: log in again, then upload this file again");
        } else showRefused(item, errorText(xhr.status, data));
        resolve();
      });
      xhr.addEventListener("error", () => {
        showRefused(item, "the upload did not reach the server (network error); try again");
        resolve();
      });
      xhr.addEventListener("abort", () => {
        showRefused(item, "the upload was cancelled");
        resolve();
      });
      xhr.send(body);
    });
  }

  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = ""; // the same file can be chosen again
  });

  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer.files || [])];
    if (files.length) add(files);
  });
  // a file dropped beside the zone must not make the browser navigate away to it
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  clear.addEventListener("click", () => {
    for (let i = items.length - 1; i >= 0; i--) {
      if (items[i].state === "done" || items[i].state === "error") {
        items[i].row.remove();
        items.splice(i, 1);
      }
    }
    table.hidden = items.length === 0;
    updateCounts();
  });
})();
