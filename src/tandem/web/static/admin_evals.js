// The admin evals page (a file, not inline: the CSP runs no inline script).
"use strict";
async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
  return data;
}
function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}
function fmt(v) { return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v); }
function summaryText(s) {
  return Object.entries(s || {}).filter(([, v]) => typeof v !== "object" || v === null)
    .map(([k, v]) => `${k}: ${fmt(v)}`).join("\n");
}
async function showItems(id) {
  const run = await api(`/api/evals/runs/${encodeURIComponent(id)}`);
  const table = document.getElementById("items");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const i of run.items) {
    const tr = el("tr");
    const resp = el("td"); resp.append(el("pre", i.response));
    tr.append(el("td", i.example_id), el("td", i.passed ? "pass" : "fail", { class: i.passed ? "pass" : "fail" }),
      el("td", Object.entries(i.scores).map(([k, v]) => `${k}: ${fmt(v)}`).join(", ")), resp);
    body.append(tr);
  }
  table.hidden = false;
  document.getElementById("items-title").hidden = false;
  document.getElementById("items-title").textContent = `Items of ${run.suite} · ${run.model_version} (${run.id})`;
  table.scrollIntoView({ behavior: "smooth" });
}
async function refresh() {
  const body = document.getElementById("runs");
  let rows;
  try { rows = await api("/api/evals/runs"); }
  catch (e) { body.replaceChildren(el("tr")); body.firstChild.append(el("td", e.message, { colspan: 8, class: "error" })); return; }
  body.replaceChildren();
  if (!rows.length) { const tr = el("tr"); tr.append(el("td", "No runs yet.", { colspan: 8 })); body.append(tr); }
  for (const r of rows) {
    const tr = el("tr");
    const idCell = el("td");
    const link = el("a", r.id.slice(0, 12), { href: "#", title: r.id });
    link.addEventListener("click", (ev) => { ev.preventDefault(); showItems(r.id).catch((e) => alert(e.message)); });
    idCell.append(link);
    const summary = el("td"); summary.append(el("pre", summaryText(r.summary)));
    tr.append(idCell, el("td", r.suite), el("td", r.model_version), el("td", r.status),
      el("td", String(r.n_items)), summary,
      el("td", r.wall_seconds == null ? "" : `${r.wall_seconds.toFixed(1)} s`),
      el("td", new Date(r.started_at).toLocaleString()));
    body.append(tr);
  }
}
refresh();
