// The composer: the message box and what goes with a message (images, documents, the tool
// switches), voice, and the two ways to send it: one answer, or two to compare blind.
import { api, el, request, toast } from "./api.js";
import { icon } from "./icons.js";
import {
  DOCUMENT_TYPES, documentChip, isDocument, listDocuments, removeDocument, toolSwitches, uploadDocument, watchDocument,
} from "./tools.js";
import { initVoice } from "./voice.js";
import { chosenModel, modelSeesImages, picker } from "./chat_models.js";
import { state } from "./chat_state.js";
import { runStream } from "./chat_stream.js";
import { updateChrome } from "./chat_thread.js";
import { ensureConversation } from "./chat_tree.js";

const input = document.getElementById("input");
const composer = document.getElementById("composer");
const sendBtn = document.getElementById("send-btn");
const compareBtn = document.getElementById("compare-btn");
const attachBox = document.getElementById("attachments");
const fileInput = document.getElementById("file-input");

export function focusInput(options) {
  input.focus(options);
}

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
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

// -- sending ----------------------------------------------------------------------------------

export async function send(text, attachments = []) {
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

// Two answers side by side, blind: to the composer's text (`content`), or again to the
// question `parentId` already asked.
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

export function compareAgain(answer) {
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
document.addEventListener("click", (e) => {
  if (compareMenu && !compareMenu.contains(e.target)) closeCompareMenu();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeCompareMenu();
});

// -- attachments and tools --------------------------------------------------------------------

const switches = toolSwitches(state.tools);
document.querySelector(".composer-tools").append(switches);
fileInput.setAttribute("accept", `image/*,${DOCUMENT_TYPES}`);

export async function loadTools() {
  try {
    switches.offer((await api("GET", "/api/tools")).map((t) => t.name));
  } catch {
    switches.offer([]);
  }
}

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

export async function loadDocuments(convId) {
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

// A new chat starts with no documents and every tool off.
export function forgetDocuments() {
  state.documents = [];
  state.tools.clear();
  switches.refresh();
  renderAttachments();
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

// Another model may not see the images already attached: the warning follows the picker.
picker.addEventListener("change", renderAttachments);
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

// -- voice ------------------------------------------------------------------------------------
// Dictation, reading aloud and hands-free voice mode run on tandem's server (voice.js).

const voice = initVoice({
  micBtn: document.getElementById("mic-btn"),
  voiceBtn: document.getElementById("voice-btn"),
  statusEl: document.getElementById("voice-status"),
  input,
  send: (text) => send(text),
});

export function readAloud(text, button) {
  voice.readAloud(text, button);
}

// -- typing -----------------------------------------------------------------------------------

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
