// The signals that train the next model: thumbs with reasons, improved answers, memories, the
// votes on blind comparisons, and what the user did with an answer (copied it).
import { api, el, request, toast } from "./api.js";
import { icon } from "./icons.js";
import { state } from "./chat_state.js";
import { addMessage, reloadTree, setTree, textOf } from "./chat_tree.js";
import { comparisonNode, render, scrollToBottom, thread } from "./chat_thread.js";

// [[reason, label], ...] in the order the panel shows them: declared once, server-side
// (tandem.core.signals), and written into the page by its template (no inline script: the
// Content-Security-Policy allows none).
const REASONS = JSON.parse(document.getElementById("app").dataset.feedbackReasons);

// -- thumbs and reasons -----------------------------------------------------------------------

export async function loadFeedback() {
  state.feedback.clear();
  try {
    for (const fb of await api("GET", "/api/feedback")) if (fb.message_id) state.feedback.set(fb.message_id, fb);
  } catch {
    /* ratings are decoration here: the chat still works without them */
  }
}

// A thumbs-down opens the reasons panel and is sent once, with whatever reasons and comment
// the panel holds when it closes (Submit, the close button, another chat, leaving the page):
// one request, one rating row, and never lost.
let pendingDown = null;

export async function rate(m, rating) {
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

export async function sendPendingDown({ keepalive = false } = {}) {
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

// -- implicit signals: what the user did with an answer -----------------------------------------

// Reports waiting to be sent, kept in this tab's storage: a copy made while the server cannot be
// reached (or just before the page goes away) is sent later — on the next report, when the
// browser is back online, every few seconds until it is through, and on the next page load.
// The server counts a report of the same kind on the same answer once per ten minutes, so a
// report sent twice (a retry whose first try did arrive) is still one signal.
const UNSENT_KEY = "tandem.unsentSignals";
const RETRY_MS = 5000;
let unsent = [];
try {
  unsent = JSON.parse(sessionStorage.getItem(UNSENT_KEY) || "[]");
} catch {
  unsent = [];
}
let flushing = false;
let retryTimer = 0;

function keepUnsent() {
  try {
    sessionStorage.setItem(UNSENT_KEY, JSON.stringify(unsent.slice(-50)));
  } catch {
    /* storage full or off: the reports stay in memory */
  }
}

export function reportSignal(messageId, kind) {
  unsent.push({ messageId, kind });
  keepUnsent();
  return flushSignals();
}

export async function flushSignals({ keepalive = true } = {}) {
  if (flushing) return;
  flushing = true;
  clearTimeout(retryTimer);
  try {
    while (unsent.length) {
      const { messageId, kind } = unsent[0];
      try {
        await request("POST", `/api/messages/${encodeURIComponent(messageId)}/signals`, { json: { kind }, keepalive });
      } catch (err) {
        // Unreachable, overloaded or failing: keep it and try again. Refused (the answer is
        // gone, not ours): drop it, a retry would be refused too.
        if (!(err.status >= 400 && err.status < 500) || err.status === 429) {
          retryTimer = setTimeout(flushSignals, RETRY_MS);
          break;
        }
      }
      unsent.shift();
      keepUnsent();
    }
  } finally {
    flushing = false;
  }
}

addEventListener("online", () => flushSignals());
addEventListener("pagehide", () => flushSignals());
if (unsent.length) flushSignals();

// -- improving an answer, remembering a message ----------------------------------------------

export function startImprove(m, col) {
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

export async function remember(m) {
  try {
    await api("POST", `/api/messages/${m.id}/remember`);
    toast("Saved to memory");
  } catch (err) {
    toast(err.message, "error");
  }
}

// -- votes on blind comparisons --------------------------------------------------------------

function keepOpenComparison(c) {
  if (c.verdict) return;
  for (const id of [c.parent_message_id, c.a.message_id, c.b.message_id]) state.openComparisons.set(id, c);
}

function forgetComparison(c) {
  for (const [id, open] of state.openComparisons) if (open.id === c.id) state.openComparisons.delete(id);
}

export async function loadComparisons(convId) {
  state.openComparisons.clear();
  try {
    for (const c of await api("GET", `/api/comparisons?conversation_id=${encodeURIComponent(convId)}`)) keepOpenComparison(c);
  } catch {
    /* as with ratings: the chat still works without them */
  }
}

// A comparison that finished streaming: drawn from the stored tree, waiting for the vote.
export async function showComparison(c, notice = null) {
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

export async function castVote(c, verdict) {
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
