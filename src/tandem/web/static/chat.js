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

const REASONS = [
  ["not_factual", "Not factually correct"],
  ["didnt_follow_instructions", "Didn't follow instructions"],
  ["refused", "Refused when it shouldn't have"],
  ["too_long", "Too long"],
  ["unsafe", "Unsafe or harmful"],
  ["other", "Other"],
];
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
  pendingComparison: null, // ComparisonPublic awaiting a vote, shown at the end of the thread
  revealed: null, // the comparison just voted on, shown with model names until the next turn
  notices: new Map(), // message id -> the server's notice for that answer (e.g. no vision)
  profile: null,
  models: [],
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
  const notice = state.notices.get(m.id);
  if (notice) col.append(el("p", { class: "notice", role: "note" }, icon("alert"), notice));
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
    "speechSynthesis" in window ? actionBtn("speaker", "Read aloud", (e) => readAloud(textOf(m), e.currentTarget)) : null,
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
      if (state.revealed && last && [state.revealed.a.message_id, state.revealed.b.message_id].includes(m.id)) {
        nodes.push(comparisonNode(state.revealed));
      } else nodes.push(assistantMessageNode(m, last));
    }
  });
  const leaf = path[path.length - 1];
  if (state.pendingComparison && leaf && state.pendingComparison.parent_message_id === leaf.id) {
    nodes.push(comparisonNode(state.pendingComparison));
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
  sendBtn.disabled = busy || empty || state.uploadsInFlight > 0 || state.notFound;
  compareBtn.disabled = busy || empty || state.uploadsInFlight > 0 || state.notFound;
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

async function loadPendingComparison(convId) {
  state.pendingComparison = null;
  try {
    const all = await api("GET", "/api/comparisons");
    state.pendingComparison = all.find((c) => c.conversation_id === convId && !c.verdict) || null;
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
  state.notices.clear();
  if (push && location.pathname !== `/c/${id}`) history.pushState({ id }, "", `/c/${id}`);
  thread.replaceChildren(el("div", { class: "loading", role: "status" }, el("span", { class: "spinner" }), "Loading chat…"));
  try {
    const data = await api("GET", `/api/conversations/${encodeURIComponent(id)}`);
    setTree(data);
    await Promise.all([loadFeedback(), loadPendingComparison(id), loadProfile(data.conversation.profile_id), loadDocuments(id)]);
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
  state.pendingComparison = null;
  state.revealed = null;
  state.notFound = false;
  state.profile = profile;
  state.documents = [];
  renderAttachments();
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  syncPicker();
  render();
  input.focus();
}

// -- models ---------------------------------------------------------------------------------

async function loadModels() {
  try {
    const body = await api("GET", "/v1/models");
    state.models = body.data.map((m) => m.id);
  } catch {
    state.models = [];
  }
  syncPicker();
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

async function runStream(url, body, { baseLeaf = null, userText = null, userImages = [], onFail = null } = {}) {
  state.pendingComparison = null;
  const savedCurrent = state.current;
  state.current = baseLeaf;
  render();
  const controller = new AbortController();
  const ui = streamingBubble(userText, userImages);
  const stream = { controller, text: "", ui, stopped: false, frame: 0 };
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
    const type = response.headers.get("content-type") || "";
    if (type.includes("application/json")) {
      // Not a stream: the server chose to answer this turn with a blind comparison.
      const data = await response.json();
      if (data.comparison) await showComparison(data.comparison, data.notice);
      finished = true;
      return;
    }
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
        if (event.notice) state.notices.set(event.message.id, event.notice);
        if (event.memory_saved) toast(`Remembered: ${event.memory_saved.text}`);
        finished = true;
      } else if (event.type === "notice") {
        showNotice(event.notice);
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
      if (!ui.answer.classList.contains("failed") && !state.pendingComparison) render();
      refreshHistory();
    }
    updateChrome();
    if (stream.stopped) toast("Stopped");
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

async function rate(m, rating) {
  const existing = state.feedback.get(m.id);
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
    const fb = await api("POST", `/api/messages/${m.id}/feedback`, { rating, reasons: [], comment: "" });
    state.feedback.set(m.id, fb);
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  render();
  if (rating === "down") openReasons(m);
  else toast("Thanks for the feedback");
}

function closeReasons() {
  document.querySelector(".reasons-panel")?.remove();
}

function openReasons(m) {
  closeReasons();
  const node = thread.querySelector(`.msg.assistant[data-id="${CSS.escape(m.id)}"] .msg-col`);
  if (!node) return;
  const chosen = new Set(state.feedback.get(m.id)?.reasons || []);
  const comment = el("textarea", { class: "reason-comment", rows: 2, maxlength: 2000, placeholder: "What was wrong? (optional)", "aria-label": "Comment" });
  const chips = REASONS.map(([code, label]) => {
    const chip = el("button", { type: "button", class: "chip", "aria-pressed": chosen.has(code) ? "true" : "false", dataset: { reason: code } }, label);
    chip.addEventListener("click", () => {
      if (chosen.has(code)) chosen.delete(code);
      else chosen.add(code);
      chip.setAttribute("aria-pressed", chosen.has(code) ? "true" : "false");
    });
    return chip;
  });
  const submit = async () => {
    try {
      const fb = await api("POST", `/api/messages/${m.id}/feedback`, { rating: "down", reasons: [...chosen], comment: comment.value.trim() });
      state.feedback.set(m.id, fb);
      closeReasons();
      toast("Thanks — this helps improve the next model");
    } catch (err) {
      toast(err.message, "error");
    }
  };
  const panel = el(
    "div",
    { class: "reasons-panel", role: "dialog", "aria-label": "Tell us more" },
    el("div", { class: "reasons-head" }, el("strong", {}, "Tell us more"), el("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: closeReasons }, icon("x"))),
    el("div", { class: "chips" }, chips),
    comment,
    el("div", { class: "editor-actions" }, el("button", { type: "button", class: "btn primary", onclick: submit }, "Submit")),
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

function comparisonNode(c) {
  const voted = Boolean(c.verdict);
  const side = (key, label) => {
    const cand = c[key];
    const chosen = voted && (c.verdict === key || c.verdict === "tie");
    return el(
      "section",
      { class: `candidate${chosen ? " chosen" : ""}`, "aria-label": `Answer ${label}` },
      el("header", {}, el("span", { class: "cand-label" }, `Answer ${label}`),
        voted ? el("span", { class: "cand-model" }, cand.model || "unknown model") : el("span", { class: "cand-model hidden-name" }, "model hidden")),
      markdownNode(cand.content),
    );
  };
  const vote = (verdict, label) => el("button", { type: "button", class: "btn vote", dataset: { verdict }, onclick: () => castVote(c, verdict) }, label);
  const verdictText = { a: "You preferred A.", b: "You preferred B.", tie: "You rated them a tie.", both_bad: "You rated both answers bad." };
  return el(
    "div",
    { class: `comparison${voted ? " voted" : ""}`, dataset: { id: c.id } },
    el("p", { class: "comparison-intro" }, voted ? verdictText[c.verdict] + " The models are revealed." : "Which answer is better? The models stay hidden until you vote."),
    el("div", { class: "candidates" }, side("a", "A"), side("b", "B")),
    voted ? null : el("div", { class: "votes", role: "group", "aria-label": "Vote" }, vote("a", "A is better"), vote("tie", "Tie"), vote("b", "B is better"), vote("both_bad", "Both are bad")),
  );
}

async function showComparison(c, notice = null) {
  if (c.conversation_id && (!state.conv || state.conv.id === c.conversation_id)) {
    try {
      setTree(await api("GET", `/api/conversations/${c.conversation_id}`));
    } catch {
      /* keep what we have */
    }
  }
  state.pendingComparison = c;
  state.current = c.parent_message_id;
  render();
  if (notice) thread.querySelector(".comparison")?.prepend(el("p", { class: "notice", role: "note" }, icon("alert"), notice));
  scrollToBottom(true);
}

async function castVote(c, verdict) {
  for (const b of thread.querySelectorAll(".comparison .vote")) b.disabled = true;
  try {
    const result = await api("POST", `/api/comparisons/${c.id}/vote`, { verdict });
    state.pendingComparison = null;
    setTree(await api("GET", `/api/conversations/${c.conversation_id}`));
    state.revealed = verdict === "both_bad" ? null : result;
    render();
    if (verdict === "both_bad") {
      // No chosen answer: show the verdict, with the names, above the question's retry.
      thread.append(comparisonNode(result));
    }
    scrollToBottom(true);
  } catch (err) {
    toast(err.message, "error");
    for (const b of thread.querySelectorAll(".comparison .vote")) b.disabled = false;
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
  const body = {};
  if (content) {
    body.content = content;
    if (state.current) body.parent_id = state.current;
    clearComposer();
  } else body.parent_id = parentId;
  const modelA = chosenModel();
  if (modelA) body.model_a = modelA;
  if (modelB) body.model_b = modelB;
  state.pendingComparison = null;
  state.revealed = null;
  const base = content ? state.current : parentId;
  const saved = state.current;
  state.current = base;
  render();
  const controller = new AbortController();
  const ui = streamingBubble(content, []);
  ui.body.replaceChildren(el("span", { class: "typing" }, el("i"), el("i"), el("i")), el("span", { class: "muted small" }, " Writing two answers to compare…"));
  state.stream = { controller, ui };
  updateChrome();
  try {
    const response = await request("POST", `/api/conversations/${state.conv.id}/comparisons`, { json: body, signal: controller.signal });
    const result = await response.json();
    state.stream = null;
    await showComparison(result);
  } catch (err) {
    state.stream = null;
    if (err.name === "AbortError") {
      state.current = saved;
      await reloadTree(4);
      render();
    } else {
      showStreamError(ui, err, false);
      if (content) {
        input.value = previous.text;
        autosize();
      }
      state.current = saved;
    }
  } finally {
    state.stream = null;
    updateChrome();
    refreshHistory();
  }
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
  attachBox.replaceChildren(
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

const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
let recognizer = null;

if (Recognition) {
  micBtn.hidden = false;
  micBtn.addEventListener("click", () => {
    if (recognizer) { recognizer.stop(); return; }
    recognizer = new Recognition();
    recognizer.interimResults = true;
    recognizer.continuous = false;
    const before = input.value ? input.value.replace(/\s*$/, " ") : "";
    recognizer.onresult = (e) => {
      input.value = before + [...e.results].map((r) => r[0].transcript).join("");
      autosize();
      updateChrome();
    };
    recognizer.onerror = (e) => toast(e.error === "not-allowed" ? "Allow the microphone to dictate." : "Dictation stopped.", "error");
    recognizer.onend = () => {
      recognizer = null;
      micBtn.classList.remove("recording");
      micBtn.setAttribute("aria-label", "Dictate");
    };
    micBtn.classList.add("recording");
    micBtn.setAttribute("aria-label", "Stop dictation");
    recognizer.start();
  });
}

function readAloud(text, button) {
  if (speechSynthesis.speaking) {
    speechSynthesis.cancel();
    if (button.classList.contains("speaking")) { button.classList.remove("speaking"); return; }
  }
  const plain = text.replace(/```[\s\S]*?```/g, " code block ").replace(/[*_#`>]/g, "");
  const utterance = new SpeechSynthesisUtterance(plain);
  button.classList.add("speaking");
  utterance.onend = utterance.onerror = () => button.classList.remove("speaking");
  speechSynthesis.speak(utterance);
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
  await Promise.all([me, loadModels()]);
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
