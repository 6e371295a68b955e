// The conversation as a tree: every message by id, the children of each, and the branch the
// user sees (from a root to `state.current`). Editing, regenerating and improving add
// siblings; the server keeps which leaf is current.
import { api } from "./api.js";
import { chosenModel } from "./chat_models.js";
import { state } from "./chat_state.js";

export function setTree(data) {
  state.conv = data.conversation;
  state.messages.clear();
  state.children.clear();
  for (const m of data.messages) addMessage(m);
  state.current = data.conversation.current_message_id;
}

export function clearTree() {
  state.conv = null;
  state.messages.clear();
  state.children.clear();
  state.current = null;
}

export function addMessage(m) {
  if (state.messages.has(m.id)) {
    state.messages.set(m.id, m);
    return;
  }
  state.messages.set(m.id, m);
  const key = m.parent_id || "";
  if (!state.children.has(key)) state.children.set(key, []);
  state.children.get(key).push(m);
}

export function branch(leafId = state.current) {
  const path = [];
  let node = leafId ? state.messages.get(leafId) : null;
  while (node) {
    path.push(node);
    node = node.parent_id ? state.messages.get(node.parent_id) : null;
  }
  return path.reverse();
}

export function siblingsOf(m) {
  return state.children.get(m.parent_id || "") || [m];
}

// The answers given to a question, oldest first.
export function answersTo(question) {
  return state.children.get(question.id) || [];
}

// The leaf reached from `m` by following, at each step, the newest answer or edit.
export function deepestFrom(m) {
  let node = m;
  for (;;) {
    const kids = state.children.get(node.id);
    if (!kids || !kids.length) return node;
    node = kids[kids.length - 1];
  }
}

export function textOf(m) {
  return m.content || (m.parts || []).filter((p) => p.type === "text").map((p) => p.text || "").join("");
}

export function imagesOf(m) {
  return (m.parts || []).filter((p) => p.type === "image" && p.data && p.data.upload_id);
}

// A chat is created on the server by its first message or attachment, not before.
export async function ensureConversation() {
  if (state.conv) return state.conv;
  const body = {};
  if (state.profile) body.profile_id = state.profile.id;
  const model = chosenModel();
  if (model) body.model = model;
  state.conv = await api("POST", "/api/conversations", body);
  history.pushState({ id: state.conv.id }, "", `/c/${state.conv.id}`);
  return state.conv;
}

// After a stop, the server records the partial answer as the stream unwinds: poll briefly.
export async function reloadTree(tries) {
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
