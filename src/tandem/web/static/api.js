// Talking to tandem's /api from the pages: JSON in and out, the CSRF header on every write,
// and errors turned into sentences a person can act on.
import { createParser } from "./vendor/eventsource-parser-4.1.3/index.js";

const CSRF_COOKIE = "tandem_csrf";
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

let csrfPromise = null;

// The double-submit token: the cookie's value echoed in a header. A page opened before the
// cookie existed asks the server for one (once).
export async function csrfToken() {
  const existing = readCookie(CSRF_COOKIE);
  if (existing) return existing;
  if (!csrfPromise) {
    csrfPromise = fetch("/api/auth/csrf", { credentials: "same-origin" })
      .then(async (r) => {
        if (!r.ok) return "";
        const body = await r.json().catch(() => ({}));
        return readCookie(CSRF_COOKIE) || body.csrf_token || body.token || "";
      })
      .catch(() => "")
      .finally(() => { csrfPromise = null; });
  }
  return csrfPromise;
}

export async function headersFor(method, extra = {}) {
  const headers = { ...extra };
  if (!SAFE.has(method)) {
    const token = await csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  return headers;
}

export function describeFailure(status, message, path = "") {
  if (status === 401 && !path.startsWith("/api/auth/")) return "Your session has ended. Log in again to continue.";
  if (status === 401) return capitalize(message) || "Wrong email or password.";
  if (status === 404) return message || "Not found.";
  if (status === 413) return "That is too large to send. Try something smaller.";
  if (status === 502) return "The model backend failed. Try again in a moment.";
  if (status >= 500) return "Something went wrong on the server. Try again.";
  return message || `Request failed (${status}).`;
}

function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

async function errorFrom(response, path) {
  let message = "";
  let code = null;
  try {
    const body = await response.json();
    message = body?.error?.message || "";
    code = body?.error?.code || null;
  } catch {
    /* not JSON: keep the generic sentence */
  }
  return new ApiError(response.status, describeFailure(response.status, message, path), code);
}

// fetch() with the session cookie and CSRF header; resolves to the raw Response when ok.
// `keepalive`: the request outlives the page (a signal sent as the user leaves).
export async function request(method, path, { json, body, signal, headers = {}, keepalive = false } = {}) {
  const h = await headersFor(method, headers);
  let payload = body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: h, body: payload, signal, keepalive, credentials: "same-origin" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Can't reach the server. Check your connection and try again.", "network");
  }
  if (response.status === 401 && !path.startsWith("/api/auth/")) {
    // The session expired mid-use: go log in, and come back here afterwards.
    const next = encodeURIComponent(location.pathname);
    location.assign(`/login?next=${next}`);
  }
  if (!response.ok) throw await errorFrom(response, path);
  return response;
}

export async function api(method, path, json) {
  const response = await request(method, path, json === undefined ? {} : { json });
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("application/json") ? response.json() : null;
}

// Reads a server-sent-events body, calling onEvent with each event's `data` parsed as JSON.
// The framing (lines split across network reads, multi-line `data:`, comments, CRLF) is
// eventsource-parser's. Resolves when the body ends; whether the stream reached its terminal
// event is the caller's to judge (chat_stream.js reports an answer cut off without `done`). An
// exception thrown by onEvent (an `error` event, say) rejects this and cancels the body.
export async function readEvents(response, onEvent) {
  const parser = createParser({
    onEvent: (message) => {
      const data = message.data.trim();
      if (!data || data === "[DONE]") return;
      let payload;
      try {
        payload = JSON.parse(data);
      } catch {
        return; // a malformed event must not end the chat
      }
      // A named event (`event: error`) whose payload does not say its type gets the name.
      if (message.event && payload && typeof payload === "object" && !payload.type) payload.type = message.event;
      onEvent(payload);
    },
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } catch (err) {
    reader.cancel().catch(() => {}); // stop the server's work for a reader that gave up
    throw err;
  }
}

// -- small DOM conveniences shared by every page --------------------------------------------

// el("button", {class: "x", onclick: f, "aria-label": "Copy"}, "text", child): text children
// become text nodes, so nothing passed here is ever parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let toastTimer = null;

export function toast(message, kind = "info") {
  let box = document.getElementById("toast");
  if (!box) {
    box = el("div", { id: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = message;
  box.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.className = "toast"; }, kind === "error" ? 6000 : 2500);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API needs a secure context; a plain-http LAN install falls back to execCommand.
    const area = el("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast("Copied");
}

// A modal confirmation built on <dialog>; resolves true when confirmed.
export function confirmDialog(title, text, confirmLabel = "Delete", danger = true) {
  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "modal", "aria-label": title });
    const cancel = el("button", { type: "button", class: "btn", onclick: () => dialog.close("cancel") }, "Cancel");
    const ok = el("button", { type: "button", class: danger ? "btn danger" : "btn primary", onclick: () => dialog.close("ok") }, confirmLabel);
    dialog.append(el("h2", {}, title), el("p", { class: "muted" }, text), el("div", { class: "modal-actions" }, cancel, ok));
    dialog.addEventListener("close", () => { resolve(dialog.returnValue === "ok"); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
    ok.focus();
  });
}

export function formatDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const days = Math.floor((today.setHours(0, 0, 0, 0) - new Date(d).setHours(0, 0, 0, 0)) / 86400000);
  if (days <= 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days < 7) return "Previous 7 days";
  if (days < 30) return "Previous 30 days";
  return d.toLocaleDateString(undefined, { year: "numeric", month: "long" });
}
