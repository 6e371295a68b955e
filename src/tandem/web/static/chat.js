// The chat page: a conversation tree shown as its current branch, streamed answers, and the
// signals (thumbs, reasons, improved answers, blind comparisons) that train the next model.
//
// The server owns the truth: the visible branch is always the conversation's current branch
// (GET /api/conversations/{id}), and paging between alternatives makes the chosen one current
// on the server, so the next message continues exactly what the user sees.
import { ApiError, api, copyText, el, readEvents, request, toast } from "./api.js";
import { icon } from "./icons.js";
import { renderMarkdown } from "./markdown.js";
import { closeSidebar, deleteConversation, initSidebar, markActive, refreshHistory } from "./sidebar.js";
import {
  DOCUMENT_TYPES, citationsOf, closeCitation, documentChip, isDocument, linkCitations, listDocuments,
  removeDocument, sourcesList, toolCard, toolResultsOf, toolRunning, toolSwitches, uploadDocument, watchDocument,
} from "./tools.js";
import { initVoice } from "./voice.js";

const app = document.getElementById("app");
const thread = document.getElementById("thread");
const scroller = document.getElementById("scroller");
const input = document.getElementById("input");
const composer = document.getElementById("composer");
const sendBtn = document.getElementById("send-btn");
const stopBtn = document.getElementById("stop-btn");
const compareBtn = document.getElementById("compare-btn");
const picker = document.getElementById("model-picker");
const titleEl = document.getElementById("chat-title");
const chatMenuBtn = document.getElementById("chat-menu-btn");
const attachBox = document.getElementById("attachments");
const fileInput = document.getElementById("file-input");
const micBtn = document.getElementById("mic-btn");
const profileChip = document.getElementById("chat-profile");

const REASONS = [
  ["not_factual", "Not factually correct"],
  ["didnt_follow_instructions", "Didn't follow instructions"],
  ["refused", "Refused when it shouldn't have"],
  ["too_long", "Too long"],
  ["unsafe", "Unsafe or harmful"],
  ["other", "Other"],
];
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

const state = {
  conv: null, // ConversationPublic, null for a chat not created yet
  messages: new Map(), // id -> MessagePublic
  children: new Map(), // parent id ("" for roots) -> [MessagePublic], oldest first
  current: null, // the leaf the user sees (the conversation's current message)
  feedback: new Map(), // message id -> current FeedbackPublic
  // Comparisons of this chat still waiting for a vote, by the id of each of their answers
  // (and of their question): shown, votable, where they stand in the thread.
  openComparisons: new Map(),
  revealed: null, // the comparison just voted on, shown with model names until the next turn
  profile: null,
  models: [],
  modelInfo: new Map(), // model id -> {accepts_images, supports_tools}
  implicitModel: "", // what the server would pick without a `model` field
  stream: null, // {controller, bubble, text}
  attachments: [], // [{id, mime, url, name}]
  tools: new Set(), // tools switched on in the composer: "files", "web", "code", "image"
  documents: [], // this chat's documents: FilePublic rows, status and progress
  uploadsInFlight: 0,
  me: null,
  notFound: false,
  loading: false,
};

// -- the tree -------------------------------------------------------------------------------

function setTree(data) {
  state.conv = data.conversation;
  state.messages.clear();
  state.children.clear();
  for (const m of data.messages) addMessage(m);
  state.current = data.conversation.current_message_id;
}

function addMessage(m) {
  if (state.messages.has(m.id)) {
    state.messages.set(m.id, m);
    return;
  }
  state.messages.set(m.id, m);
  const key = m.parent_id || "";
  if (!state.children.has(key)) state.children.set(key, []);
  state.children.get(key).push(m);
}

function branch(leafId = state.current) {
  const path = [];
  let node = leafId ? state.messages.get(leafId) : null;
  while (node) {
    path.push(node);
    node = node.parent_id ? state.messages.get(node.parent_id) : null;
  }
  return path.reverse();
}

function siblingsOf(m) {
  return state.children.get(m.parent_id || "") || [m];
}

// The leaf reached from `m` by following, at each step, the newest answer or edit.
function deepestFrom(m) {
  let node = m;
  for (;;) {
    const kids = state.children.get(node.id);
    if (!kids || !kids.length) return node;
    node = kids[kids.length - 1];
  }
}

// -- rendering ------------------------------------------------------------------------------

function textOf(m) {
  return m.content || (m.parts || []).filter((p) => p.type === "text").map((p) => p.text || "").join("");
}

function imagesOf(m) {
  return (m.parts || []).filter((p) => p.type === "image" && p.data && p.data.upload_id);
}

function markdownNode(text, cls = "markdown") {
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
  const go = (j) => switchTo(sibs[j]);
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
  const actions = el(
    "div",
    { class: "msg-actions" },
    pager(m),
    actionBtn("copy", "Copy message", () => copyText(textOf(m))),
    actionBtn("pencil", "Edit message", () => startEdit(m, node)),
    state.me && "memory_enabled" in state.me ? actionBtn("bookmark", "Remember this", () => remember(m)) : null,
  );
  node.append(imageStrip(imagesOf(m)) || "", bubble, actions);
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
      isLast ? el("button", { type: "button", class: "btn small", onclick: () => continueAnswer(m) }, "Continue") : null));
  }
  const fb = state.feedback.get(m.id);
  const up = actionBtn("up", "Good response", () => rate(m, "up"), { "aria-pressed": fb?.rating === "up" ? "true" : "false" });
  const down = actionBtn("down", "Bad response", () => rate(m, "down"), { "aria-pressed": fb?.rating === "down" ? "true" : "false" });
  const actions = el(
    "div",
    { class: "msg-actions" },
    pager(m),
    actionBtn("copy", "Copy answer", () => copyText(textOf(m))),
    up,
    down,
    actionBtn("refresh", "Regenerate", () => regenerate(m)),
    actionBtn("improve", "Improve this answer", () => startImprove(m, col)),
    actionBtn("speaker", "Read aloud", (e) => readAloud(textOf(m), e.currentTarget)),
    isLast ? actionBtn("compare", "Compare with another answer", () => compareAgain(m)) : null,
  );
  col.append(actions);
  node.append(col);
  return node;
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
      starters.map((s) => el("button", { type: "button", class: "starter", role: "listitem", onclick: () => send(s) }, s)),
    ),
  );
}

function notFoundState() {
  return el(
    "div",
    { class: "empty not-found", role: "alert" },
    el("h2", {}, "Chat not found"),
    el("p", { class: "muted" }, "This chat doesn't exist, was deleted, or belongs to someone else."),
    el("button", { type: "button", class: "btn primary", onclick: () => newChat() }, "Start a new chat"),
  );
}

function render() {
  // Drawing again removes an open reasons panel: its thumbs-down is sent first.
  if (pendingDown) sendPendingDown();
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
  const kids = state.children.get(question.id) || [];
  const retry = () => (kids.length ? regenerate(kids[kids.length - 1]) : resend(question));
  return el(
    "div",
    { class: "msg assistant unanswered" },
    el("p", { class: "muted" }, kids.length ? "No answer was chosen for this message." : "This message has no answer yet."),
    el("button", { type: "button", class: "btn", onclick: retry }, icon("refresh"), "Answer again"),
  );
}

function updateChrome() {
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

function nearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
}

function scrollToBottom(force = false) {
  if (force || nearBottom()) scroller.scrollTop = scroller.scrollHeight;
}

// -- loading --------------------------------------------------------------------------------

async function loadFeedback() {
  state.feedback.clear();
  try {
    for (const fb of await api("GET", "/api/feedback")) if (fb.message_id) state.feedback.set(fb.message_id, fb);
  } catch {
    /* ratings are decoration here: the chat still works without them */
  }
}

function keepOpenComparison(c) {
  if (c.verdict) return;
  for (const id of [c.parent_message_id, c.a.message_id, c.b.message_id]) state.openComparisons.set(id, c);
}

function forgetComparison(c) {
  for (const [id, open] of state.openComparisons) if (open.id === c.id) state.openComparisons.delete(id);
}

async function loadComparisons(convId) {
  state.openComparisons.clear();
  try {
    for (const c of await api("GET", `/api/comparisons?conversation_id=${encodeURIComponent(convId)}`)) keepOpenComparison(c);
  } catch {
    /* as above */
  }
}

async function loadProfile(id) {
  state.profile = null;
  if (!id) return;
  try {
    state.profile = await api("GET", `/api/profiles/${id}`);
  } catch {
    /* a profile that is no longer shared: the chat goes on without it */
  }
}

async function openConversation(id, { push = true } = {}) {
  if (state.stream) stopStreaming();
  state.loading = true;
  state.notFound = false;
  state.revealed = null;
  if (push && location.pathname !== `/c/${id}`) history.pushState({ id }, "", `/c/${id}`);
  thread.replaceChildren(el("div", { class: "loading", role: "status" }, el("span", { class: "spinner" }), "Loading chat…"));
  try {
    const data = await api("GET", `/api/conversations/${encodeURIComponent(id)}`);
    setTree(data);
    await Promise.all([loadFeedback(), loadComparisons(id), loadProfile(data.conversation.profile_id), loadDocuments(id)]);
  } catch (err) {
    state.conv = null;
    state.messages.clear();
    state.children.clear();
    state.current = null;
    if (err instanceof ApiError && (err.status === 404 || err.status === 422)) state.notFound = true;
    else {
      state.loading = false;
      thread.replaceChildren(errorState(err.message, () => openConversation(id, { push: false })));
      updateChrome();
      return;
    }
  }
  state.loading = false;
  syncPicker();
  render();
  scrollToBottom(true);
  if (!state.notFound) input.focus({ preventScroll: true });
}

function errorState(message, retry) {
  return el(
    "div",
    { class: "empty", role: "alert" },
    el("p", { class: "error-text" }, message),
    el("button", { type: "button", class: "btn", onclick: retry }, "Try again"),
  );
}

function newChat({ push = true, profile = null } = {}) {
  if (state.stream) stopStreaming();
  state.conv = null;
  state.messages.clear();
  state.children.clear();
  state.current = null;
  state.openComparisons.clear();
  state.revealed = null;
  state.notFound = false;
  state.profile = profile;
  state.documents = [];
  state.tools.clear();
  switches.refresh();
  renderAttachments();
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  syncPicker();
  render();
  input.focus();
}

// -- models ---------------------------------------------------------------------------------

// The models this user may pick (engine variants are for admins) and what each can do.
async function loadModels() {
  try {
    const models = await api("GET", "/api/models");
    state.models = models.map((m) => m.id);
    state.modelInfo = new Map(models.map((m) => [m.id, m]));
  } catch {
    state.models = [];
  }
  syncPicker();
}

async function loadTools() {
  try {
    switches.offer((await api("GET", "/api/tools")).map((t) => t.name));
  } catch {
    switches.offer([]);
  }
}

// Whether the model that would answer can see images; unknown models are given the benefit.
function modelSeesImages() {
  const info = state.modelInfo.get(picker.value || state.implicitModel);
  return !info || info.accepts_images;
}

function syncPicker() {
  const implicit = state.conv?.model || state.profile?.model_version || app.dataset.defaultModel || state.models[0] || "";
  state.implicitModel = implicit;
  const ids = state.models.includes(implicit) || !implicit ? state.models : [implicit, ...state.models];
  picker.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
  const saved = state.conv ? null : localStorage.getItem("tandem.model");
  picker.value = saved && ids.includes(saved) ? saved : implicit;
  picker.closest(".model-pick").hidden = ids.length === 0;
}

// The model to name in a request: only when the user picked one other than the default, so a
// profile's or conversation's own model still applies otherwise.
function chosenModel() {
  return picker.value && picker.value !== state.implicitModel ? picker.value : undefined;
}

picker.addEventListener("change", () => {
  if (!state.conv) localStorage.setItem("tandem.model", picker.value);
  renderAttachments();
});

// -- sending and streaming ------------------------------------------------------------------

async function ensureConversation() {
  if (state.conv) return state.conv;
  const body = {};
  if (state.profile) body.profile_id = state.profile.id;
  const model = chosenModel();
  if (model) body.model = model;
  state.conv = await api("POST", "/api/conversations", body);
  history.pushState({ id: state.conv.id }, "", `/c/${state.conv.id}`);
  return state.conv;
}

function takeComposer() {
  const text = input.value.trim();
  const attachments = state.attachments.map((a) => a.id);
  return { text, attachments };
}

function clearComposer() {
  input.value = "";
  state.attachments = [];
  renderAttachments();
  autosize();
}

async function send(text, attachments = []) {
  text = (text || "").trim();
  if (!text || state.stream) return;
  const previous = { text: input.value, attachments: state.attachments };
  clearComposer();
  try {
    await ensureConversation();
  } catch (err) {
    input.value = previous.text;
    state.attachments = previous.attachments;
    renderAttachments();
    toast(err.message, "error");
    return;
  }
  const body = { content: text, stream: true };
  if (state.current) body.parent_id = state.current;
  const model = chosenModel();
  if (model) body.model = model;
  if (attachments.length) body.attachments = attachments;
  if (state.tools.size) body.tools = [...state.tools];
  await runStream(`/api/conversations/${state.conv.id}/messages`, body, {
    baseLeaf: state.current,
    userText: text,
    userImages: previous.attachments,
    onFail: () => {
      input.value = previous.text;
      state.attachments = previous.attachments;
      renderAttachments();
      autosize();
    },
  });
}

async function regenerate(m) {
  if (state.stream) return;
  const body = { stream: true };
  const model = chosenModel();
  if (model) body.model = model;
  await runStream(`/api/messages/${m.id}/regenerate`, body, { baseLeaf: m.parent_id });
}

// More of an answer that was cut off: streamed after the text it already has, and stored as a
// new version of the answer (the pager shows both).
async function continueAnswer(m) {
  if (state.stream) return;
  const body = { stream: true };
  const model = chosenModel();
  if (model) body.model = model;
  await runStream(`/api/messages/${m.id}/continue`, body, { baseLeaf: m.parent_id, prefix: textOf(m) });
}

async function resend(question) {
  const body = { content: textOf(question), stream: true };
  await runStream(`/api/messages/${question.id}/edit`, body, { baseLeaf: question.parent_id, userText: textOf(question) });
}

function startEdit(m, node) {
  if (state.stream) return;
  const area = el("textarea", { class: "edit-area", "aria-label": "Edit message", rows: 3 });
  area.value = textOf(m);
  const cancel = () => render();
  const save = async () => {
    const text = area.value.trim();
    if (!text) return;
    const body = { content: text, stream: true };
    const model = chosenModel();
    if (model) body.model = model;
    await runStream(`/api/messages/${m.id}/edit`, body, { baseLeaf: m.parent_id, userText: text });
  };
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancel(); }
  });
  const editor = el(
    "div",
    { class: "editor" },
    area,
    el("div", { class: "editor-actions" },
      el("button", { type: "button", class: "btn", onclick: cancel }, "Cancel"),
      el("button", { type: "button", class: "btn primary", onclick: save }, "Send")),
  );
  node.replaceChildren(editor);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

// Show the branch up to `baseLeaf`, then the (optimistic) user message and a live answer.
function streamingBubble(userText, userImages) {
  state.revealed = null;
  const nodes = [];
  if (userText) {
    const imgs = (userImages || []).map((a) => el("img", { src: a.url, alt: "attached image" }));
    nodes.push(
      el("article", { class: "msg user pending", "aria-label": "You said" },
        imgs.length ? el("div", { class: "msg-images" }, imgs) : "",
        el("div", { class: "bubble" }, el("div", { class: "plain" }, userText))),
    );
  }
  const body = el("div", { class: "markdown" }, el("span", { class: "typing", "aria-label": "Thinking" }, el("i"), el("i"), el("i")));
  const col = el("div", { class: "msg-col" }, body);
  const answer = el("article", { class: "msg assistant streaming", "aria-label": "Assistant is answering", "aria-busy": "true" },
    el("div", { class: "avatar-bot", "aria-hidden": "true" }, el("img", { src: "/static/logo.svg", alt: "" })), col);
  nodes.push(answer);
  if (thread.querySelector(".empty")) thread.replaceChildren();
  thread.append(...nodes);
  scrollToBottom(true);
  return { answer, body, col };
}

async function runStream(url, body, { baseLeaf = null, userText = null, userImages = [], onFail = null, prefix = "" } = {}) {
  const savedCurrent = state.current;
  state.current = baseLeaf;
  render();
  const controller = new AbortController();
  const ui = streamingBubble(userText, userImages);
  const stream = { controller, text: prefix, ui, stopped: false, frame: 0, pair: null };
  state.stream = stream;
  updateChrome();
  let gotUserMessage = false;
  let finished = false;
  const showNotice = (text) => {
    if (text && !ui.col.querySelector(".notice")) ui.col.prepend(el("p", { class: "notice", role: "note" }, icon("alert"), text));
  };
  const paint = () => {
    stream.frame = 0;
    const stick = nearBottom();
    ui.body.innerHTML = renderMarkdown(stream.text);
    ui.body.append(el("span", { class: "cursor", "aria-hidden": "true" }));
    if (stick) scrollToBottom(true);
  };
  try {
    const response = await request("POST", url, { json: body, signal: controller.signal });
    await readEvents(response, (event) => {
      if (event.type === "user_message") {
        addMessage(event.message);
        state.current = event.message.id;
        gotUserMessage = true;
        if (event.notice) showNotice(event.notice);
      } else if (event.type === "tool") {
        const running = ui.col.querySelector(`.tool-card.running[data-tool="${event.tool}"]`);
        if (event.status === "running") {
          const card = toolRunning(event.tool);
          card.dataset.tool = event.tool;
          ui.col.insertBefore(card, ui.body);
        } else {
          const card = toolCard(event);
          if (running) running.replaceWith(card);
          else ui.col.insertBefore(card, ui.body);
        }
      } else if (event.type === "delta") {
        stream.text += event.text;
        if (!stream.frame) stream.frame = requestAnimationFrame(paint);
      } else if (event.type === "done") {
        addMessage(event.message);
        state.current = event.message.id;
        if (event.memory_saved) toast(`Remembered: ${event.memory_saved.text}`);
        finished = true;
      } else if (event.type === "notice") {
        showNotice(event.notice);
      } else if (event.type === "title") {
        // The model named the chat after its first answer.
        if (state.conv) state.conv.title = event.title;
        updateChrome();
        refreshHistory();
      } else if (event.type === "comparison_start") {
        // Two answers instead of one: both stream side by side, blind.
        stream.pair = streamingComparison(ui);
      } else if (event.type === "comparison_delta") {
        stream.pair?.add(event.side, event.text);
      } else if (event.type === "comparison") {
        finished = true;
        state.stream = null;
        if (event.memory_saved) toast(`Remembered: ${event.memory_saved.text}`);
        showComparison(event.comparison, event.notice);
      } else if (event.type === "error") {
        finished = true;
        throw new ApiError(502, event.error?.message || "The model backend failed.", event.error?.code);
      }
    });
    if (!finished) throw new ApiError(0, "The answer was cut off. Try again.", "incomplete");
  } catch (err) {
    if (err.name === "AbortError") {
      stream.stopped = true;
    } else {
      showStreamError(ui, err, gotUserMessage);
      if (!gotUserMessage && userText && onFail) onFail();
      if (!gotUserMessage && !userText) state.current = savedCurrent;
    }
  } finally {
    if (stream.frame) cancelAnimationFrame(stream.frame);
    if (state.stream === stream) state.stream = null;
    if (state.conv && (finished || stream.stopped || gotUserMessage)) {
      // Re-read the tree: the stopped (partial) answer, or the recorded error, is stored
      // server-side and becomes the current branch.
      // The server titles a new chat from its first message.
      if (stream.stopped || !finished || !state.conv.title) await reloadTree(stream.stopped ? 6 : 1);
      // A finished comparison has already drawn itself; a stopped one shows what was kept.
      if (!ui.answer.classList.contains("failed") && !(stream.pair && finished)) render();
      refreshHistory();
    }
    updateChrome();
    if (stream.stopped) toast("Stopped");
    announceAnswer(ui, stream);
  }
}

function showStreamError(ui, err, keepUser) {
  ui.answer.classList.remove("streaming");
  ui.answer.classList.add("failed");
  ui.answer.removeAttribute("aria-busy");
  const retry = el("button", { type: "button", class: "btn", onclick: () => {
    const leaf = state.current && state.messages.get(state.current);
    if (leaf && leaf.role === "assistant") regenerate(leaf);
    else if (leaf && leaf.role === "user") unansweredRetry(leaf);
    else render();
  } }, icon("refresh"), "Try again");
  ui.body.replaceChildren(
    el("div", { class: "error-box", role: "alert" }, icon("alert"), el("span", {}, err.message || "Something went wrong. Try again.")),
    keepUser ? retry : "",
  );
}

function unansweredRetry(question) {
  const kids = state.children.get(question.id) || [];
  if (kids.length) regenerate(kids[kids.length - 1]);
  else resend(question);
}

// After a stop, the server records the partial answer as the stream unwinds: poll briefly.
async function reloadTree(tries) {
  const before = state.messages.size;
  for (let i = 0; i < tries; i++) {
    try {
      const data = await api("GET", `/api/conversations/${state.conv.id}`);
      setTree(data);
      if (data.messages.length > before || i === tries - 1) return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

function stopStreaming() {
  if (state.stream) state.stream.controller.abort();
}

// -- paging between alternatives -------------------------------------------------------------

async function switchTo(sibling) {
  if (state.stream) return;
  const leaf = deepestFrom(sibling);
  const previous = state.current;
  state.current = leaf.id;
  state.revealed = null;
  render();
  try {
    state.conv = await api("PUT", `/api/conversations/${state.conv.id}/current`, { message_id: leaf.id });
  } catch (err) {
    state.current = previous;
    render();
    toast(`Couldn't switch: ${err.message}`, "error");
  }
}

// -- feedback -------------------------------------------------------------------------------

// A thumbs-down opens the reasons panel and is sent once, with whatever reasons and comment
// the panel holds when it closes (Submit, the close button, another chat, leaving the page):
// one request, one rating row, and never lost.
let pendingDown = null;

async function rate(m, rating) {
  const existing = state.feedback.get(m.id);
  if (pendingDown && pendingDown.message.id === m.id) {
    // The same answer again while its reasons are open: the thumbs-down is being withdrawn
    // (down) or replaced (up) before it was ever sent.
    pendingDown = null;
    closeReasons();
    if (rating === "down") {
      render();
      return;
    }
  }
  try {
    if (existing && existing.rating === rating) {
      // Clicking the same thumb again withdraws the rating.
      await api("DELETE", `/api/messages/${m.id}/feedback`);
      state.feedback.delete(m.id);
      closeReasons();
      render();
      toast("Rating removed");
      return;
    }
    if (rating === "down") {
      closeReasons();
      openReasons(m);
      return;
    }
    const fb = await api("POST", `/api/messages/${m.id}/feedback`, { rating, reasons: [], comment: "" });
    state.feedback.set(m.id, fb);
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  render();
  toast("Thanks for the feedback");
}

async function sendPendingDown({ keepalive = false } = {}) {
  const pending = pendingDown;
  if (!pending) return;
  pendingDown = null;
  const { message, chosen, comment } = pending;
  const body = { rating: "down", reasons: [...chosen], comment: comment.value.trim() };
  try {
    const response = await request("POST", `/api/messages/${message.id}/feedback`, { json: body, keepalive });
    state.feedback.set(message.id, await response.json());
  } catch (err) {
    if (!keepalive) toast(err.message, "error");
  }
}

// Closing the panel sends the thumbs-down it holds (if it was not sent yet).
function closeReasons() {
  const panel = document.querySelector(".reasons-panel");
  const sending = sendPendingDown();
  panel?.remove();
  return sending;
}

addEventListener("pagehide", () => sendPendingDown({ keepalive: true }));

function openReasons(m) {
  const node = thread.querySelector(`.msg.assistant[data-id="${CSS.escape(m.id)}"] .msg-col`);
  if (!node) return;
  const chosen = new Set(state.feedback.get(m.id)?.reasons || []);
  const comment = el("textarea", { class: "reason-comment", rows: 2, maxlength: 2000, placeholder: "What was wrong? (optional)", "aria-label": "Comment" });
  pendingDown = { message: m, chosen, comment };
  node.querySelector('[aria-label="Bad response"]')?.setAttribute("aria-pressed", "true");
  const chips = REASONS.map(([code, label]) => {
    const chip = el("button", { type: "button", class: "chip", "aria-pressed": chosen.has(code) ? "true" : "false", dataset: { reason: code } }, label);
    chip.addEventListener("click", () => {
      if (chosen.has(code)) chosen.delete(code);
      else chosen.add(code);
      chip.setAttribute("aria-pressed", chosen.has(code) ? "true" : "false");
    });
    return chip;
  });
  const finish = async (thanks) => {
    await closeReasons();
    render();
    if (thanks) toast("Thanks — this helps improve the next model");
  };
  const panel = el(
    "div",
    { class: "reasons-panel", role: "dialog", "aria-label": "Tell us more" },
    el("div", { class: "reasons-head" }, el("strong", {}, "Tell us more"), el("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: () => finish(false) }, icon("x"))),
    el("div", { class: "chips" }, chips),
    comment,
    el("div", { class: "editor-actions" }, el("button", { type: "button", class: "btn primary", onclick: () => finish(true) }, "Submit")),
  );
  node.append(panel);
  scrollToBottom();
}

// -- improving an answer --------------------------------------------------------------------

function startImprove(m, col) {
  if (state.stream) return;
  const area = el("textarea", { class: "edit-area improve-area", "aria-label": "Improved answer", rows: 8 });
  area.value = textOf(m);
  const save = async () => {
    const content = area.value.trim();
    if (!content || content === textOf(m).trim()) { render(); return; }
    try {
      const result = await api("POST", `/api/messages/${m.id}/improve`, { content });
      addMessage(result.message);
      await reloadTree(1);
      if (state.current !== result.message.id) {
        state.current = result.message.id;
        api("PUT", `/api/conversations/${state.conv.id}/current`, { message_id: result.message.id }).catch(() => {});
      }
      render();
      toast("Saved as a new version of the answer");
    } catch (err) {
      toast(err.message, "error");
    }
  };
  area.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); render(); }
  });
  col.replaceChildren(
    el("div", { class: "editor improve" },
      el("p", { class: "muted small" }, "Rewrite the answer the way it should have been. Your version is kept beside the original and teaches the next model."),
      area,
      el("div", { class: "editor-actions" },
        el("button", { type: "button", class: "btn", onclick: () => render() }, "Cancel"),
        el("button", { type: "button", class: "btn primary", onclick: save }, "Save improved answer"))),
  );
  area.focus();
}

async function remember(m) {
  try {
    await api("POST", `/api/messages/${m.id}/remember`);
    toast("Saved to memory");
  } catch (err) {
    toast(err.message, "error");
  }
}

// -- comparisons ----------------------------------------------------------------------------

// `continuedFrom`: the answer the chat went on from while this comparison waits for a vote.
function comparisonNode(c, continuedFrom = null) {
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
  const vote = (verdict, label) => el("button", { type: "button", class: "btn vote", dataset: { verdict }, onclick: () => castVote(c, verdict) }, label);
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

// The two answers of a comparison as they stream, side by side and blind.
function streamingComparison(ui) {
  const bodies = {};
  const side = (key) => {
    bodies[key] = el("div", { class: "markdown" }, el("span", { class: "typing", "aria-label": "Thinking" }, el("i"), el("i"), el("i")));
    return el("section", { class: "candidate", "aria-label": `Answer ${key.toUpperCase()}` },
      el("header", {}, el("span", { class: "cand-label" }, `Answer ${key.toUpperCase()}`), el("span", { class: "cand-model hidden-name" }, "model hidden")),
      bodies[key]);
  };
  const card = el("div", { class: "comparison streaming" },
    el("p", { class: "comparison-intro" }, "Writing two answers to compare…"),
    el("div", { class: "candidates" }, side("a"), side("b")));
  ui.body.replaceChildren(card);
  const texts = { a: "", b: "" };
  const frames = {};
  return {
    add(key, text) {
      if (!(key in texts)) return;
      texts[key] += text;
      if (frames[key]) return;
      frames[key] = requestAnimationFrame(() => {
        frames[key] = 0;
        const stick = nearBottom();
        bodies[key].innerHTML = renderMarkdown(texts[key]);
        if (stick) scrollToBottom(true);
      });
    },
  };
}

async function showComparison(c, notice = null) {
  if (c.conversation_id && (!state.conv || state.conv.id === c.conversation_id)) {
    try {
      setTree(await api("GET", `/api/conversations/${c.conversation_id}`));
    } catch {
      /* keep what we have */
    }
  }
  keepOpenComparison(c);
  render();
  if (notice) thread.querySelector(`.comparison[data-id="${CSS.escape(c.id)}"]`)?.prepend(el("p", { class: "notice", role: "note" }, icon("alert"), notice));
  scrollToBottom(true);
}

async function castVote(c, verdict) {
  const card = thread.querySelector(`.comparison[data-id="${CSS.escape(c.id)}"]`);
  for (const b of card?.querySelectorAll(".vote") || []) b.disabled = true;
  try {
    const result = await api("POST", `/api/comparisons/${c.id}/vote`, { verdict });
    forgetComparison(c);
    setTree(await api("GET", `/api/conversations/${c.conversation_id}`));
    const atTheEnd = [c.parent_message_id, c.a.message_id, c.b.message_id].includes(state.current);
    state.revealed = verdict === "both_bad" ? null : result;
    render();
    if (verdict === "both_bad" && atTheEnd) {
      // No chosen answer: show the verdict, with the names, above the question's retry.
      thread.append(comparisonNode(result));
    } else if (!atTheEnd && !thread.querySelector(`.comparison[data-id="${CSS.escape(c.id)}"]`)) {
      toast(`Vote saved: ${result.a.model} (A) vs ${result.b.model} (B)`);
    }
    if (atTheEnd) scrollToBottom(true);
  } catch (err) {
    toast(err.message, "error");
    for (const b of card?.querySelectorAll(".vote") || []) b.disabled = false;
  }
}

async function compare({ content = null, parentId = null, modelB = undefined } = {}) {
  if (state.stream) return;
  const previous = { text: input.value, attachments: state.attachments };
  try {
    await ensureConversation();
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  const body = { stream: true };
  if (content) {
    body.content = content;
    if (state.current) body.parent_id = state.current;
    clearComposer();
  } else body.parent_id = parentId;
  const modelA = chosenModel();
  if (modelA) body.model_a = modelA;
  if (modelB) body.model_b = modelB;
  state.revealed = null;
  await runStream(`/api/conversations/${state.conv.id}/comparisons`, body, {
    baseLeaf: content ? state.current : parentId,
    userText: content,
    onFail: () => {
      input.value = previous.text;
      autosize();
    },
  });
}

function compareAgain(answer) {
  compare({ parentId: answer.parent_id, modelB: undefined });
}

let compareMenu = null;

function closeCompareMenu() {
  compareMenu?.remove();
  compareMenu = null;
  compareBtn.setAttribute("aria-expanded", "false");
}

compareBtn.addEventListener("click", (e) => {
  e.stopPropagation();
  if (compareMenu) { closeCompareMenu(); return; }
  const text = input.value.trim();
  if (!text) return;
  const others = state.models.filter((id) => id !== picker.value);
  const pick = (modelB) => () => { closeCompareMenu(); compare({ content: text, modelB }); };
  compareMenu = el(
    "div",
    { class: "menu up", role: "menu", "aria-label": "Compare against" },
    el("p", { class: "menu-title" }, "Compare two answers — blind"),
    el("button", { type: "button", role: "menuitem", onclick: pick(undefined) }, "Two answers from the same model"),
    others.map((id) => el("button", { type: "button", role: "menuitem", dataset: { model: id }, onclick: pick(id) }, `Against ${id}`)),
  );
  compareBtn.after(compareMenu);
  compareBtn.setAttribute("aria-expanded", "true");
  compareMenu.querySelector("button").focus();
});

// -- the chat's own menu (rename, system prompt, memory, delete) -----------------------------

let chatMenu = null;

function closeChatMenu() {
  chatMenu?.remove();
  chatMenu = null;
  chatMenuBtn.setAttribute("aria-expanded", "false");
}

chatMenuBtn.addEventListener("click", (e) => {
  e.stopPropagation();
  if (chatMenu) { closeChatMenu(); return; }
  const conv = state.conv;
  chatMenu = el(
    "div",
    { class: "menu right", role: "menu" },
    el("button", { type: "button", role: "menuitem", onclick: () => { closeChatMenu(); renameChat(); } }, icon("pencil"), "Rename"),
    el("button", { type: "button", role: "menuitem", onclick: () => { closeChatMenu(); editSystemPrompt(); } }, icon("settings"), "System prompt"),
    "use_memory" in conv
      ? el("button", { type: "button", role: "menuitemcheckbox", "aria-checked": conv.use_memory ? "true" : "false", onclick: () => { closeChatMenu(); toggleMemory(); } }, icon("bookmark"), conv.use_memory ? "Memory: on" : "Memory: off")
      : null,
    el("button", { type: "button", role: "menuitem", class: "danger", onclick: async () => {
      closeChatMenu();
      if (await deleteConversation(conv)) newChat();
    } }, icon("trash"), "Delete"),
  );
  chatMenuBtn.after(chatMenu);
  chatMenuBtn.setAttribute("aria-expanded", "true");
  chatMenu.querySelector("button").focus();
});

function promptDialog({ title, label, value, rows = 1, hint = "", maxlength = 300 }) {
  return new Promise((resolve) => {
    const field = rows > 1 ? el("textarea", { rows, maxlength, "aria-label": label }) : el("input", { maxlength, "aria-label": label });
    field.value = value || "";
    const dialog = el("dialog", { class: "modal wide", "aria-label": title });
    const form = el("form", { method: "dialog" },
      el("h2", {}, title),
      hint ? el("p", { class: "muted small" }, hint) : null,
      el("label", { class: "field" }, el("span", {}, label), field),
      el("div", { class: "modal-actions" },
        el("button", { type: "button", class: "btn", onclick: () => dialog.close("cancel") }, "Cancel"),
        el("button", { type: "submit", class: "btn primary", value: "ok" }, "Save")));
    dialog.append(form);
    dialog.addEventListener("close", () => { resolve(dialog.returnValue === "ok" ? field.value : null); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
    field.focus();
  });
}

async function renameChat() {
  const title = await promptDialog({ title: "Rename chat", label: "Title", value: state.conv.title });
  if (title === null || !title.trim()) return;
  try {
    state.conv = await api("PATCH", `/api/conversations/${state.conv.id}`, { title: title.trim() });
    updateChrome();
    refreshHistory();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function editSystemPrompt() {
  const text = await promptDialog({
    title: "System prompt for this chat",
    label: "Instructions the assistant follows in this chat only",
    value: state.conv.system_prompt || "",
    rows: 6,
    maxlength: 20000,
    hint: "Added after your custom instructions and the profile's instructions.",
  });
  if (text === null) return;
  try {
    state.conv = await api("PATCH", `/api/conversations/${state.conv.id}`, { system_prompt: text.trim() || null });
    toast("System prompt saved");
  } catch (err) {
    toast(err.message, "error");
  }
}

async function toggleMemory() {
  try {
    state.conv = await api("PATCH", `/api/conversations/${state.conv.id}`, { use_memory: !state.conv.use_memory });
    toast(state.conv.use_memory ? "This chat uses memory" : "This chat ignores memory");
  } catch (err) {
    toast(err.message, "error");
  }
}

document.addEventListener("tandem:renamed", (e) => {
  if (state.conv && state.conv.id === e.detail.id) {
    state.conv.title = e.detail.title;
    updateChrome();
  }
});

// -- attachments ----------------------------------------------------------------------------

function renderAttachments() {
  attachBox.hidden = state.attachments.length === 0 && state.uploadsInFlight === 0 && state.documents.length === 0;
  const blind = state.attachments.length > 0 && !modelSeesImages();
  attachBox.replaceChildren(
    blind ? el("p", { class: "notice attach-warning", role: "alert" }, icon("alert"),
      `${picker.value || "This model"} can't see images. Pick a model that can, or remove the image.`) : "",
    ...state.documents.map((d) => documentChip(d, () => dropDocument(d))),
    ...state.attachments.map((a) =>
      el("div", { class: "thumb" },
        el("img", { src: a.url, alt: a.name || "attached image" }),
        el("button", { type: "button", class: "thumb-remove", "aria-label": `Remove ${a.name || "image"}`, onclick: () => {
          state.attachments = state.attachments.filter((x) => x !== a);
          renderAttachments();
        } }, icon("x")))),
    ...Array.from({ length: state.uploadsInFlight }, () => el("div", { class: "thumb loading-thumb", role: "status", "aria-label": "Uploading" }, el("span", { class: "spinner" }))),
  );
  updateChrome();
}

async function loadDocuments(convId) {
  state.documents = [];
  try {
    state.documents = await listDocuments(convId);
  } catch {
    /* a server without document support: the chat works without */
  }
  // A chat with documents answers from them: its Files switch is on when it is reopened.
  state.tools.clear();
  if (state.documents.some((d) => d.status !== "failed")) state.tools.add("files");
  switches.refresh();
  renderAttachments();
  for (const d of state.documents) if (d.status !== "ready" || (d.embedding_progress ?? 1) < 1) followDocument(d);
}

function followDocument(doc) {
  watchDocument(doc, (latest) => {
    const i = state.documents.findIndex((d) => d.id === latest.id);
    if (i < 0) return;
    state.documents[i] = latest;
    renderAttachments();
    if (latest.status === "failed") toast(`${latest.filename}: ${latest.error || "could not be read"}`, "error");
  });
}

async function dropDocument(doc) {
  try {
    await removeDocument(doc.id);
    state.documents = state.documents.filter((d) => d.id !== doc.id);
    renderAttachments();
  } catch (err) {
    toast(err.message, "error");
  }
}

// Documents belong to a chat: one is created first if needed, and the Files tool is
// switched on, since that is why a document was attached.
async function attachDocument(file) {
  state.uploadsInFlight++;
  renderAttachments();
  try {
    await ensureConversation();
    const doc = await uploadDocument(file, state.conv.id);
    state.documents.push(doc);
    state.tools.add("files");
    switches.refresh();
    followDocument(doc);
  } catch (err) {
    toast(err.message, "error");
  } finally {
    state.uploadsInFlight--;
    renderAttachments();
  }
}

async function upload(file) {
  if (isDocument(file)) {
    await attachDocument(file);
    return;
  }
  state.uploadsInFlight++;
  renderAttachments();
  try {
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image.png");
    const response = await request("POST", "/api/uploads", { body: form });
    const up = await response.json();
    state.attachments.push({ id: up.id, mime: up.mime, name: file.name, url: URL.createObjectURL(file) });
  } catch (err) {
    toast(err.status === 404 ? "This server does not accept images yet." : err.message, "error");
  } finally {
    state.uploadsInFlight--;
    renderAttachments();
  }
}

const switches = toolSwitches(state.tools);
document.querySelector(".composer-tools").append(switches);
fileInput.setAttribute("accept", `image/*,${DOCUMENT_TYPES}`);
document.addEventListener("click", (e) => {
  if (!e.target.closest(".citation-pop, .cite, .source-btn")) closeCitation();
});

fileInput.addEventListener("change", () => {
  for (const file of fileInput.files) upload(file);
  fileInput.value = "";
});
document.getElementById("attach-btn").addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); }
});
input.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
  if (files.length) {
    e.preventDefault();
    files.forEach(upload);
  }
});

// -- voice ----------------------------------------------------------------------------------
// Dictation, reading aloud and hands-free voice mode run on tandem's server (voice.js).

const voice = initVoice({
  micBtn,
  voiceBtn: document.getElementById("voice-btn"),
  statusEl: document.getElementById("voice-status"),
  input,
  send: (text) => send(text),
});

function readAloud(text, button) {
  voice.readAloud(text, button);
}

// The end of every turn, for voice mode: the answer to read aloud, or null when there is none
// (stopped, failed, or a blind comparison waiting for a vote).
function announceAnswer(ui, stream) {
  const leaf = state.current ? state.messages.get(state.current) : null;
  const answered = leaf?.role === "assistant" && !stream.stopped && !stream.pair && !ui.answer.classList.contains("failed");
  const detail = { messageId: answered ? leaf.id : null, text: answered ? textOf(leaf) : null };
  document.dispatchEvent(new CustomEvent("tandem:answer-done", { detail }));
}

// -- composer -------------------------------------------------------------------------------

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
}

input.addEventListener("input", () => { autosize(); updateChrome(); });
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    if (!sendBtn.disabled) composer.requestSubmit();
  }
});
composer.addEventListener("submit", (e) => {
  e.preventDefault();
  if (state.uploadsInFlight) return;
  const { text, attachments } = takeComposer();
  send(text, attachments);
});
stopBtn.addEventListener("click", stopStreaming);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.stream && !document.querySelector("dialog[open]")) {
    e.preventDefault();
    stopStreaming();
  }
});
document.addEventListener("click", (e) => {
  if (compareMenu && !compareMenu.contains(e.target)) closeCompareMenu();
  if (chatMenu && !chatMenu.contains(e.target)) closeChatMenu();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") { closeCompareMenu(); closeChatMenu(); closeCitation(); }
});

// Copy buttons inside rendered code blocks (their HTML comes from the markdown renderer).
thread.addEventListener("click", (e) => {
  const btn = e.target.closest(".copy-code");
  if (!btn) return;
  const code = btn.closest(".code-block")?.querySelector("code");
  if (code) {
    copyText(code.textContent);
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 1500);
  }
});

window.addEventListener("popstate", () => {
  const m = location.pathname.match(/^\/c\/([^/]+)$/);
  if (m) openConversation(decodeURIComponent(m[1]), { push: false });
  else newChat({ push: false });
});

// -- start ----------------------------------------------------------------------------------

async function start() {
  initSidebar({
    onOpen: (id) => openConversation(id),
    onNew: () => newChat(),
    onDeleted: (id) => { if (state.conv?.id === id) newChat(); },
    activeId: () => state.conv?.id || null,
  });
  const me = api("GET", "/api/auth/me").then((m) => { state.me = m; }).catch(() => {});
  await Promise.all([me, loadModels(), loadTools()]);
  const id = app.dataset.conversationId;
  if (id) await openConversation(id, { push: false });
  else {
    render();
    input.focus();
  }
  closeSidebar();
  document.body.dataset.ready = "true"; // tests and scripts wait for this before typing
}

start();
