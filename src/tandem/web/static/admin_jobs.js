// The admin Jobs page: queue training and eval jobs, watch them (progress, loss curve, log),
// cancel and resume. The forms are rendered by the server (the training form from the same
// config the CLI's options come from); this script reads and changes /api/admin/jobs
// (tandem.api.routes.jobs) and polls while any job is queued or running. `?job=ID` opens a job.

import { api, el } from "./api.js";
import { drawCurve } from "./admin_jobs_curve.js";

const ACTIVE = new Set(["queued", "running"]);
const RESUMABLE = new Set(["interrupted", "failed", "cancelled"]);
const POLL_MS = 2000;

const $ = (id) => document.getElementById(id);
const state = { jobs: [], selected: new URLSearchParams(location.search).get("job"), timer: null };

function setStatus(text, kind = "") {
  const box = $("status");
  box.textContent = text;
  box.className = `status ${kind}`.trim();
}

function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

function badge(status) {
  return el("span", { class: `badge job-${status}`, dataset: { status } }, status);
}

function progressText(job) {
  if (!job.total_steps) return job.phase || "";
  const unit = job.kind === "train" ? "step" : "prompt";
  return `${unit} ${job.step} of ${job.total_steps}`;
}

// ---- the training form -------------------------------------------------------------------

async function loadDatasets() {
  const select = $("train-dataset");
  const kind = $("train-method").selectedOptions[0].dataset.kind;
  let snapshots = [];
  try {
    snapshots = (await api("GET", "/api/datasets")).filter((s) => s.kind === kind);
  } catch (err) {
    setStatus(err.message, "error");
  }
  select.replaceChildren(
    ...(snapshots.length
      ? snapshots.map((s) => el("option", { value: s.id }, `${s.name || s.id} · ${s.counts.train ?? "?"} rows · ${fmtDate(s.created_at)}`))
      : [el("option", { value: "" }, `No ${kind} snapshot yet`)]),
  );
  const lr = document.querySelector('[data-field="learning_rate"]');
  if (lr) lr.placeholder = `method default: ${$("train-method").selectedOptions[0].dataset.lr}`;
}

// Only the fields changed from their defaults are sent: the job's spec says what was chosen.
function configValues() {
  const config = {};
  for (const input of document.querySelectorAll("#train-config [data-field]")) {
    const { field, type } = input.dataset;
    const fallback = input.dataset.default;
    if (type === "bool") {
      if (String(input.checked) !== fallback) config[field] = input.checked;
    } else if (type === "optbool") {
      if (input.value) config[field] = input.value === "true";
    } else {
      const raw = input.value.trim();
      if (raw === fallback || raw === "") continue;
      config[field] = type === "int" || type === "float" ? Number(raw) : raw;
    }
  }
  return config;
}

async function startTraining(event) {
  event.preventDefault();
  const body = {
    method: $("train-method").value,
    dataset: $("train-dataset").value,
    base: $("train-base").value,
    config: configValues(),
  };
  if (!body.dataset) return setStatus("Choose a dataset snapshot first.", "error");
  const name = $("train-output").value.trim();
  if (name) body.output_version = name;
  await launch("/api/admin/jobs/train", body, $("train-submit"));
}

async function startEval(event) {
  event.preventDefault();
  const versions = [...document.querySelectorAll('#eval-versions input:checked')].map((i) => i.value);
  if (!versions.length) return setStatus("Choose at least one version.", "error");
  const limit = $("eval-limit").value.trim();
  const maxTokens = $("eval-max-tokens").value.trim();
  const body = { suite: $("eval-suite").value, versions, limit: limit ? Number(limit) : null, max_tokens: maxTokens ? Number(maxTokens) : null };
  await launch("/api/admin/jobs/eval", body, $("eval-submit"));
}

async function launch(path, body, button) {
  button.disabled = true;
  try {
    const job = await api("POST", path, body);
    setStatus(`Queued: ${job.title}`, "ok");
    state.selected = job.id;
    await refresh();
  } catch (err) {
    setStatus(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

// ---- the list and the open job -----------------------------------------------------------

function renderJobs() {
  const body = $("jobs");
  body.removeAttribute("aria-busy");
  if (!state.jobs.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No jobs yet: start one above.")));
    return;
  }
  body.replaceChildren(
    ...state.jobs.map((job) =>
      el(
        "tr",
        { class: job.id === state.selected ? "selected" : "", dataset: { job: job.id } },
        el("td", {}, el("button", { type: "button", class: "linkish", onclick: () => select(job.id) }, job.title)),
        el("td", {}, badge(job.status)),
        el("td", {}, el("progress", { max: 1, value: job.fraction, "aria-label": `${job.title} progress` }), " ", el("span", { class: "small muted" }, progressText(job))),
        el("td", { class: "num" }, fmtDate(job.started_at || job.created_at)),
        el("td", {}, actionButton(job)),
      ),
    ),
  );
}

function actionButton(job) {
  if (ACTIVE.has(job.status)) return el("button", { type: "button", class: "btn small danger-outline", onclick: () => control(job.id, "cancel") }, "Cancel");
  if (RESUMABLE.has(job.status)) return el("button", { type: "button", class: "btn small", onclick: () => control(job.id, "resume") }, "Resume");
  return null;
}

async function control(id, action) {
  try {
    await api("POST", `/api/admin/jobs/${encodeURIComponent(id)}/${action}`);
    setStatus(action === "cancel" ? "Cancelling…" : "Queued to resume.", "ok");
    state.selected = id;
    await refresh();
  } catch (err) {
    setStatus(err.message, "error");
  }
}

function select(id) {
  state.selected = id;
  history.replaceState(null, "", `?job=${encodeURIComponent(id)}`);
  refresh();
}

function resultLinks(job) {
  const box = $("job-result");
  const links = [];
  if (job.result.version) {
    links.push(el("p", {}, "Registered ", el("a", { href: `/admin/models?version=${encodeURIComponent(job.result.version)}` }, job.result.version), " as a candidate."));
  }
  const runs = Object.entries(job.result.runs || {});
  if (runs.length) {
    links.push(el("ul", { class: "plain" }, runs.map(([version, run]) => el("li", {}, el("a", { href: `/admin/evals?run=${encodeURIComponent(run)}` }, `${job.spec.suite} on ${version}`)))));
    if (runs.length === 2) {
      const pair = runs.map(([, run]) => run).join(",");
      links.push(el("p", {}, el("a", { href: `/admin/evals?compare=${encodeURIComponent(pair)}` }, "Compare the two prompt by prompt")));
    }
  }
  box.replaceChildren(...links);
}

async function renderDetail() {
  const section = $("job");
  if (!state.selected) return (section.hidden = true);
  let job;
  let log;
  try {
    [job, log] = await Promise.all([
      api("GET", `/api/admin/jobs/${encodeURIComponent(state.selected)}`),
      api("GET", `/api/admin/jobs/${encodeURIComponent(state.selected)}/log`),
    ]);
  } catch (err) {
    section.hidden = true;
    return setStatus(err.message, "error");
  }
  section.hidden = false;
  $("job-title").textContent = job.title;
  $("job-status").replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
  $("job-phase").textContent = job.phase;
  $("job-progress").value = job.fraction;
  $("job-steps").textContent = `${progressText(job)}${job.attempts > 1 ? ` · attempt ${job.attempts}` : ""}`;
  $("job-cancel").hidden = !ACTIVE.has(job.status);
  const resume = $("job-resume");
  resume.hidden = !RESUMABLE.has(job.status);
  resume.textContent = job.resumable_from_step ? `Resume from step ${job.resumable_from_step}` : job.kind === "train" ? "Resume (no checkpoint yet: starts over)" : "Resume";
  const error = $("job-error");
  error.hidden = !job.error;
  error.querySelector("pre").textContent = job.error;
  resultLinks(job);
  $("curve-title").hidden = job.kind !== "train";
  drawCurve($("job-curve"), job.kind === "train" ? job.points : []);
  const pre = $("job-log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = log.text || "(no output yet)";
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    state.jobs = await api("GET", "/api/admin/jobs");
    renderJobs();
    await renderDetail();
  } catch (err) {
    setStatus(err.message, "error");
  }
  if (state.jobs.some((j) => ACTIVE.has(j.status))) state.timer = setTimeout(refresh, POLL_MS);
}

$("train-method").addEventListener("change", loadDatasets);
$("train-form").addEventListener("submit", startTraining);
$("eval-form").addEventListener("submit", startEval);
$("job-cancel").addEventListener("click", () => control(state.selected, "cancel"));
$("job-resume").addEventListener("click", () => control(state.selected, "resume"));
loadDatasets();
refresh();
