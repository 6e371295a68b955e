// A red-team item on /rate: the rater chats with the task's model, trying to make it break the
// item's rule. On the model turn that breaks it, "This breaks the rule" asks why and submits
// the conversation up to that turn as a finding, which the server adds to the regression suite;
// "No break found" submits without one. Model turns come from .../generate, which records them.
import { api, el, toast } from "./api.js";
import { turn } from "./rate_demo.js";

export function redTeam(view, id, submit) {
  const done = view.status === "submitted";
  const turns = done ? view.result.messages.map((m) => ({ ...m })) : [...view.prompt];
  const found = done ? view.result.finding : null;
  let claiming = -1; // the model turn whose "why" box is open
  let busy = false;
  const thread = el("div", { class: "thread" });
  const input = el("textarea", { "aria-label": "Your next message", placeholder: "Try a prompt…", maxlength: "20000", disabled: done });
  const send = el("button", { type: "button", class: "btn", disabled: done, onclick: () => say() }, "Send");
  const giveUp = el("button", { type: "button", class: "btn", disabled: done, onclick: () => submit({ messages: turns }) }, done ? "Submitted" : "No break found");

  function claimBox(k) {
    const why = el("textarea", { "aria-label": "How it breaks the rule", maxlength: "2000" });
    setTimeout(() => why.focus(), 0);
    return el("div", { class: "turn assistant editing" },
      el("div", { class: "who" }, "How does this answer break the rule?"), why,
      el("div", { class: "item-actions" },
        el("button", { type: "button", class: "btn", onclick: () => { claiming = -1; render(); } }, "Cancel"),
        el("button", { type: "button", class: "btn primary", onclick: async () => {
          if (!why.value.trim()) { toast("Say how it breaks the rule", "error"); return; }
          await submit({ messages: turns.slice(0, k + 1), finding_turn: k, explanation: why.value });
        } }, "Submit finding")));
  }

  function render() {
    const nodes = [];
    turns.forEach((t, k) => {
      const tools = [];
      if (found && found.turn === k) tools.push(el("span", { class: "badge off" }, "breaks the rule"));
      if (!done && t.role === "assistant" && k >= view.prompt.length) {
        tools.push(el("button", { type: "button", class: "btn small", disabled: busy, onclick: () => { claiming = k; render(); } }, "This breaks the rule"));
      }
      nodes.push(turn(t.role, t.content, ...tools));
      if (k === claiming) nodes.push(claimBox(k));
    });
    if (busy) nodes.push(el("p", { class: "muted small" }, "The model is writing…"));
    if (found) nodes.push(el("p", {}, `Why: ${found.explanation}`));
    thread.replaceChildren(...nodes);
    send.disabled = done || busy;
    giveUp.disabled = done || busy;
  }

  async function say() {
    const text = input.value.trim();
    if (!text) return;
    if (turns.length && turns[turns.length - 1].role === "user") { toast("Wait for the model's answer first", "error"); return; }
    turns.push({ role: "user", content: text });
    input.value = "";
    claiming = -1;
    busy = true;
    render();
    try {
      const reply = await api("POST", `/api/rater/assignments/${encodeURIComponent(id)}/generate`, { messages: turns });
      turns.push({ role: "assistant", content: reply.text });
    } catch (err) {
      turns.pop();
      toast(err.message, "error");
    } finally {
      busy = false;
      render();
    }
  }

  render();
  return [
    el("div", { class: "guideline rule" }, el("strong", {}, "Rule: "), view.rule),
    el("p", { class: "muted small" }, "Find a prompt on which the model breaks this rule. When an answer breaks it, mark that answer and say why."),
    thread,
    el("div", { class: "composer" }, input, el("div", { class: "item-actions" }, giveUp, send)),
  ];
}
