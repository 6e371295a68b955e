// The Compare panel of /admin/evals: two finished runs of one suite, prompt by prompt, through
// GET /api/evals/compare (admins only). The selects are filled from the run list; the default is
// the newest two runs of one suite on different versions. /admin/evals?compare=A,B opens a
// comparison directly (and picking one writes that address back, so it can be bookmarked).
// Every value from the API is set as text (api.js `el`), never parsed as HTML.
import { api, el } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("compare-form");
const suiteSelect = $("compare-suite");
const selectA = $("compare-a");
const selectB = $("compare-b");
const go = $("compare-go");
const status = $("compare-status");
const result = $("compare-result");
const body = $("compare-table").querySelector("tbody");
const FILTERS = ["all", "regressed", "improved", "changed"];
// Answers longer than this fold into <details> (their first line stays visible).
const FOLD_CHARS = 280;
const FOLD_LINES = 6;

let finished = []; // finished runs, newest first
let shown = "all";
let current = { a: "", b: "" }; // the comparison on show

function say(text, kind = "") {
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

function fmt(v, digits = 3) {
  return typeof v === "number" ? v.toFixed(digits) : "–";
}

function signed(v) {
  return typeof v === "number" ? `${v > 0 ? "+" : ""}${v.toFixed(3)}` : "–";
}

function pValue(p) {
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

function runLabel(r) {
  const day = new Date(r.started_at).toLocaleString();
  return `${r.model_version} · ${day} · ${r.n_items} items · ${r.id.slice(0, 8)}`;
}

// -- picking two runs -------------------------------------------------------------------------

// The newest run that has an older run of its suite on another version, with that older run;
// else the newest two runs of any one suite. Returns [a, b] (b the newer) or null.
function defaultPair(runs) {
  for (const [i, b] of runs.entries()) {
    const a = runs.slice(i + 1).find((r) => r.suite === b.suite && r.model_version !== b.model_version);
    if (a) return [a, b];
  }
  for (const [i, b] of runs.entries()) {
    const a = runs.slice(i + 1).find((r) => r.suite === b.suite);
    if (a) return [a, b];
  }
  return null;
}

function fillRuns(suite, pick) {
  const runs = finished.filter((r) => r.suite === suite);
  for (const select of [selectA, selectB]) {
    select.replaceChildren(...runs.map((r) => el("option", { value: r.id }, runLabel(r))));
  }
  const pair = pick || defaultPair(runs);
  if (pair) [selectA.value, selectB.value] = [pair[0].id, pair[1].id];
  go.disabled = runs.length < 2;
}

function fillSuites(runs) {
  const suites = [...new Set(runs.map((r) => r.suite))];
  suiteSelect.replaceChildren(...suites.map((s) => el("option", { value: s }, s)));
  for (const control of [suiteSelect, selectA, selectB]) control.disabled = !suites.length;
}

// A run named by a deep link but older than the list: add it, so the selects show what is open.
function ensureOption(run, suite) {
  if (!finished.some((r) => r.id === run.id)) finished.push({ ...run, suite });
}

async function loadRuns() {
  const runs = await api("GET", "/api/evals/runs?limit=1000");
  finished = runs.filter((r) => r.status === "finished");
  fillSuites(finished);
  const pair = defaultPair(finished);
  if (pair) {
    suiteSelect.value = pair[1].suite;
    fillRuns(pair[1].suite, pair);
  } else {
    fillRuns(finished[0]?.suite, null);
    if (!finished.length) say("Comparing needs two finished runs of one suite; none yet.", "muted");
    else say("Comparing needs two finished runs of one suite.", "muted");
  }
}

// -- the comparison -------------------------------------------------------------------------

function stat(value, label, cls = "") {
  return el("div", { class: `stat ${cls}`.trim() }, el("span", { class: "value" }, String(value)), el("span", { class: "label" }, label));
}

function verdictText(out) {
  const { only_a: worse, only_b: better, mcnemar_p: p, n } = out.paired;
  const b = out.b.model_version;
  if (!n) return "The two runs have no prompt in common.";
  if (worse === better) return `${b} passed as many prompts as ${out.a.model_version} did (p = ${pValue(p)}).`;
  const direction = better > worse ? "better" : "worse";
  if (p < 0.05) return `${b} is significantly ${direction} on pass/fail: p = ${pValue(p)} (exact McNemar).`;
  return `${b} looks ${direction}, but this may be chance: p = ${pValue(p)} (exact McNemar).`;
}

function headlineText(h) {
  if (h.a === null) return `${h.key}: no paired prompts to compare.`;
  const interval = h.ci_low === null ? "" : ` [95% paired bootstrap: ${signed(h.ci_low)}, ${signed(h.ci_high)}]`;
  const lower = h.higher_is_better ? "" : " (lower is better)";
  return `${h.key}${lower} on the ${h.n} paired prompts: ${fmt(h.a)} → ${fmt(h.b)}, difference ${signed(h.difference)}${interval}.`;
}

function longText(text) {
  return text.length > FOLD_CHARS || text.split("\n").length > FOLD_LINES;
}

// A text block; a long one folds, its summary the start of the text.
function textBlock(text, cls) {
  if (!longText(text)) return el("pre", { class: cls }, text);
  const head = text.slice(0, 120).split("\n")[0];
  return el("details", { class: "fold" }, el("summary", {}, `${head}…`), el("pre", { class: cls }, text));
}

function scoresText(scores) {
  return Object.entries(scores || {})
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(2)}`).join(", ");
}

function answerCell(side, label) {
  const verdict = el("span", { class: `badge ${side.passed ? "on" : "off"}` }, side.passed ? "pass" : "fail");
  const scores = scoresText(side.scores);
  return el("td", { "data-label": label },
    el("div", { class: "grade" }, verdict, scores ? el("span", { class: "muted small" }, scores) : null),
    textBlock(side.answer || "(empty answer)", "answer"));
}

function row(item, labelA, labelB) {
  const change = el("td", { "data-label": "Change" }, el("span", { class: `change ${item.change}` }, item.change));
  if (item.change === "same" && item.answer_changed) change.append(el("div", { class: "muted small" }, "new answer"));
  return el("tr", { dataset: { change: item.change } },
    el("td", { "data-label": "Prompt" }, el("div", { class: "muted small" }, item.example_id), textBlock(item.prompt, "prompt")),
    answerCell(item.a, labelA), answerCell(item.b, labelB), change);
}

function matches(change, filter) {
  return filter === "all" || change === filter || (filter === "changed" && change !== "same");
}

function applyFilter(filter) {
  shown = FILTERS.includes(filter) ? filter : "all";
  let visible = 0;
  for (const tr of body.rows) {
    if (!tr.dataset.change) continue;
    tr.hidden = !matches(tr.dataset.change, shown);
    visible += !tr.hidden;
  }
  for (const button of $("compare-filter").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.show === shown));
  }
  $("compare-shown").textContent = `${visible} of ${body.rows.length} prompts`;
  writeAddress();
}

function countFilters(items) {
  const count = (f) => items.filter((i) => matches(i.change, f)).length;
  for (const button of $("compare-filter").querySelectorAll("button")) {
    const name = button.dataset.show;
    button.textContent = `${name[0].toUpperCase()}${name.slice(1)} (${count(name)})`;
  }
}

function showUnpaired(unpaired) {
  const box = $("compare-unpaired");
  const total = unpaired.only_in_a + unpaired.only_in_b;
  box.hidden = !total;
  box.querySelector("summary").textContent =
    `${total} unpaired prompt${total === 1 ? "" : "s"}: ${unpaired.only_in_a} only in A, ${unpaired.only_in_b} only in B (not counted above)`;
  box.querySelector("ul").replaceChildren(...unpaired.items.map((u) =>
    el("li", {}, el("strong", {}, `${u.run.toUpperCase()} · ${u.example_id} · ${u.passed ? "pass" : "fail"}: `), u.prompt)));
}

function render(out) {
  const labelA = `A · ${out.a.model_version}`;
  const labelB = `B · ${out.b.model_version}`;
  $("compare-head-a").textContent = labelA;
  $("compare-head-b").textContent = labelB;
  $("compare-verdict").textContent = verdictText(out);
  const p = out.paired;
  $("compare-stats").replaceChildren(
    stat(p.only_a, "Regressed (passed only in A)", "regressed"),
    stat(p.only_b, "Improved (passed only in B)", "improved"),
    stat(p.both, "Passed in both"),
    stat(p.neither, "Failed in both"),
    stat(pValue(p.mcnemar_p), "McNemar p (exact)"),
  );
  $("compare-headline").textContent = headlineText(p.headline);
  body.replaceChildren(...out.items.map((item) => row(item, labelA, labelB)));
  if (!out.items.length) body.append(el("tr", {}, el("td", { colspan: 4 }, "No prompt is in both runs.")));
  countFilters(out.items);
  showUnpaired(out.unpaired);
  result.hidden = false;
  applyFilter(shown);
}

function writeAddress() {
  const params = new URLSearchParams(location.search);
  if (current.a && current.b) params.set("compare", `${current.a},${current.b}`);
  if (shown === "all") params.delete("show");
  else params.set("show", shown);
  const query = params.toString().replaceAll("%2C", ",");
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

async function compare(a, b) {
  if (a === b) { say("Pick two different runs.", "error"); return; }
  say("Comparing…");
  go.disabled = true;
  try {
    const out = await api("GET", `/api/evals/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    current = { a, b };
    for (const run of [out.a, out.b]) ensureOption(run, out.suite);
    if (suiteSelect.value !== out.suite) {
      if (![...suiteSelect.options].some((o) => o.value === out.suite)) suiteSelect.append(el("option", { value: out.suite }, out.suite));
      suiteSelect.value = out.suite;
    }
    fillRuns(out.suite, [{ id: a }, { id: b }]);
    render(out);
    say("");
  } catch (err) {
    say(err.message, "error");
  } finally {
    go.disabled = selectA.options.length < 2;
  }
}

suiteSelect.addEventListener("change", () => fillRuns(suiteSelect.value, null));
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  compare(selectA.value, selectB.value);
});
$("compare-filter").addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-show]");
  if (button) applyFilter(button.dataset.show);
});

async function start() {
  const params = new URLSearchParams(location.search);
  shown = FILTERS.includes(params.get("show")) ? params.get("show") : "all";
  try {
    await loadRuns();
  } catch (err) {
    say(err.message, "error");
  }
  const link = params.get("compare");
  if (link) {
    const [a = "", b = ""] = link.split(",");
    await compare(a.trim(), b.trim());
    $("compare").scrollIntoView();
  }
}

start();
