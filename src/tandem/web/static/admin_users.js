// The admin users page: list every account; disable or enable one, make or unmake an admin or a rater,
// set a temporary password. Everything goes through /api/users (admins only, CSRF on writes);
// the server refuses an admin's change to their own account, and its message is shown as is.
import { api, confirmDialog, el, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const table = $("users");
const me = table.dataset.me;
const dialog = $("reset-dialog");
let resetting = null; // the user whose password the dialog sets

function day(iso) {
  return new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

async function change(user, patch, done) {
  try {
    await api("PATCH", `/api/users/${encodeURIComponent(user.id)}`, patch);
    toast(done);
  } catch (err) {
    toast(err.message, "error");
  }
  await load();
}

async function toggleDisabled(user) {
  if (!user.is_disabled) {
    const ok = await confirmDialog(`Disable ${user.email}?`, "They are signed out at once, and can't sign in or use their API keys until you enable the account again.", "Disable");
    if (!ok) return;
  }
  await change(user, { is_disabled: !user.is_disabled }, user.is_disabled ? `${user.email} enabled` : `${user.email} disabled`);
}

async function toggleAdmin(user) {
  if (!user.is_admin) {
    const ok = await confirmDialog(`Make ${user.email} an admin?`, "Admins see every user's signals, build datasets, train and roll out models, and manage accounts.", "Make admin", false);
    if (!ok) return;
  }
  await change(user, { is_admin: !user.is_admin }, user.is_admin ? `${user.email} is no longer an admin` : `${user.email} is now an admin`);
}

async function toggleRater(user) {
  await change(user, { is_rater: !user.is_rater }, user.is_rater ? `${user.email} is no longer a rater` : `${user.email} is now a rater`);
}

function openReset(user) {
  resetting = user;
  $("reset-email").textContent = user.email;
  $("reset-password").value = "";
  $("reset-error").hidden = true;
  dialog.showModal();
  $("reset-password").focus();
}

// A readable temporary password: 4 groups of 4 from an alphabet without look-alikes (~75 bits).
function generatePassword() {
  const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const chars = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
  return chars.match(/.{4}/g).join("-");
}

$("reset-generate").addEventListener("click", () => {
  $("reset-password").value = generatePassword();
  $("reset-password").select();
});
$("reset-cancel").addEventListener("click", () => dialog.close());
$("reset-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = $("reset-submit");
  button.disabled = true;
  try {
    await api("POST", `/api/users/${encodeURIComponent(resetting.id)}/password`, { new_password: $("reset-password").value });
    dialog.close();
    toast(`Password reset for ${resetting.email}; their sessions ended`);
  } catch (err) {
    $("reset-error").textContent = err.message;
    $("reset-error").hidden = false;
  } finally {
    button.disabled = false;
  }
});

function row(user) {
  const self = user.id === me;
  const actions = el("div", { class: "user-actions" },
    el("button", { type: "button", class: user.is_disabled ? "btn" : "btn danger-outline", "data-action": "disable", disabled: self && !user.is_disabled,
      title: self ? "You can't disable your own account" : undefined, onclick: () => toggleDisabled(user) },
      user.is_disabled ? "Enable" : "Disable"),
    el("button", { type: "button", class: "btn", "data-action": "admin", disabled: self && user.is_admin,
      title: self ? "You can't remove your own admin role" : undefined, onclick: () => toggleAdmin(user) },
      user.is_admin ? "Remove admin" : "Make admin"),
    el("button", { type: "button", class: "btn", "data-action": "rater", "aria-pressed": user.is_rater ? "true" : "false",
      title: "Raters get a queue of rater tasks at /rate", onclick: () => toggleRater(user) },
      user.is_rater ? "Remove rater" : "Make rater"),
    el("button", { type: "button", class: "btn", "data-action": "reset", disabled: self,
      title: self ? "Change your own password in Settings" : undefined, onclick: () => openReset(user) }, "Reset password"));
  return el("tr", { class: [self ? "is-me" : "", user.is_disabled ? "disabled" : ""].join(" ").trim(), dataset: { email: user.email, id: user.id } },
    el("td", { class: "email" }, user.email),
    el("td", {}, user.display_name),
    el("td", {}, user.is_admin ? el("span", { class: "badge on" }, "admin") : "user",
      user.is_rater ? el("span", { class: "badge on rater" }, "rater") : ""),
    el("td", {}, user.is_disabled ? el("span", { class: "badge off" }, "disabled") : "active"),
    el("td", { class: "num" }, day(user.created_at)),
    el("td", {}, actions));
}

async function load() {
  const body = table.tBodies[0];
  try {
    const users = await api("GET", "/api/users");
    body.replaceChildren(...users.map(row));
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, `Couldn't load users: ${err.message}`)));
  }
}

load();
