// The rater workspace (/rate): the rater's own queue, one item at a time with the task's
// guideline. Ranking: each answer (shown blind, in this rater's own order) gets a rank; equal
// ranks are a tie. Spec labels: the response judged behavior by behavior (pass, fail, not
// applicable) with a rationale. Demonstration: rate_demo.js; red team: rate_redteam.js.
// Everything goes through /api/rater.
import { api, el, toast } from "./api.js";
import { renderMarkdown } from "./markdown.js";
import { demonstration, turn } from "./rate_demo.js";
import { redTeam } from "./rate_redteam.js";

const $ = (id) => document.getElementById(id);
const itemBox = $("item");
let queue = [];
let current = null;
// [[value, name], ...]: the spec labels, from the page.
const LABELS = JSON.parse(itemBox.dataset.labels || "[]");

function letter(k) {
  return String.fromCharCode(65 + k);
}

function guideline(task) {
  const box = el("div", { class: "guideline" });
  box.innerHTML = renderMarkdown(task.guideline || "_No guideline._"); // sanitized by DOMPurify
  return box;
}

function ranking(view, submit) {
  const n = view.answers.length;
  const done = view.status === "submitted";
  const selects = view.answers.map((a, k) => {
    const select = el("select", { "aria-label": `Rank for answer ${letter(k)}`, disabled: done, dataset: { key: String(a.key) } },
      el("option", { value: "" }, "–"),
      ...Array.from({ length: n }, (_, r) => el("option", { value: String(r + 1) }, r === 0 ? "1 (best)" : String(r + 1))));
    if (view.result) select.value = String(view.result.ranks[k]);
    return select;
  });
  const cards = view.answers.map((a, k) => el("div", { class: "answer", dataset: { answer: letter(k) } },
    el("strong", {}, `Answer ${letter(k)}`),
    el("div", { class: "text" }, a.text),
    el("label", {}, "Rank", selects[k])));
  const send = el("button", { type: "button", class: "btn primary", disabled: done, onclick: async () => {
    if (selects.some((s) => !s.value)) { toast("Give every answer a rank (the same rank for a tie)", "error"); return; }
    await submit({ ranks: selects.map((s) => Number(s.value)) });
  } }, done ? "Submitted" : "Submit ranking");
  return [
    el("p", { class: "muted small" }, "1 is best. Give two answers the same rank when they are equally good."),
    el("div", { class: "answers" }, ...cards),
    el("div", { class: "item-actions" }, send),
  ];
}

function specLabels(view, submit) {
  const done = view.status === "submitted";
  const rows = view.behaviors.map((b, k) => {
    const select = el("select", { "aria-label": `Label for ${b.id}`, disabled: done },
      el("option", { value: "" }, "–"), ...LABELS.map(([v, name]) => el("option", { value: v }, name)));
    const why = el("input", { "aria-label": `Rationale for ${b.id}`, maxlength: "2000", placeholder: "Why (needed for a fail)", disabled: done });
    if (view.result) { select.value = view.result.labels[k]; why.value = view.result.rationales[k]; }
    const row = el("div", { class: "behavior", dataset: { behavior: b.id } },
      el("strong", {}, b.id), el("p", { class: "muted small" }, b.description),
      el("div", { class: "behavior-inputs" }, select, why));
    return { row, select, why };
  });
  const send = el("button", { type: "button", class: "btn primary", disabled: done, onclick: async () => {
    if (rows.some((r) => !r.select.value)) { toast("Label every behavior (not applicable where it does not apply)", "error"); return; }
    await submit({ labels: rows.map((r) => r.select.value), rationales: rows.map((r) => r.why.value) });
  } }, done ? "Submitted" : "Submit labels");
  return [
    el("div", { class: "answer response" }, el("strong", {}, "Response"), el("div", { class: "text" }, view.answers[0].text)),
    el("h3", {}, "Behaviors"),
    ...rows.map((r) => r.row),
    el("div", { class: "item-actions" }, send),
  ];
}

async function open(id) {
  current = id;
  renderQueue();
  let view;
  try {
    view = await api("GET", `/api/rater/assignments/${encodeURIComponent(id)}`);
  } catch (err) {
    itemBox.replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  const submit = async (body) => {
    try {
      await api("POST", `/api/rater/assignments/${encodeURIComponent(id)}/submit`, body);
      toast("Submitted");
      await loadQueue(true);
    } catch (err) {
      toast(err.message, "error");
    }
  };
  const position = queue.findIndex((a) => a.id === id) + 1;
  const head = [
    el("h2", {}, `${view.task.title}`),
    el("p", { class: "muted small" }, `Item ${position} of ${queue.length} · ${view.status === "submitted" ? "submitted" : "to do"}`),
    guideline(view.task),
  ];
  const prompt = view.prompt.map((m) => turn(m.role, m.content));
  const body = view.task.kind === "ranking" ? [...prompt, ...ranking(view, submit)]
    : view.task.kind === "spec_label" ? [...prompt, ...specLabels(view, submit)]
      : view.task.kind === "red_team" ? redTeam(view, id, submit)
        : demonstration(view, id, submit);
  itemBox.replaceChildren(...head, ...body);
  itemBox.dataset.assignment = id;
  itemBox.dataset.status = view.status;
}

function renderQueue() {
  const list = $("queue");
  const pending = queue.filter((a) => a.status === "pending").length;
  $("queue-count").textContent = `${pending} to do`;
  if (!queue.length) {
    list.replaceChildren(el("li", { class: "muted" }, "Nothing assigned to you yet."));
    return;
  }
  list.replaceChildren(...queue.map((a, k) => el("li", { class: a.status === "submitted" ? "done" : "", "aria-current": a.id === current ? "true" : "false" },
    el("button", { type: "button", class: "linkish", onclick: () => open(a.id) },
      `${a.task_title} · item ${k + 1}${a.status === "submitted" ? " ✓" : ""}`))));
}

async function loadQueue(advance = false) {
  try {
    queue = (await api("GET", "/api/rater/queue")).assignments;
  } catch (err) {
    $("queue").replaceChildren(el("li", { class: "error" }, err.message));
    return;
  }
  renderQueue();
  const next = queue.find((a) => a.status === "pending");
  if (!current || advance) {
    if (next) await open(next.id);
    else itemBox.replaceChildren(el("p", { class: "ok" }, "All done: nothing left in your queue."));
  }
}

loadQueue();
