// The admin Signals page: every current thumbs, vote and improved answer, and every implicit
// signal (regenerated, stopped, copied, edited and resent, corrected), with the generation
// record it judges, filtered and paged through /api/admin/signals (admins only). Each row
// expands to its record; a thumbs-down can be added to the regression suite in one click.
// The vocabularies (kinds, reasons, verdicts with their labels) come from the page, which
// renders them from tandem.core.signals; nothing here spells them out.
import { api, el, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const list = $("signals");
const form = $("filters");
const more = $("more");
const status = $("status");
const KINDS = JSON.parse(list.dataset.kinds);
const REASONS = JSON.parse(list.dataset.reasons);
const VERDICTS = JSON.parse(list.dataset.verdicts);
const FILTERS = ["kind", "rating", "reason", "version", "profile", "user", "from", "to"];
const PAGE = 50;
const SNIPPET = 220;

let cursor = null;
let loading = false;
let shown = 0;

// -- filters: the form, the address bar (a filtered view can be bookmarked) and the API query --

function filtersFromForm() {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = String(data.get(name) || "").trim();
    if (value) params.set(name, value);
  }
  return params;
}

function fillForm(params) {
  for (const name of FILTERS) {
    if (params.has(name)) form.elements.namedItem(name).value = params.get(name);
  }
}

// A day picked in the form is a local calendar day: "from" starts at its first moment, "to"
// ends with its last (the API's `until` is exclusive, so the next day's midnight).
function dayStart(day, plusDays = 0) {
  const [y, m, d] = day.split("-").map(Number);
  const at = new Date(y, m - 1, d + plusDays);
  if (Number.isNaN(at.getTime())) throw new Error(`Not a date: ${day}`);
  return at.toISOString();
}

function apiPath(params, after) {
  const query = new URLSearchParams();
  for (const [name, value] of params) {
    if (name === "from") query.set("since", dayStart(value));
    else if (name === "to") query.set("until", dayStart(value, 1));
    else query.set(name, value);
  }
  query.set("limit", String(PAGE));
  if (after) query.set("cursor", after);
  return `/api/admin/signals?${query}`;
}

// -- one signal ---------------------------------------------------------------------------------

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function snippet(text) {
  const flat = (text || "").replace(/\s+/g, " ").trim();
  return flat.length > SNIPPET ? `${flat.slice(0, SNIPPET)}…` : flat;
}

function judgement(signal) {
  if (signal.kind === "thumbs") {
    const down = signal.rating === "down";
    return el(
      "span",
      { class: "judgement" },
      el("span", { class: `rating ${down ? "down" : "up"}` }, down ? "Thumbs down" : "Thumbs up"),
      signal.reasons.map((r) => el("span", { class: "reason" }, REASONS[r] || r)),
    );
  }
  if (signal.kind === "vote") {
    return el("span", { class: "judgement" }, el("span", { class: "verdict" }, VERDICTS[signal.verdict] || signal.verdict));
  }
  if (signal.kind === "improvement") {
    return el("span", { class: "judgement" }, el("span", { class: "verdict" }, "Rewritten by the user"));
  }
  // An implicit signal: what the user did (the badge names it); a corrective follow-up also
  // names the classifier's rule that matched.
  const rule = signal.detail && signal.detail.rule;
  return el(
    "span",
    { class: "judgement" },
    el("span", { class: "verdict" }, "Implicit signal"),
    rule ? el("span", { class: "reason" }, `rule: ${rule}`) : "",
  );
}

function meta(signal) {
  const versions = [...new Set(signal.generations.map((g) => g.model_version))].join(" vs ");
  const parts = [versions, signal.user_email, signal.profile_name ? `profile ${signal.profile_name}` : null, when(signal.at)];
  return el("span", { class: "signal-meta muted small" }, parts.filter(Boolean).join(" · "));
}

function preview(signal) {
  const gens = signal.generations;
  if (signal.kind === "vote") {
    return el("div", { class: "preview" }, gens.map((g, i) => el("p", {}, el("b", {}, `${"AB"[i]}: `), snippet(g.output_text))));
  }
  const lines = [el("p", {}, snippet(gens[0].output_text))];
  if (signal.kind === "improvement") lines.push(el("p", {}, el("b", {}, "Improved: "), snippet(signal.improved_text)));
  if (signal.comment) lines.push(el("p", { class: "comment" }, `“${signal.comment}”`));
  return el("div", { class: "preview" }, lines);
}

function fact(name, value) {
  return [el("dt", {}, name), el("dd", {}, value === null || value === undefined || value === "" ? "—" : String(value))];
}

function messagesText(messages) {
  return messages
    .map((m) => {
      const text = m.parts ? m.parts.map((p) => p.text || "").join("") : m.content || "";
      return `${m.role}: ${text}`;
    })
    .join("\n\n");
}

function section(title, body) {
  return [el("h4", {}, title), body];
}

function record(gen, title) {
  const set = Object.entries(gen.sampling).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length));
  const sampling = set.length ? set.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ") : "defaults";
  const prompt = gen.rendered_prompt
    ? section("Rendered prompt", el("pre", { class: "prompt" }, gen.rendered_prompt))
    : section("Input messages (the engine rendered its own prompt)", el("pre", { class: "prompt" }, messagesText(gen.input_messages)));
  const tools = gen.tool_calls.length
    ? el("pre", {}, JSON.stringify(gen.tool_calls, null, 2))
    : el("p", { class: "muted small" }, "No tool calls.");
  return el(
    "section",
    { class: "record", "aria-label": title },
    el("h3", {}, title),
    el(
      "dl",
      { class: "facts" },
      fact("Model version", gen.model_version),
      fact("Engine", gen.engine),
      fact("Seed", gen.seed),
      fact("Sampling", sampling),
      fact("Finish", gen.finish_reason),
      fact("Tokens", `${gen.prompt_tokens} prompt, ${gen.completion_tokens} completion`),
      fact("Latency", `${gen.latency_s.toFixed(2)} s`),
      fact("Generation", gen.id),
    ),
    prompt,
    section("Tool calls", tools),
    section("Answer", el("pre", { class: "answer" }, gen.output_text)),
  );
}

function details(signal, id) {
  const gens = signal.generations;
  const records = signal.kind === "vote"
    ? gens.map((g, i) => record(g, `Answer ${"AB"[i]}`))
    : [record(gens[0], "Generation record")];
  const extra = [];
  if (signal.kind === "improvement") extra.push(...section("Improved answer", el("pre", { class: "answer" }, signal.improved_text)));
  if (signal.comment) extra.push(...section("Comment", el("pre", {}, signal.comment)));
  if (signal.detail && Object.keys(signal.detail).length) {
    extra.push(...section("Signal detail", el("pre", {}, JSON.stringify(signal.detail, null, 2))));
  }
  const where = signal.conversation_id ? `Conversation ${signal.conversation_id}` : "Made through the API (no conversation)";
  return el("div", { class: "signal-body", id, hidden: true }, el("p", { class: "muted small" }, `${where} · signal ${signal.id}`), extra, records);
}

async function addToRegressions(signal, button, note) {
  button.disabled = true;
  try {
    const item = await api("POST", `/api/admin/signals/${encodeURIComponent(signal.id)}/regression`);
    button.textContent = "In regressions";
    note.textContent = item.added
      ? `Added to ${item.suite} (${item.items} items).`
      : `Already in ${item.suite}: nothing added.`;
    note.className = "regression-note ok small";
    toast(item.added ? "Added to regressions" : "Already in regressions");
  } catch (err) {
    button.disabled = false;
    note.textContent = err.message;
    note.className = "regression-note error small";
  }
}

function actions(signal, bodyId) {
  const toggle = el("button", { type: "button", class: "btn", "aria-expanded": "false", "aria-controls": bodyId }, "Show record");
  toggle.addEventListener("click", () => {
    const body = $(bodyId);
    const open = body.hidden;
    body.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide record" : "Show record";
  });
  const buttons = [toggle];
  const note = el("span", { class: "regression-note small", role: "status" });
  if (signal.kind === "thumbs" && signal.rating === "down") {
    const add = el("button", { type: "button", class: "btn" }, signal.in_regressions ? "In regressions" : "Add to regressions");
    add.disabled = Boolean(signal.in_regressions);
    add.addEventListener("click", () => addToRegressions(signal, add, note));
    buttons.push(add);
  }
  return el("div", { class: "signal-actions" }, buttons, note);
}

function card(signal) {
  const bodyId = `signal-${signal.kind}-${signal.id}`;
  return el(
    "li",
    { class: `signal ${signal.kind}`, dataset: { id: signal.id, kind: signal.kind } },
    el("div", { class: "signal-head" }, el("span", { class: "badge" }, KINDS[signal.kind] || signal.kind), judgement(signal), meta(signal)),
    preview(signal),
    actions(signal, bodyId),
    details(signal, bodyId),
  );
}

// -- loading ------------------------------------------------------------------------------------

function say(text, kind = "") {
  status.textContent = text;
  status.className = kind ? `status ${kind}` : "status";
}

async function load(fresh) {
  if (loading) return;
  loading = true;
  const params = filtersFromForm();
  if (fresh) {
    cursor = null;
    shown = 0;
    list.replaceChildren();
    const query = params.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }
  list.setAttribute("aria-busy", "true");
  more.disabled = true;
  say("Loading…");
  try {
    const page = await api("GET", apiPath(params, cursor));
    list.append(...page.signals.map(card));
    shown += page.signals.length;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!shown) say("No signals match these filters.");
    else say(`${shown} signal${shown === 1 ? "" : "s"}${cursor ? ", newest first; more below" : ", newest first"}.`);
  } catch (err) {
    more.hidden = true;
    say(err.message, "error");
  } finally {
    list.setAttribute("aria-busy", "false");
    more.disabled = false;
    loading = false;
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  load(true);
});
// "Clear" resets the fields after this event: list again once they are empty.
form.addEventListener("reset", () => setTimeout(() => load(true)));
more.addEventListener("click", () => load(false));

fillForm(new URLSearchParams(location.search));
load(true);
