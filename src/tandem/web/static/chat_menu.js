// The chat's own menu in the top bar: rename, system prompt, memory, delete.
//
//   initChatMenu({ onDeleted: () => newChat() });
import { api, el, toast } from "./api.js";
import { icon } from "./icons.js";
import { deleteConversation, refreshHistory } from "./sidebar.js";
import { state } from "./chat_state.js";
import { updateChrome } from "./chat_thread.js";

const chatMenuBtn = document.getElementById("chat-menu-btn");
let chatMenu = null;

function closeChatMenu() {
  chatMenu?.remove();
  chatMenu = null;
  chatMenuBtn.setAttribute("aria-expanded", "false");
}

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

// `onDeleted`: what the page shows once this chat is deleted.
export function initChatMenu({ onDeleted }) {
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
        if (await deleteConversation(conv)) onDeleted();
      } }, icon("trash"), "Delete"),
    );
    chatMenuBtn.after(chatMenu);
    chatMenuBtn.setAttribute("aria-expanded", "true");
    chatMenu.querySelector("button").focus();
  });
  document.addEventListener("click", (e) => {
    if (chatMenu && !chatMenu.contains(e.target)) closeChatMenu();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeChatMenu();
  });
  // The sidebar renamed this chat.
  document.addEventListener("tandem:renamed", (e) => {
    if (state.conv && state.conv.id === e.detail.id) {
      state.conv.title = e.detail.title;
      updateChrome();
    }
  });
}
