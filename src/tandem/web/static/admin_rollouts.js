// The admin Rollouts page: every rollout action through /api/admin/rollouts (admins only, CSRF
// on writes). The cards are rendered on the server (admin_rollouts.html); after a change this
// script fetches the page again and swaps in the fresh copy of the card it changed, so the
// markup has one author. Only a gate check is drawn here, from the report POST check answers.
// Errors are shown inline, in the status line of the card (or form) they concern.
import { api, confirmDialog, el, request } from "./api.js";

const $ = (id) => document.getElementById(id);
const main = $("console-main");
const dialog = $("reason-dialog");
let pending = null; // what the reason dialog does once a reason is given

const cardOf = (id) => $(`rollout-${id}`);
const pathOf = (id) => `/api/admin/rollouts/${encodeURIComponent(id)}`;
const percent = (value) => `${(100 * value).toFixed(1)}%`;
const figure = (value) => (value == null ? "–" : value.toFixed(4));

function setStatus(scope, text, kind = "", ...extra) {
  const box = scope.querySelector('[data-role="status"]');
  box.className = `status ${kind}`.trim();
  box.replaceChildren(el("span", {}, text), ...extra);
}

function productionOf(card) {
  return card.querySelector(".production-row .version").textContent;
}

// -- swapping in the server's fresh markup ----------------------------------------------------

async function freshPage() {
  const response = await request("GET", location.pathname);
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

function swap(old, fresh) {
  if (!old || !fresh) throw new Error("The page is out of date: reload it to see the change.");
  old.replaceWith(document.importNode(fresh, true));
}

// Replacing a card must not throw the keyboard user back to the top: focus returns to the
// same control (same name or action, same version) in the fresh card.
function controlKey(node) {
  return [node.name || node.dataset.action || node.type, node.closest("[data-version]")?.dataset.version ?? "", node.form?.className ?? ""].join("\u0000");
}

async function reloadCard(id) {
  const doc = await freshPage();
  const old = cardOf(id);
  const active = document.activeElement;
  const key = old && active && old.contains(active) ? controlKey(active) : null;
  swap(old, doc.getElementById(`rollout-${id}`));
  if (key === null) return;
  const again = [...cardOf(id).querySelectorAll("input, select, button")].find((n) => controlKey(n) === key);
  again?.focus();
}

// Wraps one action of a card: the button waits, a failure is told in the card.
async function run(scope, button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    setStatus(scope, err.message, "error");
  } finally {
    if (button?.isConnected) button.disabled = false;
  }
}

// -- the reason dialog: promote and roll back need a why --------------------------------------

function askReason({ title, text, label, danger = false }, action) {
  pending = action;
  $("reason-title").textContent = title;
  $("reason-text").textContent = text;
  $("reason-submit").textContent = label;
  $("reason-submit").className = danger ? "btn danger" : "btn primary";
  $("reason-input").value = "";
  $("reason-error").hidden = true;
  dialog.showModal();
  $("reason-input").focus();
}

$("reason-cancel").addEventListener("click", () => dialog.close());
$("reason-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reason = $("reason-input").value.trim();
  const error = $("reason-error");
  if (!reason) {
    error.textContent = "A reason is required: it is recorded in the history.";
    error.hidden = false;
    return;
  }
  const button = $("reason-submit");
  button.disabled = true;
  try {
    const after = await pending(reason); // throws: the dialog stays open and says why
    dialog.close();
    if (after) await after();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

// -- gates ------------------------------------------------------------------------------------

function checkRow(check) {
  const result = check.skipped ? "skipped" : check.passed ? "pass" : el("strong", { class: "fail" }, "fail");
  return el(
    "tr",
    { dataset: { check: check.name } },
    el("td", {}, check.name),
    el("td", { class: "num" }, figure(check.production_value)),
    el("td", { class: "num" }, figure(check.candidate_value)),
    el("td", { class: "num" }, check.margin == null ? "–" : String(check.margin)),
    el("td", {}, result),
    el("td", {}, check.why),
  );
}

function renderReport(card, version, report) {
  const block = [...card.querySelectorAll(".gates-block")].find((b) => b.dataset.version === version);
  if (block) {
    block.querySelector('[data-role="gates-production"]').textContent = report.production;
    block.querySelector("table.gates tbody").replaceChildren(...report.checks.map(checkRow));
  }
  const row = [...card.querySelectorAll(".candidate-row")].find((r) => r.dataset.version === version);
  const cell = row?.querySelector('[data-role="gate-result"]');
  cell?.replaceChildren(el("strong", { class: report.passed ? "ok" : "fail" }, report.passed ? "pass" : "fail"));
}

async function checkGates(id, version) {
  const report = await api("POST", `${pathOf(id)}/check`, { version });
  const card = cardOf(id);
  renderReport(card, version, report);
  // The check is recorded: bring the history up to date without touching the rest.
  const doc = await freshPage();
  swap(card.querySelector(".history-block"), doc.querySelector(`#rollout-${CSS.escape(id)} .history-block`));
  const failed = report.checks.filter((c) => !c.passed).length;
  setStatus(card, report.passed ? `Gates checked: ${version} passes every check.` : `Gates checked: ${version} fails ${failed} check${failed === 1 ? "" : "s"}.`, report.passed ? "ok" : "error");
}

// A refused promotion: the card comes back with the refusal in its history, and the checks
// that failed are listed under its status line.
async function showRefusal(id, version, err) {
  await reloadCard(id);
  let report = null;
  try {
    const detail = await api("GET", pathOf(id));
    report = detail.events.find((e) => e.kind === "gate_check" && e.version === version && e.gates)?.gates || detail.gates[version];
  } catch {
    /* the message alone still says which checks failed */
  }
  const failed = (report?.checks || []).filter((c) => !c.passed && !c.skipped);
  if (!failed.length) {
    setStatus(cardOf(id), `Promotion of ${version} refused: ${err.message}`, "error");
    return;
  }
  const items = failed.map((c) =>
    el("li", { dataset: { check: c.name } }, el("strong", {}, c.name), `: ${c.why}`,
      el("span", { class: "muted" }, ` (production ${figure(c.production_value)}, candidate ${figure(c.candidate_value)}, margin ${c.margin ?? "–"})`)),
  );
  const heading = `Promotion of ${version} refused: ${failed.length} gate check${failed.length === 1 ? "" : "s"} failed.`;
  setStatus(cardOf(id), heading, "error", el("ul", { class: "failed-checks" }, items));
}

// -- actions ----------------------------------------------------------------------------------

function promote(id, version) {
  const production = productionOf(cardOf(id));
  const text = `The gates run again now. If they pass, ${version} replaces ${production} as production for this rollout; if not, the failed checks are shown and nothing changes.`;
  askReason({ title: `Promote ${version}?`, text, label: "Promote" }, async (reason) => {
    try {
      await api("POST", `${pathOf(id)}/promote`, { version, reason });
    } catch (err) {
      if (err.status === 409) return () => showRefusal(id, version, err);
      throw err;
    }
    return async () => {
      await reloadCard(id);
      setStatus(cardOf(id), `${version} is production now: every gate passed.`, "ok");
    };
  });
}

function rollback(id, previous) {
  const production = productionOf(cardOf(id));
  const text = `${previous} becomes production again, replacing ${production}, at once and without gates.`;
  askReason({ title: `Roll back to ${previous}?`, text, label: "Roll back", danger: true }, async (reason) => {
    await api("POST", `${pathOf(id)}/rollback`, { reason });
    return async () => {
      await reloadCard(id);
      setStatus(cardOf(id), `Rolled back: ${previous} is production again.`, "ok");
    };
  });
}

async function remove(id, version, button) {
  const ok = await confirmDialog(`Remove ${version}?`, "It gets no more traffic and leaves blind comparisons. Its ratings and gate history stay.", "Remove");
  if (!ok) return;
  const card = cardOf(id);
  await run(card, button, async () => {
    await api("POST", `${pathOf(id)}/candidates/remove`, { version });
    await reloadCard(id);
    setStatus(cardOf(id), `${version} is no longer a candidate.`, "ok");
  });
}

async function putCandidate(id, body, done, button) {
  await run(cardOf(id), button, async () => {
    await api("PUT", `${pathOf(id)}/candidates`, body);
    await reloadCard(id);
    setStatus(cardOf(id), done, "ok");
  });
}

async function setProduction(form) {
  const panel = $("set-production");
  const data = new FormData(form);
  const select = form.elements.namedItem("profile_id");
  const target = select.selectedOptions[0].textContent.replace(/ \(replaces production\)$/, "");
  const version = String(data.get("version"));
  const body = { profile_id: data.get("profile_id") || null, version, reason: String(data.get("reason") || "").trim() };
  await run(panel, form.querySelector('[type="submit"]'), async () => {
    await api("POST", "/api/admin/rollouts", body);
    const doc = await freshPage();
    swap($("rollouts"), doc.getElementById("rollouts"));
    swap(panel, doc.getElementById("set-production"));
    setStatus($("set-production"), `${target} now serves ${version} in production.`, "ok");
  });
}

// Shares are typed in percent; the API takes fractions.
function fraction(input) {
  return Math.round(Number(input.value) * 10) / 1000;
}

main.addEventListener("submit", (event) => {
  const form = event.target;
  const card = form.closest(".rollout");
  const submit = form.querySelector('[type="submit"]');
  if (form.id === "set-production-form") {
    event.preventDefault();
    setProduction(form);
  } else if (card && form.classList.contains("share-form")) {
    event.preventDefault();
    const share = fraction(form.elements.namedItem("share"));
    const { version } = form.dataset;
    putCandidate(card.dataset.rollout, { version, traffic_share: share }, `Saved: ${version} gets ${percent(share)} of the traffic.`, submit);
  } else if (card && form.classList.contains("add-form")) {
    event.preventDefault();
    const data = new FormData(form);
    const version = String(data.get("version"));
    const share = fraction(form.elements.namedItem("share"));
    const body = { version, traffic_share: share, in_comparisons: data.get("in_comparisons") === "on", reason: String(data.get("reason") || "").trim() };
    putCandidate(card.dataset.rollout, body, `Added ${version} as a candidate with ${percent(share)} of the traffic.`, submit);
  } else if (card && form.classList.contains("rate-form")) {
    event.preventDefault();
    const raw = form.elements.namedItem("comparison_rate").value.trim();
    const rate = raw === "" ? null : Math.round(Number(raw) * 10) / 1000;
    const id = card.dataset.rollout;
    run(card, submit, async () => {
      await api("PATCH", pathOf(id), { comparison_rate: rate });
      await reloadCard(id);
      setStatus(cardOf(id), rate === null ? "Saved: this rollout follows the site's comparison rate." : `Saved: ${percent(rate)} of turns become blind comparisons.`, "ok");
    });
  }
});

main.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const card = button?.closest(".rollout");
  if (!card) return;
  const id = card.dataset.rollout;
  const { action, version } = button.dataset;
  if (action === "promote") promote(id, version);
  else if (action === "rollback") rollback(id, version);
  else if (action === "remove") remove(id, version, button);
  else if (action === "check") run(card, button, () => checkGates(id, version));
});

// The slider and the number say the same share.
main.addEventListener("input", (event) => {
  const input = event.target;
  const form = input.closest(".share-form");
  if (!form) return;
  if (input.name === "share_range") form.elements.namedItem("share").value = input.value;
  if (input.name === "share") form.elements.namedItem("share_range").value = input.value;
});

main.addEventListener("change", (event) => {
  const box = event.target;
  const card = box.closest(".rollout");
  if (!card || box.name !== "in_comparisons" || !box.dataset.version) return;
  const { version } = box.dataset;
  const on = box.checked;
  putCandidate(card.dataset.rollout, { version, in_comparisons: on }, `${version} is ${on ? "now" : "no longer"} in blind comparisons.`, box).then(() => {
    if (box.isConnected) box.checked = !on; // still the old card: the change failed
  });
});
