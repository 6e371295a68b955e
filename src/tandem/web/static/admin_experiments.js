// The admin Experiments page: define an experiment, start and stop it, through
// /api/admin/experiments (admins only, CSRF on writes). The cards are rendered on the server
// (admin_experiments.html); after a change, and every 15 s while an experiment runs, this
// script fetches the page again and swaps in its fresh list, so the markup has one author.
// Errors are shown inline, in the status line of the form or card they concern.
import { api, el, request } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("experiment-form");
const rows = $("variant-rows");
const template = $("variant-template");
const MAX = Number(rows.dataset.max) || 8;
const MIN = 2;
const LIVE_MS = 15000;

function setStatus(scope, text, kind = "") {
  const box = scope.querySelector('[data-role="status"]');
  box.className = `status ${kind}`.trim();
  box.replaceChildren(el("span", {}, text));
}

// -- the variant rows of the form -------------------------------------------------------------

const variantRows = () => [...rows.querySelectorAll(".variant-row")];

function showKind(row) {
  const kind = row.querySelector('[name="variant_kind"]').value;
  for (const label of row.querySelectorAll("label[data-for]")) label.hidden = label.dataset.for !== kind;
}

function updateButtons() {
  const all = variantRows();
  for (const button of rows.querySelectorAll('[data-action="remove-variant"]')) button.disabled = all.length <= MIN;
  $("add-variant").disabled = all.length >= MAX;
}

function addVariant() {
  const row = template.content.firstElementChild.cloneNode(true);
  const n = variantRows().length + 1;
  for (const field of row.querySelectorAll("input, select, textarea")) field.setAttribute("aria-label", `Variant ${n}: ${field.closest("label").firstChild.textContent.trim()}`);
  rows.append(row);
  showKind(row);
  updateButtons();
  return row;
}

function resetVariants() {
  for (const row of variantRows()) row.remove();
  addVariant();
  addVariant();
}

rows.addEventListener("change", (event) => {
  if (event.target.name === "variant_kind") showKind(event.target.closest(".variant-row"));
});
rows.addEventListener("click", (event) => {
  const button = event.target.closest('[data-action="remove-variant"]');
  if (!button || variantRows().length <= MIN) return;
  button.closest(".variant-row").remove();
  updateButtons();
});
$("add-variant").addEventListener("click", () => addVariant().querySelector("input")?.focus());

function variantsOf() {
  return variantRows().map((row) => {
    const get = (name) => row.querySelector(`[name="${name}"]`).value;
    const kind = get("variant_kind");
    const variant = { name: get("variant_name").trim(), kind };
    if (kind === "system_prompt") variant.prompt_addition = get("prompt_addition");
    else variant.model_version = get("model_version");
    return variant;
  });
}

// -- swapping in the server's fresh list ------------------------------------------------------

let busy = false;

async function reloadList() {
  const response = await request("GET", location.pathname);
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = doc.getElementById("experiments");
  if (!fresh) throw new Error("The page is out of date: reload it to see the change.");
  $("experiments").replaceWith(document.importNode(fresh, true));
  wireList();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const panel = $("new-experiment");
  const button = form.querySelector('button[type="submit"]');
  const body = {
    name: $("ex-name").value.trim(),
    hypothesis: $("ex-hypothesis").value.trim(),
    profile_id: $("ex-profile").value || null,
    comparison_rate: Number($("ex-rate").value) / 100,
    variants: variantsOf(),
  };
  button.disabled = true;
  busy = true;
  try {
    const created = await api("POST", "/api/admin/experiments", body);
    form.reset();
    resetVariants();
    await reloadList();
    setStatus(panel, `Created “${created.name}” as a draft: start it on its card.`, "ok");
  } catch (err) {
    setStatus(panel, err.message, "error");
  } finally {
    button.disabled = false;
    busy = false;
  }
});

// -- start and stop on a card -----------------------------------------------------------------

async function act(card, button, action) {
  button.disabled = true;
  busy = true;
  try {
    await api("POST", `/api/admin/experiments/${encodeURIComponent(card.dataset.experiment)}/${action}`);
    await reloadList();
    const again = $(card.id);
    again?.querySelector("[data-action]")?.focus();
  } catch (err) {
    setStatus(card, err.message, "error");
    if (button.isConnected) button.disabled = false;
  } finally {
    busy = false;
  }
}

let timer = null;

function wireList() {
  const list = $("experiments");
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const card = button?.closest("[data-experiment]");
    if (card) act(card, button, button.dataset.action);
  });
  // While an experiment runs its result is live: refreshed every 15 s (skipped while the tab
  // is hidden or a change is under way).
  clearInterval(timer);
  timer = list.dataset.live
    ? setInterval(() => {
        if (!busy && document.visibilityState === "visible") reloadList().catch(() => {});
      }, LIVE_MS)
    : null;
}

resetVariants();
wireList();
