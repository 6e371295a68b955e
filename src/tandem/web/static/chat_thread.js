// The thread: the current branch drawn as messages (or as a comparison waiting for its vote),
// the empty and not-found states, and the chrome around it (title, Send/Stop/Compare, the
// profile chip). This module only draws: what each button does is handed in by chat.js
// through initThread, so it imports none of the modules that act.
import { copyText, el } from "./api.js";
import { icon } from "./icons.js";
import { renderMarkdown } from "./markdown.js";
import { markActive } from "./sidebar.js";
import { citationsOf, linkCitations, sourcesList, toolCard, toolResultsOf } from "./tools.js";
import { modelSeesImages } from "./chat_models.js";
import { state } from "./chat_state.js";
import { answersTo, branch, imagesOf, siblingsOf, textOf } from "./chat_tree.js";

export const thread = document.getElementById("thread");
const app = document.getElementById("app");
const scroller = document.getElementById("scroller");
const input = document.getElementById("input");
const sendBtn = document.getElementById("send-btn");
const stopBtn = document.getElementById("stop-btn");
const compareBtn = document.getElementById("compare-btn");
const titleEl = document.getElementById("chat-title");
const chatMenuBtn = document.getElementById("chat-menu-btn");
const profileChip = document.getElementById("chat-profile");

// Answers that ended before they were done, and how the thread says so.
const CUT_NOTES = {
  length: "The answer was cut off at the length limit.",
  loop: "The answer kept repeating itself, so it was stopped.",
};
const DEFAULT_STARTERS = [
  "Explain how a rainbow forms",
  "Write a Python function that checks for palindromes",
  "Give me three ideas for a weekend trip",
  "Summarize the plot of Hamlet in five sentences",
];

let actions = {};

// `handlers`: switchTo(message), startEdit(message, node), remember(message),
// continueAnswer(message), rate(message, rating), regenerate(message), improve(message, col),
// readAloud(text, button), compareAgain(message), send(text), newChat(),
// answerAgain(question), castVote(comparison, verdict), and sendPendingDown(), which sends a
// thumbs-down whose reasons panel a redraw is about to remove, and copied(message), which
// reports that the user copied an answer (an implicit signal).
export function initThread(handlers) {
  actions = handlers;
}

export function markdownNode(text, cls = "markdown") {
  const div = el("div", { class: cls });
  // renderMarkdown escapes every piece of the source before it writes its own tags.
  div.innerHTML = renderMarkdown(text);
  return div;
}

function actionBtn(name, label, onclick, extra = {}) {
  return el("button", { type: "button", class: "icon-btn act", "aria-label": label, title: label, onclick, ...extra }, icon(name));
}

function pager(m) {
  const sibs = siblingsOf(m);
  if (sibs.length < 2) return null;
  const i = sibs.findIndex((s) => s.id === m.id);
  const go = (j) => actions.switchTo(sibs[j]);
  return el(
    "div",
    { class: "pager", role: "group", "aria-label": "Alternatives" },
    el("button", { type: "button", class: "icon-btn", "aria-label": "Previous alternative", disabled: i === 0, onclick: () => go(i - 1) }, icon("left")),
    el("span", { class: "pager-label" }, `${i + 1}/${sibs.length}`),
    el("button", { type: "button", class: "icon-btn", "aria-label": "Next alternative", disabled: i === sibs.length - 1, onclick: () => go(i + 1) }, icon("right")),
  );
}

function imageStrip(parts) {
  if (!parts.length) return null;
  return el(
    "div",
    { class: "msg-images" },
    parts.map((p) => el("a", { href: `/api/uploads/${encodeURIComponent(p.data.upload_id)}`, target: "_blank", rel: "noopener" },
      el("img", { src: `/api/uploads/${encodeURIComponent(p.data.upload_id)}`, alt: "attached image", loading: "lazy" }))),
  );
}

function userMessageNode(m) {
  const node = el("article", { class: "msg user", dataset: { id: m.id }, "aria-label": "You said" });
  const bubble = el("div", { class: "bubble" }, el("div", { class: "plain" }, textOf(m)));
  const actionsRow = el(
    "div",
    { class: "msg-actions" },
    pager(m),
    actionBtn("copy", "Copy message", () => copyText(textOf(m))),
    actionBtn("pencil", "Edit message", () => actions.startEdit(m, node)),
    state.me && "memory_enabled" in state.me ? actionBtn("bookmark", "Remember this", () => actions.remember(m)) : null,
  );
  node.append(imageStrip(imagesOf(m)) || "", bubble, actionsRow);
  return node;
}

function assistantMessageNode(m, isLast) {
  const node = el("article", { class: "msg assistant", dataset: { id: m.id }, "aria-label": "Assistant said" });
  const body = markdownNode(textOf(m));
  node.append(el("div", { class: "avatar-bot", "aria-hidden": "true" }, el("img", { src: "/static/logo.svg", alt: "" })));
  const col = el("div", { class: "msg-col" });
  if (m.improved_from) col.append(el("span", { class: "badge", title: "You improved this answer" }, icon("improve"), "Edited by you"));
  for (const result of toolResultsOf(m)) col.append(toolCard(result));
  col.append(imageStrip(imagesOf(m)) || "", body);
  const citations = citationsOf(m);
  linkCitations(body, citations);
  if (citations.length) col.append(sourcesList(citations));
  if (!textOf(m).trim() && !imagesOf(m).length) body.append(el("p", { class: "muted" }, "(empty answer)"));
  for (const notice of m.notices || []) col.append(el("p", { class: "notice", role: "note" }, icon("alert"), notice));
  const cut = CUT_NOTES[m.finish_reason];
  if (cut) {
    col.append(el("p", { class: "notice cut", role: "note" }, icon("alert"), cut,
      isLast ? el("button", { type: "button", class: "btn small", onclick: () => actions.continueAnswer(m) }, "Continue") : null));
  }
  const fb = state.feedback.get(m.id);
  const up = actionBtn("up", "Good response", () => actions.rate(m, "up"), { "aria-pressed": fb?.rating === "up" ? "true" : "false" });
  const down = actionBtn("down", "Bad response", () => actions.rate(m, "down"), { "aria-pressed": fb?.rating === "down" ? "true" : "false" });
  const actionsRow = el(
    "div",
    { class: "msg-actions" },
    pager(m),
    actionBtn("copy", "Copy answer", () => {
      copyText(textOf(m));
      actions.copied(m);
    }),
    up,
    down,
    actionBtn("refresh", "Regenerate", () => actions.regenerate(m)),
    actionBtn("improve", "Improve this answer", () => actions.improve(m, col)),
    actionBtn("speaker", "Read aloud", (e) => actions.readAloud(textOf(m), e.currentTarget)),
    isLast ? actionBtn("compare", "Compare with another answer", () => actions.compareAgain(m)) : null,
  );
  col.append(actionsRow);
  node.append(col);
  return node;
}

// `continuedFrom`: the answer the chat went on from while this comparison waits for a vote.
export function comparisonNode(c, continuedFrom = null) {
  const voted = Boolean(c.verdict);
  const side = (key, label) => {
    const cand = c[key];
    const chosen = voted && (c.verdict === key || c.verdict === "tie");
    const followed = !voted && continuedFrom === cand.message_id;
    return el(
      "section",
      { class: `candidate${chosen ? " chosen" : ""}${followed ? " followed" : ""}`, "aria-label": `Answer ${label}` },
      el("header", {}, el("span", { class: "cand-label" }, `Answer ${label}`),
        voted ? el("span", { class: "cand-model" }, cand.model || "unknown model") : el("span", { class: "cand-model hidden-name" }, "model hidden")),
      markdownNode(cand.content),
    );
  };
  const vote = (verdict, label) => el("button", { type: "button", class: "btn vote", dataset: { verdict }, onclick: () => actions.castVote(c, verdict) }, label);
  const verdictText = { a: "You preferred A.", b: "You preferred B.", tie: "You rated them a tie.", both_bad: "You rated both answers bad." };
  const followedLabel = continuedFrom === c.a.message_id ? "A" : "B";
  const intro = voted
    ? verdictText[c.verdict] + " The models are revealed."
    : continuedFrom
      ? `The chat went on from Answer ${followedLabel}. Which answer is better? Your vote still counts.`
      : "Which answer is better? The models stay hidden until you vote.";
  return el(
    "div",
    { class: `comparison${voted ? " voted" : ""}`, dataset: { id: c.id } },
    el("p", { class: "comparison-intro" }, intro),
    el("div", { class: "candidates" }, side("a", "A"), side("b", "B")),
    voted ? null : el("div", { class: "votes", role: "group", "aria-label": "Vote" }, vote("a", "A is better"), vote("tie", "Tie"), vote("b", "B is better"), vote("both_bad", "Both are bad")),
  );
}

function emptyState() {
  const profile = state.profile;
  const name = app.dataset.userName;
  const starters = profile && profile.starters.length ? profile.starters : DEFAULT_STARTERS;
  return el(
    "div",
    { class: "empty" },
    el("img", { class: "empty-logo", src: "/static/logo.svg", alt: "" }),
    profile
      ? [el("h2", {}, profile.name), profile.description ? el("p", { class: "muted" }, profile.description) : null]
      : el("h2", {}, `How can I help, ${name}?`),
    el(
      "div",
      { class: "starters", role: "list", "aria-label": "Conversation starters" },
      starters.map((s) => el("button", { type: "button", class: "starter", role: "listitem", onclick: () => actions.send(s) }, s)),
    ),
  );
}

function notFoundState() {
  return el(
    "div",
    { class: "empty not-found", role: "alert" },
    el("h2", {}, "Chat not found"),
    el("p", { class: "muted" }, "This chat doesn't exist, was deleted, or belongs to someone else."),
    el("button", { type: "button", class: "btn primary", onclick: () => actions.newChat() }, "Start a new chat"),
  );
}

export function errorState(message, retry) {
  return el(
    "div",
    { class: "empty", role: "alert" },
    el("p", { class: "error-text" }, message),
    el("button", { type: "button", class: "btn", onclick: retry }, "Try again"),
  );
}

export function render() {
  // Drawing again removes an open reasons panel: its thumbs-down is sent first.
  actions.sendPendingDown();
  if (state.notFound) {
    thread.replaceChildren(notFoundState());
    updateChrome();
    return;
  }
  const path = branch();
  const nodes = [];
  path.forEach((m, i) => {
    const last = i === path.length - 1;
    if (m.role === "user") nodes.push(userMessageNode(m));
    else if (m.role === "assistant") {
      // One answer of a comparison stands for both: the comparison, votable until voted.
      const open = state.openComparisons.get(m.id);
      const revealed = state.revealed && [state.revealed.a.message_id, state.revealed.b.message_id].includes(m.id);
      if (open) nodes.push(comparisonNode(open, last ? null : m.id));
      else if (revealed) nodes.push(comparisonNode(state.revealed));
      else nodes.push(assistantMessageNode(m, last));
    }
  });
  const leaf = path[path.length - 1];
  const waiting = leaf && state.openComparisons.get(leaf.id);
  if (waiting && waiting.parent_message_id === leaf.id) {
    nodes.push(comparisonNode(waiting));
  } else if (leaf && leaf.role === "user" && !state.stream) {
    nodes.push(unansweredNode(leaf));
  }
  if (!nodes.length) nodes.push(emptyState());
  thread.replaceChildren(...nodes);
  updateChrome();
}

// A question without an answer on this branch (both compared answers were bad, or the answer
// was lost): offer to answer it again.
function unansweredNode(question) {
  const answered = answersTo(question).length > 0;
  return el(
    "div",
    { class: "msg assistant unanswered" },
    el("p", { class: "muted" }, answered ? "No answer was chosen for this message." : "This message has no answer yet."),
    el("button", { type: "button", class: "btn", onclick: () => actions.answerAgain(question) }, icon("refresh"), "Answer again"),
  );
}

export function updateChrome() {
  const title = state.notFound ? "" : state.conv?.title || (state.profile ? state.profile.name : "");
  titleEl.textContent = title;
  document.title = title ? `${title} · tandem` : "tandem";
  chatMenuBtn.hidden = !state.conv || state.notFound;
  const busy = Boolean(state.stream) || state.loading;
  sendBtn.hidden = Boolean(state.stream);
  stopBtn.hidden = !state.stream;
  const empty = !input.value.trim();
  // An image for a model that cannot see it is stopped here, not sent to be ignored.
  const blind = state.attachments.length > 0 && !modelSeesImages();
  sendBtn.disabled = busy || empty || blind || state.uploadsInFlight > 0 || state.notFound;
  compareBtn.disabled = busy || empty || blind || state.uploadsInFlight > 0 || state.notFound;
  profileChip.hidden = !state.profile || state.notFound;
  profileChip.textContent = state.profile ? state.profile.name : "";
  profileChip.title = state.profile ? `This chat uses the profile ${state.profile.name}` : "";
  markActive(state.conv?.id || null);
}

export function nearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
}

export function scrollToBottom(force = false) {
  if (force || nearBottom()) scroller.scrollTop = scroller.scrollHeight;
}

// Copy buttons inside rendered code blocks (their HTML comes from the markdown renderer).
thread.addEventListener("click", (e) => {
  const btn = e.target.closest(".copy-code");
  if (!btn) return;
  const code = btn.closest(".code-block")?.querySelector("code");
  if (code) {
    copyText(code.textContent);
    // Copying code out of an answer is copying (part of) that answer.
    const id = btn.closest(".msg.assistant")?.dataset.id;
    const m = id && state.messages.get(id);
    if (m) actions.copied(m);
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 1500);
  }
});
