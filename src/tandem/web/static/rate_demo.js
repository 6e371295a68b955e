// A demonstration on /rate: the rater chats with the task's model; every model turn has
// "Rewrite this answer" (edit it, or clear it and write it from scratch) before the chat goes
// on, and Submit sends the whole conversation, which becomes one SFT row. The model's turns
// come from POST /api/rater/assignments/{id}/generate, which keeps a record of each.
import { api, el, toast } from "./api.js";

export function turn(role, text, ...tools) {
  return el("div", { class: `turn ${role}` },
    el("div", { class: "who" }, role === "assistant" ? "Model" : role === "user" ? "User" : "System", el("span", { class: "spacer" }), ...tools),
    el("div", { class: "text" }, text));
}

export function demonstration(view, id, submit) {
  const prompt = view.prompt;
  const done = view.status === "submitted";
  // The turns after the item's prompt: {role, content, rewritten}.
  const turns = done
    ? view.result.messages.slice(prompt.length).map((m, k) => ({ ...m, rewritten: view.result.rewritten.includes(prompt.length + k) }))
    : [];
  let editing = -1; // the turn whose rewrite box is open
  let busy = false;
  const thread = el("div", { class: "thread" });
  const input = el("textarea", { "aria-label": "Your next message", placeholder: "Your next message…", maxlength: "20000", disabled: done });
  const send = el("button", { type: "button", class: "btn", disabled: done, onclick: () => say() }, "Send");
  const finish = el("button", { type: "button", class: "btn primary", disabled: done, onclick: () => finishUp() }, done ? "Submitted" : "Submit conversation");

  function rewriteBox(k) {
    const box = el("textarea", { "aria-label": "Rewritten answer", maxlength: "20000" });
    box.value = turns[k].content;
    const save = el("button", { type: "button", class: "btn primary", onclick: () => {
      if (!box.value.trim()) { toast("Write the answer first", "error"); return; }
      if (box.value !== turns[k].content) turns[k] = { role: "assistant", content: box.value, rewritten: true };
      editing = -1;
      render();
    } }, "Save answer");
    const cancel = el("button", { type: "button", class: "btn", onclick: () => { editing = -1; render(); } }, "Cancel");
    setTimeout(() => box.focus(), 0);
    return el("div", { class: "turn assistant editing" }, el("div", { class: "who" }, "Your answer"), box, el("div", { class: "item-actions" }, cancel, save));
  }

  function render() {
    const nodes = prompt.map((m) => turn(m.role, m.content));
    turns.forEach((t, k) => {
      if (k === editing) { nodes.push(rewriteBox(k)); return; }
      const tools = [];
      if (t.role === "assistant") {
        if (t.rewritten) tools.push(el("span", { class: "badge on" }, "rewritten"));
        if (!done) tools.push(el("button", { type: "button", class: "btn small", disabled: busy, onclick: () => { editing = k; render(); } }, "Rewrite this answer"));
      }
      nodes.push(turn(t.role, t.content, ...tools));
    });
    if (busy) nodes.push(el("p", { class: "muted small" }, "The model is writing…"));
    thread.replaceChildren(...nodes);
    send.disabled = done || busy || editing >= 0;
    finish.disabled = done || busy || editing >= 0 || !turns.length || turns[turns.length - 1].role !== "assistant";
  }

  const messages = () => [...prompt, ...turns.map((t) => ({ role: t.role, content: t.content }))];

  async function generate() {
    busy = true;
    render();
    try {
      const reply = await api("POST", `/api/rater/assignments/${encodeURIComponent(id)}/generate`, { messages: messages() });
      turns.push({ role: "assistant", content: reply.text, rewritten: false });
    } catch (err) {
      toast(err.message, "error");
    } finally {
      busy = false;
      render();
    }
  }

  async function say() {
    const text = input.value.trim();
    if (!text) return;
    if (!turns.length || turns[turns.length - 1].role !== "assistant") { toast("Wait for the model's answer first", "error"); return; }
    turns.push({ role: "user", content: text, rewritten: false });
    input.value = "";
    await generate();
  }

  async function finishUp() {
    finish.disabled = true;
    await submit({ messages: messages() });
  }

  render();
  if (!done) generate(); // the model answers the item's prompt first
  return [
    el("p", { class: "muted small" }, "Chat with the model. Where its answer is not what it should be, rewrite it before going on; then submit."),
    thread,
    el("div", { class: "composer" }, input, el("div", { class: "item-actions" }, send, finish)),
  ];
}
