// The chat page: a conversation tree shown as its current branch, streamed answers, and the
// signals (thumbs, reasons, improved answers, blind comparisons) that train the next model.
//
// The server owns the truth: the visible branch is always the conversation's current branch
// (GET /api/conversations/{id}), and paging between alternatives makes the chosen one current
// on the server, so the next message continues exactly what the user sees.
//
// One module per idea, over one state object (chat_state.js): chat_tree.js (the tree and its
// current branch), chat_thread.js (drawing the thread), chat_stream.js (streamed answers),
// chat_signals.js (thumbs, reasons, improved answers, votes), chat_composer.js (the message
// box: attachments, tools, voice, compare), chat_models.js (the model picker) and chat_menu.js
// (rename, system prompt, memory, delete). This file opens chats, pages between alternatives,
// and hands the thread what each of its buttons does.
import { ApiError, api, el, toast } from "./api.js";
import { closeSidebar, initSidebar } from "./sidebar.js";
import { closeCitation } from "./tools.js";
import { compareAgain, focusInput, forgetDocuments, loadDocuments, loadTools, readAloud, send } from "./chat_composer.js";
import { initChatMenu } from "./chat_menu.js";
import { loadModels, syncPicker } from "./chat_models.js";
import { castVote, loadComparisons, loadFeedback, rate, remember, reportSignal, sendPendingDown, startImprove } from "./chat_signals.js";
import { state } from "./chat_state.js";
import { answerAgain, continueAnswer, regenerate, startEdit, stopStreaming } from "./chat_stream.js";
import { errorState, initThread, render, scrollToBottom, thread, updateChrome } from "./chat_thread.js";
import { clearTree, deepestFrom, setTree } from "./chat_tree.js";

const app = document.getElementById("app");

// -- opening a chat ---------------------------------------------------------------------------

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
    clearTree();
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
  if (!state.notFound) focusInput({ preventScroll: true });
}

function newChat({ push = true, profile = null } = {}) {
  if (state.stream) stopStreaming();
  clearTree();
  state.openComparisons.clear();
  state.revealed = null;
  state.notFound = false;
  state.profile = profile;
  forgetDocuments();
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  syncPicker();
  render();
  focusInput();
}

// -- paging between alternatives --------------------------------------------------------------

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

// -- wiring -----------------------------------------------------------------------------------

initThread({
  switchTo,
  startEdit,
  remember,
  continueAnswer,
  rate,
  regenerate,
  improve: startImprove,
  readAloud,
  compareAgain,
  send,
  newChat,
  answerAgain,
  castVote,
  sendPendingDown,
  copied: (m) => reportSignal(m.id, "copy"),
});
initChatMenu({ onDeleted: () => newChat() });

// Citations open a popup over the thread; a click elsewhere or Escape closes it.
document.addEventListener("click", (e) => {
  if (!e.target.closest(".citation-pop, .cite, .source-btn")) closeCitation();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeCitation();
});

window.addEventListener("popstate", () => {
  const m = location.pathname.match(/^\/c\/([^/]+)$/);
  if (m) openConversation(decodeURIComponent(m[1]), { push: false });
  else newChat({ push: false });
});

// -- start ------------------------------------------------------------------------------------

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
    focusInput();
  }
  closeSidebar();
  document.body.dataset.ready = "true"; // tests and scripts wait for this before typing
}

start();
