// The profiles page: my profiles and the ones shared with me; create, edit, delete, and start
// a chat with one (its starters then appear in the empty chat).
import { api, confirmDialog, el, request, toast } from "./api.js";
import { icon } from "./icons.js";
import { initSidebar } from "./sidebar.js";

const grid = document.getElementById("profiles");
const dialog = document.getElementById("profile-dialog");
const form = document.getElementById("profile-form");
const error = document.getElementById("profile-error");
let editing = null;
let knowledge = []; // the editor's knowledge files: [{id, filename, status}]
const knowledgeList = document.getElementById("knowledge-list");
const knowledgeInput = document.getElementById("knowledge-input");

function renderKnowledge() {
  knowledgeList.replaceChildren(
    ...knowledge.map((f) =>
      el("li", {}, el("span", {}, f.filename || f.id), el("span", { class: "muted small" }, ` ${f.status || ""}`),
        el("button", { type: "button", class: "icon-btn", "aria-label": `Remove ${f.filename || "file"}`, onclick: () => {
          knowledge = knowledge.filter((k) => k !== f);
          renderKnowledge();
        } }, icon("x")))),
  );
}

async function loadKnowledge(ids) {
  knowledge = await Promise.all(ids.map((id) => api("GET", `/api/files/${encodeURIComponent(id)}`).catch(() => ({ id, filename: "(unavailable)", status: "" }))));
  renderKnowledge();
}

// Knowledge files are the profile owner's uploads, not tied to a chat.
knowledgeInput.addEventListener("change", async () => {
  for (const file of knowledgeInput.files) {
    const data = new FormData();
    data.append("file", file, file.name);
    try {
      const response = await request("POST", "/api/files", { body: data });
      knowledge.push(await response.json());
      renderKnowledge();
    } catch (err) {
      toast(`${file.name}: ${err.message}`, "error");
    }
  }
  knowledgeInput.value = "";
});

async function startChat(profile) {
  try {
    const conv = await api("POST", "/api/conversations", { profile_id: profile.id });
    location.assign(`/c/${conv.id}`);
  } catch (err) {
    toast(err.message, "error");
  }
}

function card(p) {
  const tags = [p.shared ? el("span", { class: "tag" }, "Shared") : null, p.is_mine ? null : el("span", { class: "tag" }, "Shared with you")];
  return el(
    "article",
    { class: "profile-card", dataset: { id: p.id }, "aria-label": p.name },
    el("h3", {}, el("span", { class: "profile-icon", "aria-hidden": "true" }, p.name.slice(0, 1).toUpperCase()), el("span", {}, p.name), ...tags),
    el("p", {}, p.description || p.instructions.slice(0, 140) || "No description."),
    p.model_version ? el("span", { class: "muted small" }, p.model_version) : null,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "btn primary", onclick: () => startChat(p) }, "Start chat"),
      p.is_mine ? el("button", { type: "button", class: "icon-btn", "aria-label": `Edit ${p.name}`, onclick: () => openEditor(p) }, icon("pencil")) : null,
      p.is_mine
        ? el("button", { type: "button", class: "icon-btn", "aria-label": `Delete ${p.name}`, onclick: async () => {
            if (!(await confirmDialog("Delete profile?", `"${p.name}" will be deleted. Chats that used it keep their messages.`))) return;
            try {
              await api("DELETE", `/api/profiles/${p.id}`);
              toast("Profile deleted");
              load();
            } catch (err) {
              toast(err.message, "error");
            }
          } }, icon("trash"))
        : null,
    ),
  );
}

async function load() {
  try {
    const profiles = await api("GET", "/api/profiles");
    grid.replaceChildren(
      ...(profiles.length
        ? profiles.map(card)
        : [el("p", { class: "muted" }, "No profiles yet. Create one to give the assistant a role, instructions and starters.")]),
    );
  } catch (err) {
    grid.replaceChildren(el("p", { class: "error-text" }, err.message));
  }
}

async function loadModels() {
  const select = form.elements.model_version;
  try {
    const body = await api("GET", "/v1/models");
    for (const m of body.data) select.append(el("option", { value: m.id }, m.id));
  } catch {
    /* the default model still works */
  }
}

function openEditor(p = null) {
  editing = p;
  form.reset();
  error.hidden = true;
  document.getElementById("profile-dialog-title").textContent = p ? `Edit ${p.name}` : "New profile";
  if (p) {
    form.elements.name.value = p.name;
    form.elements.description.value = p.description;
    form.elements.instructions.value = p.instructions;
    form.elements.starters.value = p.starters.join("\n");
    form.elements.model_version.value = p.model_version || "";
    for (const k of ["temperature", "top_p", "max_tokens"]) form.elements[k].value = p.sampling?.[k] ?? "";
    form.elements.shared.checked = p.shared;
  }
  const tools = new Set(p?.tools || []);
  for (const box of form.querySelectorAll("input[name=tool]")) box.checked = tools.has(box.value);
  knowledge = [];
  renderKnowledge();
  if (p?.knowledge_file_ids?.length) loadKnowledge(p.knowledge_file_ids);
  dialog.showModal();
  form.elements.name.focus();
}

function number(name) {
  const v = form.elements[name].value.trim();
  return v === "" ? undefined : Number(v);
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const starters = form.elements.starters.value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (starters.length > 10) {
    error.textContent = "At most 10 conversation starters.";
    error.hidden = false;
    return;
  }
  const sampling = {};
  for (const k of ["temperature", "top_p", "max_tokens"]) {
    const v = number(k);
    if (v !== undefined) sampling[k] = v;
  }
  const body = {
    name: form.elements.name.value.trim(),
    description: form.elements.description.value.trim(),
    instructions: form.elements.instructions.value.trim(),
    starters,
    model_version: form.elements.model_version.value || null,
    sampling,
    shared: form.elements.shared.checked,
    tools: [...form.querySelectorAll("input[name=tool]:checked")].map((box) => box.value),
    knowledge_file_ids: knowledge.map((f) => f.id),
  };
  if (!body.name) {
    error.textContent = "Give the profile a name.";
    error.hidden = false;
    return;
  }
  try {
    if (editing) await api("PATCH", `/api/profiles/${editing.id}`, body);
    else await api("POST", "/api/profiles", body);
    dialog.close();
    toast(editing ? "Profile saved" : "Profile created");
    load();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

document.getElementById("profile-cancel").addEventListener("click", () => dialog.close());
document.getElementById("new-profile").addEventListener("click", () => openEditor());

initSidebar();
loadModels();
load();
