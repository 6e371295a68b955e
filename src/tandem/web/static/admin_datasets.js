// The admin datasets page (a file, not inline: the CSP runs no inline script).
"use strict";
function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)tandem_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}
async function api(path, options = {}) {
  const headers = { "X-CSRF-Token": csrf(), ...(options.headers || {}) };
  if (options.body) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { credentials: "same-origin", ...options, headers });
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
function setStatus(text, cls) {
  const s = document.getElementById("status");
  s.textContent = text; s.className = "status " + (cls || "");
}
async function showCard(id) {
  const d = await api(`/api/datasets/${encodeURIComponent(id)}`);
  const card = document.getElementById("card");
  card.textContent = d.card; card.hidden = false;
  document.getElementById("card-title").hidden = false;
  card.scrollIntoView({ behavior: "smooth" });
}
async function refresh() {
  const body = document.getElementById("snapshots");
  let rows;
  try { rows = await api("/api/datasets"); }
  catch (e) { body.replaceChildren(el("tr")); body.firstChild.append(el("td", e.message, { colspan: 6 })); return; }
  body.replaceChildren();
  if (!rows.length) { const tr = el("tr"); tr.append(el("td", "No snapshots yet.", { colspan: 6 })); body.append(tr); }
  for (const s of rows) {
    const tr = el("tr");
    const idCell = el("td");
    const link = el("a", s.id, { href: "#" });
    link.addEventListener("click", (ev) => { ev.preventDefault(); showCard(s.id).catch((e) => setStatus(e.message, "error")); });
    idCell.append(link, el("br"), el("code", s.hash.slice(0, 19) + "…", { title: s.hash }));
    const counts = s.counts || {};
    tr.append(idCell, el("td", s.kind), el("td", s.name || ""),
      el("td", `${counts.train ?? "?"} train / ${counts.test ?? "?"} test`),
      el("td", new Date(s.created_at).toLocaleString()));
    const files = el("td", undefined, { class: "files" });
    for (const name of ["train.jsonl", "test.jsonl", "train.parquet", "test.parquet", "card.md", "manifest.json", "provenance.jsonl"]) {
      files.append(el("a", name, { href: s.files[name], download: "" }));
    }
    tr.append(files);
    body.append(tr);
  }
}
// Source: users' signals, or one rater task (its kind decides the snapshot's kind).
const source = document.getElementById("source");
const taskSelect = document.getElementById("task-id");
const kindSelect = document.querySelector('#build select[name="kind"]');
function showSource() {
  for (const node of document.querySelectorAll("#build [data-source]")) node.hidden = node.dataset.source !== source.value;
  const option = taskSelect.selectedOptions[0];
  if (source.value === "rater_task" && option) kindSelect.value = option.dataset.kind;
  kindSelect.disabled = source.value === "rater_task";
}
async function loadTasks() {
  try {
    const tasks = await api("/api/admin/tasks");
    taskSelect.replaceChildren(...tasks.filter((t) => t.dataset_kind).map((t) => el("option", `${t.title} (${t.kind}, ${t.report.progress.submitted} submitted)`, { value: t.id, "data-kind": t.dataset_kind })));
  } catch (e) { setStatus(e.message, "error"); }
  showSource();
}
source.addEventListener("change", showSource);
taskSelect.addEventListener("change", showSource);
function raterTaskBody(form) {
  const filters = { task_id: form.get("task_id"), test_fraction: Number(form.get("test_fraction") || 0),
    near_duplicate_threshold: Number(form.get("near_duplicate_threshold") || 0.9) };
  for (const key of ["min_agreement", "min_gold_accuracy"]) if (form.get(key) !== "") filters[key] = Number(form.get(key));
  return { kind: kindSelect.value, source: "rater_task", name: form.get("name") || "", filters };
}
document.getElementById("build").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  if (source.value === "rater_task") {
    setStatus("Building…");
    try {
      const s = await api("/api/datasets", { method: "POST", body: JSON.stringify(raterTaskBody(form)) });
      setStatus(`Snapshot ${s.id}: ${s.counts.train} train / ${s.counts.test} test rows.`, "ok");
      await refresh();
    } catch (e) { setStatus(e.message, "error"); }
    return;
  }
  const filters = { reasons: form.getAll("reasons") };
  for (const key of ["profile_id", "model_version"]) if (form.get(key)) filters[key] = form.get(key);
  for (const key of ["since", "until"]) if (form.get(key)) filters[key] = new Date(form.get(key)).toISOString();
  if (form.get("per_user_cap")) filters.per_user_cap = Number(form.get("per_user_cap"));
  // KTO only (the API refuses it for other kinds): implicit negatives, a share of them kept.
  if (Number(form.get("implicit_weight"))) filters.implicit_weight = Number(form.get("implicit_weight"));
  filters.test_fraction = Number(form.get("test_fraction") || 0);
  filters.near_duplicate_threshold = Number(form.get("near_duplicate_threshold") || 0.9);
  setStatus("Building…");
  try {
    const s = await api("/api/datasets", {
      method: "POST",
      body: JSON.stringify({ kind: kindSelect.value, name: form.get("name") || "", filters }),
    });
    setStatus(`Snapshot ${s.id}: ${s.counts.train} train / ${s.counts.test} test rows.`, "ok");
    await refresh();
  } catch (e) { setStatus(e.message, "error"); }
});
refresh();
loadTasks();
