// Streaming an answer: the branch up to where the turn starts, the (optimistic) user message
// and a live answer (or two, side by side, for a blind comparison) drawn as the server's
// events arrive; then the tree is read again so the thread shows what the server stored.
// Also the turns that stream from the thread: regenerate, continue, edit, answer again.
import { ApiError, el, readEvents, request, toast } from "./api.js";
import { icon } from "./icons.js";
import { renderMarkdown } from "./markdown.js";
import { refreshHistory } from "./sidebar.js";
import { toolCard, toolRunning } from "./tools.js";
import { chosenModel } from "./chat_models.js";
import { showComparison } from "./chat_signals.js";
import { state } from "./chat_state.js";
import { addMessage, answersTo, reloadTree, textOf } from "./chat_tree.js";
import { nearBottom, render, scrollToBottom, thread, updateChrome } from "./chat_thread.js";

const stopBtn = document.getElementById("stop-btn");

// -- the turns that stream from the thread ---------------------------------------------------

export async function regenerate(m) {
  if (state.stream) return;
  const body = { stream: true };
  const model = chosenModel();
  if (model) body.model = model;
  await runStream(`/api/messages/${m.id}/regenerate`, body, { baseLeaf: m.parent_id });
}

// More of an answer that was cut off: streamed after the text it already has, and stored as a
// new version of the answer (the pager shows both).
export async function continueAnswer(m) {
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

// A question left without an answer on this branch: a new version of its newest answer, or a
// first one.
export function answerAgain(question) {
  const kids = answersTo(question);
  if (kids.length) regenerate(kids[kids.length - 1]);
  else resend(question);
}

export function startEdit(m, node) {
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

// -- streaming --------------------------------------------------------------------------------

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

// `baseLeaf`: where the turn starts on the tree. `userText`/`userImages`: the message shown
// while it is sent; `onFail` gives it back to the composer if the server never stored it.
// `prefix`: the text the answer already has (a continued answer).
export async function runStream(url, body, { baseLeaf = null, userText = null, userImages = [], onFail = null, prefix = "" } = {}) {
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
    else if (leaf && leaf.role === "user") answerAgain(leaf);
    else render();
  } }, icon("refresh"), "Try again");
  ui.body.replaceChildren(
    el("div", { class: "error-box", role: "alert" }, icon("alert"), el("span", {}, err.message || "Something went wrong. Try again.")),
    keepUser ? retry : "",
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

// The end of every turn, for voice mode (voice.js): the answer to read aloud, or null when
// there is none (stopped, failed, or a blind comparison waiting for a vote).
function announceAnswer(ui, stream) {
  const leaf = state.current ? state.messages.get(state.current) : null;
  const answered = leaf?.role === "assistant" && !stream.stopped && !stream.pair && !ui.answer.classList.contains("failed");
  const detail = { messageId: answered ? leaf.id : null, text: answered ? textOf(leaf) : null };
  document.dispatchEvent(new CustomEvent("tandem:answer-done", { detail }));
}

export function stopStreaming() {
  if (state.stream) state.stream.controller.abort();
}

stopBtn.addEventListener("click", stopStreaming);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.stream && !document.querySelector("dialog[open]")) {
    e.preventDefault();
    stopStreaming();
  }
});
