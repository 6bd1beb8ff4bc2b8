/* dxassist: helpers shared by the worklist, viewer and upload pages (no build step). */
"use strict";

window.dx = (() => {
  /** Model outputs, in the model's order, with the names of the model card. */
  const FINDINGS = ["normal", "bacterial_pneumonia", "viral_pneumonia", "covid19"];
  const FINDING_NAMES = {
    normal: "No pneumonia",
    bacterial_pneumonia: "Bacterial pneumonia",
    viral_pneumonia: "Viral pneumonia (non-COVID-19)",
    covid19: "COVID-19 pneumonia",
  };
  /** Labels a radiologist can give on review (dxassist.cxr.taxonomy.REVIEW_LABELS). */
  const REVIEW_LABELS = [...FINDINGS, "pneumonia", "other"];
  const LABEL_NAMES = {
    ...FINDING_NAMES,
    pneumonia: "Pneumonia, type not determined",
    other: "Other abnormality (not pneumonia)",
  };
  const PRIORITY_NAMES = { urgent: "Urgent", priority: "Priority", routine: "Routine" };
  const STATUS_NAMES = {
    received: "Waiting for AI",
    analysing: "AI reading",
    ready: "Ready",
    failed: "Failed",
    skipped: "Not analysed",
    quarantined: "Quarantined",
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The text of an API error "detail": a string, {message, files}, or a list. */
  function detailText(detail) {
    if (detail === null || detail === undefined) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map(detailText).join("; ");
    if (typeof detail === "object") {
      if (Array.isArray(detail.files) && detail.files.length) {
        return detail.files.map((f) => f.error || f.file).join("; ");
      }
      if (detail.message) return String(detail.message);
      if (detail.msg) return String(detail.msg);
    }
    return JSON.stringify(detail);
  }

  function loginUrl() {
    return "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  /** fetch() a JSON API endpoint; throws ApiError with the server's "detail". */
  async function api(url, { method = "GET", body } = {}) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (err) {
      throw new ApiError(0, "the server cannot be reached (network error); retrying");
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (err) {
      data = null;
    }
    if (resp.status === 401) {
      location.assign(loginUrl());
      throw new ApiError(401, "your session has ended; log in again");
    }
    if (!resp.ok) {
      const text = data && data.detail !== undefined ? detailText(data.detail) : "";
      throw new ApiError(resp.status, text || `the server answered HTTP ${resp.status}`);
    }
    return data;
  }

  /** Build an element: el("td", {class: "x", text: "y", data: {id: 1}}, child...). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "data") {
        for (const [k, v] of Object.entries(value)) node.dataset[k] = v;
      } else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** "just now", "45 s", "4 min", "2 h 05 min", "3 d 4 h". */
  function formatAge(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    if (s < 10) return "just now";
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
    const d = Math.floor(h / 24);
    return `${d} d ${h % 24} h`;
  }

  function formatDateTime(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return iso;
    return when.toLocaleString(undefined, {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  function formatTime(date) {
    return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  /** A probability as the viewer shows it: "93.7%". */
  function pct(p) {
    return (p * 100).toFixed(1) + "%";
  }

  /** The abnormal score as shown everywhere: "0.99". */
  function score(x) {
    return x === null || x === undefined ? "" : Number(x).toFixed(2);
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
    return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  }

  /** A badge for the AI priority (null: not read by the AI yet). */
  function priorityBadge(priority) {
    const key = priority || "none";
    return el("span", {
      class: `badge prio-${key}`,
      text: PRIORITY_NAMES[priority] || "Not read",
      data: { priority: key },
    });
  }

  function statusBadge(status) {
    return el("span", {
      class: `status status-${status}`,
      text: STATUS_NAMES[status] || status,
      data: { status },
    });
  }

  /** True when a key press belongs to a text field (shortcuts must not fire). */
  function isTyping(target) {
    if (!target || !(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName === "INPUT") {
      const type = (target.getAttribute("type") || "text").toLowerCase();
      return !["checkbox", "radio", "range", "button", "submit", "reset", "file"].includes(type);
    }
    return false;
  }

  return {
    FINDINGS,
    FINDING_NAMES,
    REVIEW_LABELS,
    LABEL_NAMES,
    PRIORITY_NAMES,
    STATUS_NAMES,
    ApiError,
    api,
    detailText,
    el,
    formatAge,
    formatBytes,
    formatDateTime,
    formatTime,
    isTyping,
    loginUrl,
    pct,
    priorityBadge,
    score,
    statusBadge,
  };
})();
