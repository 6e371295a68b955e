// The rater tasks page: create a task (items pasted as JSONL, or added one by one into the
// same list), list tasks with progress, Krippendorff's alpha, each rater's gold accuracy and
// speed, and open one to adjudicate the items raters disagree on. Everything goes through
// /api/admin/tasks (admins only, CSRF on writes).
import { api, el, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("task-form");
const itemsBox = $("task-items");
const detail = $("task-detail");
let openTask = null;

const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
const num = (x, digits = 2) => (x === null || x === undefined ? "–" : x.toFixed(digits));
const secs = (x) => (x === null || x === undefined ? "–" : `${x < 10 ? x.toFixed(1) : Math.round(x)} s`);

// [[value, name], ...] of the spec labels (pass, fail, not applicable), from the page.
const LABELS = JSON.parse(detail.dataset.labels || "[]");
const labelName = (value) => (LABELS.find(([v]) => v === value) || [value, value])[1];

function showKindFields() {
  const kind = $("task-kind").value;
  for (const node of form.querySelectorAll("[data-for]")) node.hidden = !node.dataset.for.split(" ").includes(kind);
}
$("task-kind").addEventListener("change", showKindFields);
showKindFields();

// "Add item": one JSON line appended to the list the form sends.
$("item-add").addEventListener("click", () => {
  const kind = $("task-kind").value;
  const prompt = $("item-prompt").value.trim();
  const rule = $("item-rule").value.trim();
  if (kind === "red_team" ? !rule : !prompt) { toast(`Write the item's ${kind === "red_team" ? "rule" : "prompt"} first`, "error"); return; }
  const item = kind === "red_team" ? { rule } : { prompt };
  const gold = $("item-gold").value.trim().split(/[\s,]+/).filter(Boolean);
  if (kind === "ranking") {
    const answers = $("item-answers").value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (answers.length) item.answers = answers;
    if (gold.length) item.gold = gold.map(Number);
  } else if (kind === "spec_label") {
    const response = $("item-answers").value.trim();
    if (response) item.answers = [response];
    if (gold.length) item.gold_labels = gold;
  }
  const lines = itemsBox.value.trim();
  itemsBox.value = (lines ? lines + "\n" : "") + JSON.stringify(item);
  for (const id of ["item-prompt", "item-answers", "item-gold", "item-rule"]) $(id).value = "";
  toast("Item added");
});

function parseItems(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line, n) => {
    try { return JSON.parse(line); }
    catch { throw new Error(`Item line ${n + 1} is not JSON`); }
  });
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const data = new FormData(form);
  const error = $("task-error");
  error.hidden = true;
  const button = $("task-create");
  button.disabled = true;
  try {
    const body = {
      title: data.get("title"),
      kind: data.get("kind"),
      guideline: data.get("guideline") || "",
      raters_per_item: Number(data.get("raters_per_item") || 2),
      samples_per_model: Number(data.get("samples_per_model") || 1),
      models: data.getAll("models"),
      items: parseItems(itemsBox.value),
    };
    if (body.kind === "spec_label") body.behaviors = data.getAll("behaviors");
    const task = await api("POST", "/api/admin/tasks", body);
    form.reset();
    showKindFields();
    toast(`Task "${task.title}" created with ${task.items.length} items`);
    await load();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

function raterLines(report) {
  if (!report.raters.length) return [el("span", { class: "muted" }, "no submissions yet")];
  return report.raters.map((r) => el("span", { class: "rater-line", dataset: { rater: r.email } },
    `${r.email}: ${r.gold_items ? `${pct(r.gold_accuracy)} gold (${r.gold_correct}/${r.gold_items})` : "no gold"} · ${secs(r.median_seconds)}`));
}

function findingLines(report) {
  if (!report.raters.length) return [el("span", { class: "muted" }, "no submissions yet")];
  return report.raters.map((r) => el("span", { class: "rater-line", dataset: { rater: r.email } },
    `${r.email}: ${r.findings} finding${r.findings === 1 ? "" : "s"} · ${secs(r.median_seconds)}`));
}

function taskRow(task) {
  const r = task.report;
  const p = r.progress;
  const alpha = !r.alpha.applies ? "n/a" : r.alpha.value === null ? "–" : `${num(r.alpha.value)} (${r.alpha.level})`;
  return el("tr", { dataset: { task: task.id, title: task.title } },
    el("td", {}, el("button", { type: "button", class: "linkish", onclick: () => show(task.id) }, task.title)),
    el("td", {}, task.kind),
    el("td", { class: "num" }, `${p.submitted} / ${p.assigned} submitted · ${p.items} item${p.items === 1 ? "" : "s"}`),
    el("td", { class: "num alpha" }, alpha),
    el("td", { class: "raters" }, ...(task.kind === "red_team" ? findingLines(r) : raterLines(r))),
    el("td", { class: "num" }, r.alpha.applies ? String(r.disagreements.length) : "n/a"));
}

async function load() {
  const body = $("tasks").tBodies[0];
  try {
    const tasks = await api("GET", "/api/admin/tasks");
    body.replaceChildren(...(tasks.length ? tasks.map(taskRow) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No tasks yet."))]));
    if (openTask) await show(openTask);
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, `Couldn't load tasks: ${err.message}`)));
  }
}

function promptText(messages) {
  return messages.map((m) => (m.role === "user" ? m.content : `[${m.role}] ${m.content}`)).join("\n");
}

function labelsResolveForm(task, d) {
  const selects = task.behaviors.map((b, k) => {
    const select = el("select", { "aria-label": `Label for ${b}` }, ...LABELS.map(([v, name]) => el("option", { value: v }, name)));
    select.value = (d.resolution?.labels || d.rankings[0]?.labels || [])[k] || "pass";
    return select;
  });
  const submit = async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", `/api/admin/tasks/${encodeURIComponent(task.id)}/items/${encodeURIComponent(d.item_id)}/resolve`,
        { labels: selects.map((s) => s.value) });
      toast("Resolved");
      await show(task.id);
    } catch (err) { toast(err.message, "error"); }
  };
  return el("form", { class: "resolve", onsubmit: submit },
    ...selects.map((s, k) => el("label", {}, task.behaviors[k], s)),
    el("button", { type: "submit" }, d.resolution ? "Resolve again" : "Resolve"));
}

function raterLine(task, r) {
  if (!r.labels) return el("p", { class: "ranks" }, `${r.rater}: ranks ${r.ranks.join(", ")}`);
  const parts = r.labels.map((label, k) => `${task.behaviors[k]} ${labelName(label)}${r.rationales?.[k] ? ` (${r.rationales[k]})` : ""}`);
  return el("p", { class: "ranks" }, `${r.rater}: ${parts.join("; ")}`);
}

function resolveForm(task, d) {
  if (task.kind === "spec_label") return labelsResolveForm(task, d);
  const selects = d.answers.map((_, k) => {
    const select = el("select", { "aria-label": `Rank of answer ${k + 1}` },
      ...d.answers.map((__, r) => el("option", { value: String(r + 1) }, String(r + 1))));
    select.value = String((d.resolution?.ranks || [])[k] || k + 1);
    return select;
  });
  const note = el("input", { maxlength: "2000", placeholder: "note (optional)", "aria-label": "Note" });
  const submit = async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", `/api/admin/tasks/${encodeURIComponent(task.id)}/items/${encodeURIComponent(d.item_id)}/resolve`,
        { ranks: selects.map((s) => Number(s.value)), note: note.value });
      toast("Resolved: the dataset uses your order for this item");
      await show(task.id);
    } catch (err) { toast(err.message, "error"); }
  };
  return el("form", { class: "resolve", onsubmit: submit },
    ...selects.map((s, k) => el("label", {}, `Answer ${k + 1}`, s)), note,
    el("button", { type: "submit" }, d.resolution ? "Resolve again" : "Resolve"));
}

function disagreement(task, d) {
  return el("div", { class: "disagreement", dataset: { item: d.item_id } },
    el("p", {}, el("strong", {}, `Item ${d.position + 1}`), d.is_gold ? " (gold)" : "",
      ` · raters agree on ${pct(d.agreement)} of ${task.kind === "spec_label" ? "behaviors" : "answer pairs"}`, d.resolution ? el("span", { class: "badge on" }, "resolved") : ""),
    el("pre", {}, promptText(d.prompt)),
    el("ol", {}, ...d.answers.map((a) => el("li", {}, a))),
    ...d.rankings.map((r) => raterLine(task, r)),
    resolveForm(task, d));
}

function findings(r) {
  return [el("h3", {}, `Findings (${r.findings.length})`),
    ...(r.findings.length ? r.findings.map((f) => el("div", { class: "disagreement finding" },
      el("p", {}, el("strong", {}, f.rule), ` · found by ${f.rater} · regression case `, el("code", {}, f.regression_case)),
      ...f.messages.map((m, k) => el("p", { class: k === f.messages.length - 1 ? "ranks bad" : "ranks" }, `${m.role}: ${m.content}`)),
      el("p", {}, `Why: ${f.explanation}`)))
      : [el("p", { class: "muted" }, "No finding yet.")])];
}

async function show(taskId) {
  openTask = taskId;
  const task = await api("GET", `/api/admin/tasks/${encodeURIComponent(taskId)}`);
  const r = task.report;
  const raters = el("table", {},
    el("thead", {}, el("tr", {}, ...["Rater", "Submitted", "Gold correct", "Gold accuracy", "Median time per item"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...r.raters.map((x) => el("tr", {},
      el("td", {}, x.email), el("td", { class: "num" }, String(x.submitted)),
      el("td", { class: "num" }, `${x.gold_correct} / ${x.gold_items}`),
      el("td", { class: "num" }, pct(x.gold_accuracy)), el("td", { class: "num" }, secs(x.median_seconds))))));
  detail.replaceChildren(
    el("h2", {}, task.title),
    el("p", { class: "muted" }, `${task.kind} · ${task.raters_per_item} raters per item · ${task.items.length} item${task.items.length === 1 ? "" : "s"} (${task.items.filter((i) => i.is_gold).length} gold)`),
    el("p", {}, r.alpha.applies
      ? `Krippendorff's alpha (${r.alpha.level}, over the ${task.kind === "spec_label" ? "label each behavior got" : "ranks each answer got"}): ${num(r.alpha.value, 3)}`
      : `Agreement: not measured for ${task.kind === "red_team" ? "red-team findings" : "demonstrations"} (each is one rater's conversation).`),
    el("div", { class: "table-wrap" }, raters),
    ...(task.kind === "red_team" ? findings(r) : []),
    ...(!r.alpha.applies ? [] : [el("h3", {}, `Disagreements (${r.disagreements.length})`),
      ...(r.disagreements.length ? r.disagreements.map((d) => disagreement(task, d))
        : [el("p", { class: "muted" }, "None: the raters agree on every item.")])]));
  detail.hidden = false;
}

load();
