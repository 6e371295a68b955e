// Tools in the chat: the composer's tool switches, what each tool showed under an answer,
// numbered citations that open their passage, and documents attached to a chat.
//
// Everything from the server is put on the page with textContent (el() children) or through
// renderMarkdown, which escapes; links are only ever http(s) or our own /api paths.
import { api, el, request } from "./api.js";
import { icon } from "./icons.js";

export const TOOLS = [
  { name: "files", label: "Files", hint: "Answer from this chat's documents, with citations", running: "Searching your files…" },
  { name: "web", label: "Web", hint: "Search the web and cite sources", running: "Searching the web…" },
  { name: "code", label: "Code", hint: "Run Python in a sandbox (a ```python block in your message, or code the model writes)", running: "Running code…" },
  { name: "image", label: "Image", hint: "Draw a picture with the image model", running: "Drawing the image…" },
];
const BY_NAME = Object.fromEntries(TOOLS.map((t) => [t.name, t]));
export const DOCUMENT_TYPES = ".pdf,.docx,.md,.markdown,.txt,.html,.htm,.csv";

function labelOf(name) {
  return BY_NAME[name]?.label || name;
}

// -- the composer's switches ------------------------------------------------------------------

// Only the tools this server can run are offered (GET /api/tools): none until it says which,
// so a switch that cannot work (web search with no search provider) never shows.
export function toolSwitches(selected, onChange) {
  const box = el("div", { class: "tool-switches", role: "group", "aria-label": "Tools" });
  let offered = new Set();
  const paint = () =>
    box.replaceChildren(
      ...TOOLS.filter((t) => offered.has(t.name)).map((t) =>
        el(
          "button",
          {
            type: "button",
            class: "tool-switch",
            title: t.hint,
            "aria-pressed": selected.has(t.name) ? "true" : "false",
            dataset: { tool: t.name },
            onclick: () => {
              if (selected.has(t.name)) selected.delete(t.name);
              else selected.add(t.name);
              paint();
              onChange?.();
            },
          },
          t.label,
        ),
      ),
    );
  paint();
  box.refresh = paint;
  box.offer = (names) => {
    offered = new Set(names);
    for (const name of [...selected]) if (!offered.has(name)) selected.delete(name);
    paint();
  };
  return box;
}

// -- what a tool showed -------------------------------------------------------------------

function safeHref(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

function table(t) {
  const head = el("tr", {}, ...(t.columns || []).map((c) => el("th", {}, String(c))));
  const rows = (t.rows || []).slice(0, 50).map((r) => el("tr", {}, ...r.map((v) => el("td", {}, v == null ? "" : String(v)))));
  return el("div", { class: "tool-table-wrap" }, el("table", { class: "tool-table" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function details(summary, ...body) {
  return el("details", { class: "tool-details" }, el("summary", {}, summary), ...body);
}

// One tool's result: a `tool_result` part of a stored answer, or a finished `tool` event.
export function toolCard(result) {
  const d = result.display || {};
  const card = el("div", { class: `tool-card${result.error ? " failed" : ""}`, dataset: { tool: result.tool } });
  const title = el("div", { class: "tool-title" }, labelOf(result.tool));
  card.append(title);
  if (result.tool === "code") {
    if (d.code) card.append(details(d.written_by === "model" ? "Code (written by the model)" : "Code", el("pre", {}, el("code", {}, d.code))));
    if (d.stdout) card.append(el("pre", { class: "tool-output" }, d.stdout));
    if (d.value) card.append(el("pre", { class: "tool-output" }, d.value));
    for (const t of d.tables || []) card.append(table(t));
    if (d.stderr) card.append(el("pre", { class: "tool-output stderr" }, d.stderr));
  } else if (result.tool === "web") {
    if (d.query) title.append(el("span", { class: "tool-query" }, ` · ${d.query}`));
    const links = (d.results || []).map((r) => {
      const href = safeHref(r.url);
      return el("li", {}, href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, r.title || r.url) : r.title || r.url, r.snippet ? el("span", { class: "muted" }, ` — ${r.snippet}`) : "");
    });
    if (links.length) card.append(el("ul", { class: "tool-links" }, ...links));
    for (const problem of d.errors || []) card.append(el("p", { class: "muted" }, problem));
  } else if (result.tool === "files") {
    if (d.query) title.append(el("span", { class: "tool-query" }, ` · ${d.query}`));
    if ((d.files || []).length) card.append(el("p", { class: "muted" }, `Searched ${d.files.join(", ")}`));
  } else if (result.tool === "image") {
    if (d.prompt) card.append(el("p", { class: "muted" }, `Prompt: ${d.prompt}`));
  }
  if (result.error) card.append(el("p", { class: "tool-error", role: "note" }, icon("alert"), result.error));
  return card;
}

export function toolResultsOf(message) {
  return (message.parts || []).filter((p) => p.type === "tool_result" && p.data).map((p) => p.data);
}

export function toolRunning(name) {
  return el("div", { class: "tool-card running", role: "status" }, el("span", { class: "spinner" }), BY_NAME[name]?.running || `Running ${labelOf(name)}…`);
}

// -- citations ----------------------------------------------------------------------------

export function citationsOf(message) {
  return (message.parts || []).filter((p) => p.type === "citation" && p.data).map((p) => p.data);
}

let openPopover = null;

export function closeCitation() {
  openPopover?.remove();
  openPopover = null;
}

function showCitation(c, anchor) {
  closeCitation();
  const source =
    c.kind === "web" && safeHref(c.url)
      ? el("a", { href: safeHref(c.url), target: "_blank", rel: "noopener noreferrer nofollow" }, c.title || c.url)
      : c.file_id
        ? el("a", { href: `/api/files/${encodeURIComponent(c.file_id)}/content` }, c.title || "file")
        : el("span", {}, c.title || "");
  const pop = el(
    "div",
    { class: "citation-pop", role: "dialog", "aria-label": `Source ${c.index}` },
    el("div", { class: "citation-head" }, el("strong", {}, `[${c.index}] `), source, c.locator ? el("span", { class: "muted" }, ` · ${c.locator}`) : "",
      el("button", { type: "button", class: "icon-btn", "aria-label": "Close source", onclick: closeCitation }, icon("x"))),
    el("blockquote", { class: "citation-passage" }, c.passage || ""),
  );
  anchor.closest(".msg-col")?.append(pop);
  openPopover = pop;
  pop.querySelector("button").focus();
}

// Turn "[n]" in the rendered answer into buttons that open source n (outside code only).
export function linkCitations(container, citations) {
  if (!citations.length) return;
  const byIndex = new Map(citations.map((c) => [String(c.index), c]));
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest("code, pre, a") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) if (/\[\d+\]/.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const frag = document.createDocumentFragment();
    let last = 0;
    const text = node.nodeValue;
    for (const m of text.matchAll(/\[(\d+)\]/g)) {
      const c = byIndex.get(m[1]);
      if (!c) continue;
      frag.append(text.slice(last, m.index));
      frag.append(el("button", { type: "button", class: "cite", "aria-label": `Source ${c.index}: ${c.title || ""}`, onclick: (e) => showCitation(c, e.currentTarget) }, m[1]));
      last = m.index + m[0].length;
    }
    frag.append(text.slice(last));
    node.replaceWith(frag);
  }
}

// The numbered list of sources under an answer (always shown, cited in the text or not).
export function sourcesList(citations) {
  if (!citations.length) return null;
  return el(
    "ol",
    { class: "sources", "aria-label": "Sources" },
    ...citations.map((c) =>
      el("li", { value: c.index }, el("button", { type: "button", class: "source-btn", onclick: (e) => showCitation(c, e.currentTarget) }, c.title || c.url || "source", c.locator ? el("span", { class: "muted" }, ` · ${c.locator}`) : "")),
    ),
  );
}

// -- documents in a chat ------------------------------------------------------------------

export function isDocument(file) {
  return !file.type.startsWith("image/");
}

export async function uploadDocument(file, conversationId) {
  const form = new FormData();
  form.append("file", file, file.name || "document");
  form.append("conversation_id", conversationId);
  const response = await request("POST", "/api/files", { body: form });
  return response.json();
}

export async function listDocuments(conversationId) {
  return api("GET", `/api/files?conversation_id=${encodeURIComponent(conversationId)}`);
}

export async function removeDocument(id) {
  return api("DELETE", `/api/files/${encodeURIComponent(id)}`);
}

// Poll a document until it is ready or failed, calling onUpdate with each new state.
export async function watchDocument(doc, onUpdate) {
  let current = doc;
  const pending = (d) => d.status === "queued" || d.status === "ingesting" || (d.status === "ready" && (d.embedding_progress ?? 1) < 1);
  while (pending(current)) {
    // Reading takes seconds; filling in vectors for a big file can take many minutes.
    await new Promise((r) => setTimeout(r, current.status === "ready" ? 5000 : 700));
    try {
      current = await api("GET", `/api/files/${encodeURIComponent(doc.id)}`);
    } catch {
      return current;
    }
    onUpdate(current);
  }
  return current;
}

export function documentChip(doc, onRemove) {
  // Ready means searchable by keywords; meaning-based search improves as vectors fill in.
  const embedding = doc.embedding_progress ?? 1;
  const status =
    doc.status === "ready"
      ? embedding < 1 ? `ready · indexing ${Math.round(100 * embedding)}%` : "ready"
      : doc.status === "failed"
        ? `failed: ${doc.error || "could not read it"}`
        : `reading… ${Math.round(100 * (doc.progress || 0))}%`;
  return el(
    "div",
    { class: `doc-chip ${doc.status}`, role: "status", title: doc.filename },
    el("span", { class: "doc-name" }, doc.filename),
    el("span", { class: "doc-status muted" }, status),
    el("button", { type: "button", class: "thumb-remove", "aria-label": `Remove ${doc.filename}`, onclick: onRemove }, icon("x")),
  );
}
