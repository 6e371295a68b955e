// The sidebar shared by every signed-in page: chat history (newest first, grouped by day),
// search, rename, delete, new chat, log out, and the phone-width menu.
import { api, confirmDialog, el, formatDay, toast } from "./api.js";
import { icon } from "./icons.js";

const history = document.getElementById("history");
const search = document.getElementById("search");
let options = { onOpen: null, onNew: null, onDeleted: null, activeId: () => null };
let openMenu = null;

export function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  document.getElementById("scrim").hidden = true;
}

function openSidebar() {
  document.body.classList.add("sidebar-open");
  document.getElementById("scrim").hidden = false;
  search.focus({ preventScroll: true });
}

function closeMenu() {
  if (openMenu) openMenu.remove();
  openMenu = null;
}

function itemMenu(conv, anchor, row) {
  closeMenu();
  const menu = el(
    "div",
    { class: "menu", role: "menu" },
    el("button", { type: "button", role: "menuitem", onclick: () => { closeMenu(); rename(conv, row); } }, icon("pencil"), "Rename"),
    el("button", { type: "button", role: "menuitem", class: "danger", onclick: () => { closeMenu(); remove(conv); } }, icon("trash"), "Delete"),
  );
  anchor.after(menu);
  openMenu = menu;
  menu.querySelector("button").focus();
}

function rename(conv, row) {
  const input = el("input", { class: "rename-input", value: conv.title || "", "aria-label": "Chat title", maxlength: 300 });
  const link = row.querySelector("a");
  link.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== conv.title) {
      try {
        await api("PATCH", `/api/conversations/${conv.id}`, { title });
        document.dispatchEvent(new CustomEvent("tandem:renamed", { detail: { id: conv.id, title } }));
      } catch (err) {
        toast(err.message, "error");
      }
    }
    refreshHistory();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); finish(true); }
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
}

export async function deleteConversation(conv) {
  const ok = await confirmDialog("Delete chat?", `"${conv.title || "New chat"}" will be deleted.`);
  if (!ok) return false;
  try {
    await api("DELETE", `/api/conversations/${conv.id}`);
  } catch (err) {
    toast(err.message, "error");
    return false;
  }
  toast("Chat deleted");
  refreshHistory();
  if (options.onDeleted) options.onDeleted(conv.id);
  return true;
}

const remove = deleteConversation;

let latest = 0;

export async function refreshHistory() {
  const q = search.value.trim();
  const ticket = ++latest;
  let convs;
  try {
    convs = await api("GET", `/api/conversations?limit=200${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  } catch (err) {
    if (ticket === latest) history.replaceChildren(el("p", { class: "history-empty" }, err.message));
    return;
  }
  if (ticket !== latest) return; // a newer search answered first
  const active = options.activeId();
  const groups = [];
  for (const conv of convs) {
    const label = formatDay(conv.updated_at);
    if (!groups.length || groups[groups.length - 1].label !== label) groups.push({ label, items: [] });
    groups[groups.length - 1].items.push(conv);
  }
  const nodes = groups.map(({ label, items }) =>
    el(
      "section",
      { class: "history-group" },
      el("h2", {}, label),
      items.map((conv) => {
        const row = el("div", { class: `history-item${conv.id === active ? " active" : ""}`, dataset: { id: conv.id } });
        const link = el("a", { href: `/c/${conv.id}`, title: conv.title || "New chat", "aria-current": conv.id === active ? "page" : null }, conv.title || "New chat");
        link.addEventListener("click", (e) => {
          if (!options.onOpen || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          closeSidebar();
          options.onOpen(conv.id);
        });
        const more = el("button", { type: "button", class: "icon-btn item-more", "aria-label": `Options for ${conv.title || "New chat"}`, "aria-haspopup": "menu" }, icon("more"));
        more.addEventListener("click", (e) => { e.stopPropagation(); itemMenu(conv, more, row); });
        row.append(link, more);
        return row;
      }),
    ),
  );
  if (!nodes.length) {
    nodes.push(el("p", { class: "history-empty" }, q ? "No chats match your search." : "Your chats will appear here."));
  }
  history.replaceChildren(...nodes);
}

export function markActive(id) {
  for (const row of history.querySelectorAll(".history-item")) {
    const on = row.dataset.id === id;
    row.classList.toggle("active", on);
    const link = row.querySelector("a");
    if (link) {
      if (on) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
}

export function initSidebar(opts = {}) {
  options = { ...options, ...opts };
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshHistory, 150);
  });
  document.getElementById("new-chat").addEventListener("click", (e) => {
    if (!options.onNew || e.metaKey || e.ctrlKey) return;
    e.preventDefault();
    closeSidebar();
    options.onNew();
  });
  document.getElementById("menu-btn")?.addEventListener("click", openSidebar);
  document.getElementById("sidebar-close").addEventListener("click", closeSidebar);
  document.getElementById("scrim").addEventListener("click", closeSidebar);
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await api("POST", "/api/auth/logout");
    } finally {
      location.assign("/login");
    }
  });
  document.addEventListener("click", (e) => {
    if (openMenu && !openMenu.contains(e.target)) closeMenu();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && openMenu) closeMenu();
  });
  refreshHistory();
}
