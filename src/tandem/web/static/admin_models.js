// The admin Models page: the lineage of every model version as a tree (parent above the
// versions trained from it), and the chosen version's facts, serving, data, lineage, metrics,
// config and card, with Archive / Restore. Everything comes from /api/admin/models
// (tandem.api.routes.models_admin); the card is markdown, rendered and sanitized by the chat's
// own renderer (markdown.js). `?version=ID` opens a version.

import { api, confirmDialog, copyText, el, toast } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const ARCHIVED = "retired";
const SAFE_LINK = /^(?:https?:|mailto:)/i;
const RELATIVE_IMAGE = /!\[([^\]]*)\]\((?!https?:)([^)\s]+)\)/g;

const $ = (id) => document.getElementById(id);
const state = { versions: [], selected: null, detail: null };

function setStatus(text, kind = "") {
  const box = $("status");
  box.textContent = text;
  box.className = `status ${kind}`.trim();
}

function shortHash(hash) {
  if (!hash) return "";
  const [algorithm, digest] = String(hash).split(":");
  return digest ? `${algorithm}:${digest.slice(0, 12)}` : algorithm.slice(0, 12);
}

function fmtNumber(value) {
  return typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(4) : String(value);
}

function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

function statusLabel(status) {
  return status === ARCHIVED ? "archived" : status;
}

function badge(status) {
  return el("span", { class: `badge status-${status}`, dataset: { status } }, statusLabel(status));
}

function rolloutName(place) {
  return place.profile_id ? `profile ${place.profile_id}'s rollout` : "the site rollout";
}

// One line per place the version answers chats.
function servingText(place) {
  if (place.role === "default") return "The server's default model (no site rollout yet)";
  if (place.role === "production") return `Production in ${rolloutName(place)}`;
  const share = `${Math.round((place.traffic_share || 0) * 100)}% of traffic`;
  return `Candidate in ${rolloutName(place)}: ${share}${place.in_comparisons ? ", in blind comparisons" : ""}`;
}

function servingShort(serving) {
  return serving.map((p) => (p.role === "candidate" ? `candidate ${Math.round((p.traffic_share || 0) * 100)}%` : p.role === "default" ? "default" : "serving")).join(", ");
}

// -- the lineage tree --------------------------------------------------------------------

function childrenOf(versions) {
  const ids = new Set(versions.map((v) => v.id));
  const children = new Map();
  for (const v of versions) { // oldest first: children keep their creation order
    const parent = v.parent_id && ids.has(v.parent_id) && v.parent_id !== v.id ? v.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(v);
  }
  return children;
}

function nodeButton(v) {
  const data = v.datasets.map((d) => d.snapshot_id || shortHash(d.hash) || d.source).filter(Boolean);
  const meta = [
    v.kind !== "chat" ? v.kind : "",
    v.method || (v.parent_id ? "" : "base"),
    data.length ? `data ${data.join(", ")}` : "",
    v.final_loss != null ? `loss ${fmtNumber(v.final_loss)}` : "",
    servingShort(v.serving),
  ].filter(Boolean).join(" · ");
  return el(
    "button",
    {
      type: "button",
      class: `node${v.status === ARCHIVED ? " archived" : ""}`,
      dataset: { version: v.id },
      "aria-current": v.id === state.selected ? "true" : "false",
      onclick: () => select(v.id),
    },
    el("span", { class: "name" }, v.id),
    badge(v.status),
    meta ? el("span", { class: "meta" }, meta) : null,
  );
}

function renderTree() {
  const box = $("lineage");
  box.removeAttribute("aria-busy");
  if (!state.versions.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No model versions yet: `tandem serve` registers the embedded model on its first start, and every training run adds one."));
    return;
  }
  const showArchived = $("show-archived").checked;
  const children = childrenOf(state.versions);
  const seen = new Set();
  // An archived version stays in the tree while it has a shown descendant: the edges must hold.
  const branch = (v) => {
    if (seen.has(v.id)) return null; // a cycle in bad data must not hang the page
    seen.add(v.id);
    const kids = (children.get(v.id) || []).map(branch).filter(Boolean);
    if (v.status === ARCHIVED && !showArchived && !kids.length) return null;
    return el("li", { dataset: { version: v.id } }, nodeButton(v), kids.length ? el("ul", {}, kids) : null);
  };
  const roots = (children.get(null) || []).map(branch).filter(Boolean);
  box.replaceChildren(roots.length ? el("ul", { class: "tree", role: "list" }, roots) : el("p", { class: "muted" }, "Every version is archived."));
}

// -- one version ---------------------------------------------------------------------------

function versionLink(id) {
  return el("button", { type: "button", class: "linkish", dataset: { version: id }, onclick: () => select(id) }, id);
}

function fact(term, ...value) {
  return [el("dt", {}, term), el("dd", {}, ...value)];
}

function renderFacts(d) {
  const formats = Object.keys(d.formats || {}).join(", ");
  $("detail-facts").replaceChildren(
    ...fact("Parent", d.parent_id ? versionLink(d.parent_id) : "none (a base model)"),
    ...fact("Kind", d.kind),
    ...(d.method ? fact("Method", d.method) : []),
    ...fact("Created", fmtDate(d.created_at)),
    ...(d.final_loss != null ? fact("Final loss", fmtNumber(d.final_loss)) : []),
    ...(formats ? fact("Formats", formats) : []),
    ...(d.base_path ? fact("Files", el("code", {}, d.base_path)) : []),
  );
}

function renderServing(d) {
  const items = d.serving.map((p) => el("li", {}, servingText(p), p.rollout_id ? [" · ", el("a", { href: "/admin/rollouts" }, "Rollouts")] : null));
  $("detail-serving").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Not served by any rollout.")]));
}

function renderDatasets(d) {
  const items = d.datasets.map((ds) => {
    const parts = [
      ds.name ? `“${ds.name}”` : "",
      ds.kind || "",
      ds.rows != null ? `${ds.rows} rows` : "",
      ds.hash ? shortHash(ds.hash) : "",
      ds.created_at ? `built ${fmtDate(ds.created_at)}` : "",
    ].filter(Boolean).join(" · ");
    const what = ds.snapshot_id
      ? ["snapshot ", el("a", { href: "/admin/datasets", title: "Datasets" }, el("code", {}, ds.snapshot_id))]
      : [el("code", {}, ds.source || "a file")];
    const note = ds.snapshot_id && !ds.recorded ? " (not in this database)" : "";
    return el("li", { dataset: { snapshot: ds.snapshot_id || "" } }, ...what, parts ? ` · ${parts}` : "", note);
  });
  const none = d.parent_id ? "Not recorded." : "A base model: not trained here.";
  $("detail-datasets").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, none)]));
}

function renderLineage(d) {
  const chain = [...d.ancestors].reverse();
  const path = el("p", { class: "chain" });
  for (const id of chain) path.append(versionLink(id), " → ");
  path.append(el("strong", {}, d.id));
  const kids = d.descendants.length
    ? el("p", {}, "Trained from it: ", ...d.descendants.flatMap((id, i) => (i ? [", ", versionLink(id)] : [versionLink(id)])))
    : el("p", { class: "muted" }, "No version has been trained from it yet.");
  $("detail-lineage").replaceChildren(path, kids);
}

function renderMetrics(d) {
  const rows = Object.entries(d.metrics || {}).map(([key, value]) =>
    el("tr", {}, el("th", { scope: "row" }, key), el("td", { class: typeof value === "number" ? "num" : "" }, typeof value === "object" && value !== null ? JSON.stringify(value) : fmtNumber(value))),
  );
  $("detail-metrics").replaceChildren(...rows);
  $("detail-metrics-box").hidden = !rows.length;
  const config = d.config || {};
  $("detail-config").textContent = JSON.stringify(config, null, 2);
  $("detail-config-box").hidden = !Object.keys(config).length;
}

// The card's relative links and images (its loss curve, written next to the weights) point at
// files this page does not serve: they are shown as text naming the file.
function renderCard(d) {
  const card = $("detail-card");
  const source = d.card.replace(RELATIVE_IMAGE, (_, alt, path) => `*${alt || "image"}: \`${path}\` in the version's files*`);
  if (!d.card.trim()) {
    card.replaceChildren(el("p", { class: "muted" }, "No card was written for this version."));
    return;
  }
  card.innerHTML = renderMarkdown(source);
  for (const a of card.querySelectorAll("a")) {
    if (!SAFE_LINK.test(a.getAttribute("href") || "")) a.replaceWith(el("span", {}, a.textContent));
  }
}

function renderDetail(d) {
  $("detail").hidden = false;
  $("detail-title").textContent = d.id;
  const status = $("detail-status");
  status.className = `badge status-${d.status}`;
  status.dataset.status = d.status;
  status.textContent = statusLabel(d.status);
  $("archive").hidden = d.status === ARCHIVED;
  $("restore").hidden = d.status !== ARCHIVED;
  renderFacts(d);
  renderServing(d);
  renderDatasets(d);
  renderLineage(d);
  renderMetrics(d);
  renderCard(d);
}

async function select(id, { scroll = true, keepStatus = false } = {}) {
  state.selected = id;
  for (const node of document.querySelectorAll(".node")) node.setAttribute("aria-current", String(node.dataset.version === id));
  const url = new URL(location.href);
  url.searchParams.set("version", id);
  history.replaceState(null, "", url);
  try {
    const d = await api("GET", `/api/admin/models/${encodeURIComponent(id)}`);
    if (state.selected !== id) return; // another version was chosen meanwhile
    state.detail = d;
    renderDetail(d);
    if (!keepStatus) setStatus("");
    if (scroll && matchMedia("(max-width: 900px)").matches) $("detail").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    setStatus(err.message, "error");
  }
}

// -- actions -------------------------------------------------------------------------------

async function changeStatus(action) {
  const d = state.detail;
  if (!d) return;
  if (action === "archive") {
    const ok = await confirmDialog(
      `Archive ${d.id}?`,
      "It is marked archived; its files, card and place in the lineage stay, and it can be restored as a candidate.",
      "Archive",
    );
    if (!ok) return;
  }
  const button = $(action);
  button.disabled = true;
  try {
    const result = await api("POST", `/api/admin/models/${encodeURIComponent(d.id)}/${action}`);
    const done = action === "archive" ? "archived" : `restored as ${statusLabel(result.status)}`;
    setStatus(`${d.id} ${done}.`, "ok");
    toast(`${d.id} ${done}`);
    await load();
  } catch (err) {
    setStatus(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function load() {
  try {
    state.versions = await api("GET", "/api/admin/models");
  } catch (err) {
    $("lineage").replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  renderTree();
  if (!state.selected) return;
  if (state.versions.some((v) => v.id === state.selected)) await select(state.selected, { scroll: false, keepStatus: true });
  else setStatus(`There is no model version “${state.selected}”.`, "error");
}

$("show-archived").addEventListener("change", renderTree);
$("archive").addEventListener("click", () => changeStatus("archive"));
$("restore").addEventListener("click", () => changeStatus("restore"));
$("detail-card").addEventListener("click", (event) => {
  const button = event.target.closest(".copy-code");
  if (button) copyText(button.closest(".code-block").querySelector("code").textContent);
});

state.selected = new URL(location.href).searchParams.get("version");
load();
