// The settings page: custom instructions, memory, privacy, API keys, account, administration.
// Each section loads and saves on its own, so one failing endpoint leaves the rest usable.
import { api, confirmDialog, copyText, el, toast } from "./api.js";
import { icon } from "./icons.js";
import { initSidebar } from "./sidebar.js";

const $ = (id) => document.getElementById(id);
const isAdmin = $("app").dataset.isAdmin === "true";

async function saving(button, work, done = "Saved") {
  button.disabled = true;
  try {
    await work();
    toast(done);
  } catch (err) {
    toast(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

// -- custom instructions ----------------------------------------------------------------------

// Controls start disabled and are enabled once their saved values have arrived: a switch
// flipped (or a field saved) before that would write the blank form over the user's settings.
function enable(...ids) {
  for (const id of ids) $(id).disabled = false;
}

async function loadInstructions() {
  const ci = await api("GET", "/api/custom-instructions");
  $("ci-about").value = ci.about_user;
  $("ci-style").value = ci.response_style;
  $("ci-enabled").checked = ci.enabled;
  enable("ci-about", "ci-style", "ci-enabled", "ci-save");
}

function saveInstructions() {
  return api("PUT", "/api/custom-instructions", {
    about_user: $("ci-about").value.trim(),
    response_style: $("ci-style").value.trim(),
    enabled: $("ci-enabled").checked,
  });
}

$("ci-save").addEventListener("click", (e) => saving(e.currentTarget, saveInstructions, "Custom instructions saved"));
$("ci-enabled").addEventListener("change", (e) => {
  saveInstructions()
    .then(() => toast(e.target.checked ? "Custom instructions on" : "Custom instructions off"))
    .catch((err) => { e.target.checked = !e.target.checked; toast(err.message, "error"); });
});

// -- memory -----------------------------------------------------------------------------------

function memoryRow(m) {
  const text = el("span", { class: "grow" }, m.text);
  const row = el("li", { dataset: { id: m.id } }, text);
  const edit = el("button", { type: "button", class: "icon-btn", "aria-label": `Edit memory: ${m.text}`, onclick: () => {
    const field = el("input", { class: "edit-inline", maxlength: 1000, "aria-label": "Memory text", value: m.text });
    text.replaceWith(field);
    field.focus();
    const finish = async (save) => {
      field.disabled = true;
      if (save && field.value.trim() && field.value.trim() !== m.text) {
        try {
          await api("PATCH", `/api/memories/${m.id}`, { text: field.value.trim() });
          toast("Memory updated");
        } catch (err) {
          toast(err.message, "error");
        }
      }
      loadMemories();
    };
    field.addEventListener("keydown", (e) => {
      if (e.key === "Enter") finish(true);
      if (e.key === "Escape") finish(false);
    });
    field.addEventListener("blur", () => finish(true), { once: true });
  } }, icon("pencil"));
  const del = el("button", { type: "button", class: "icon-btn", "aria-label": `Delete memory: ${m.text}`, onclick: async () => {
    try {
      await api("DELETE", `/api/memories/${m.id}`);
      toast("Memory deleted");
      loadMemories();
    } catch (err) {
      toast(err.message, "error");
    }
  } }, icon("trash"));
  row.append(edit, del);
  return row;
}

async function loadMemories() {
  const list = $("mem-list");
  try {
    const memories = await api("GET", "/api/memories");
    list.replaceChildren(...(memories.length ? memories.map(memoryRow) : [el("li", { class: "list-empty" }, "Nothing remembered yet.")]));
  } catch (err) {
    list.replaceChildren(el("li", { class: "list-empty" }, err.status === 404 ? "Memory is not available on this server." : err.message));
  }
}

$("mem-add").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("mem-new").value.trim();
  if (!text) return;
  try {
    await api("POST", "/api/memories", { text });
    $("mem-new").value = "";
    toast("Memory added");
    loadMemories();
  } catch (err) {
    toast(err.message, "error");
  }
});

function meSwitch(id, field, on, off) {
  $(id).addEventListener("change", async (e) => {
    try {
      await api("PATCH", "/api/auth/me", { [field]: e.target.checked });
      toast(e.target.checked ? on : off);
    } catch (err) {
      e.target.checked = !e.target.checked;
      toast(err.message, "error");
    }
  });
}

meSwitch("mem-enabled", "memory_enabled", "Memory on", "Memory off: chats won't use or save memories");
meSwitch("use-for-training", "use_for_training", "Your conversations may help improve the model", "Your conversations won't be used for training");

// -- privacy ----------------------------------------------------------------------------------

$("delete-data").addEventListener("click", async () => {
  const ok = await confirmDialog(
    "Delete all your data?",
    "Your chats, ratings, comparisons, improved answers, memories and images will be deleted. This cannot be undone. Your account stays.",
    "Delete my data",
  );
  if (!ok) return;
  try {
    const result = await api("DELETE", "/api/auth/me/data");
    const n = result?.deleted?.conversations ?? 0;
    toast(`Deleted ${n} chat${n === 1 ? "" : "s"} and everything in them`);
    loadMemories();
    document.dispatchEvent(new Event("tandem:data-deleted"));
  } catch (err) {
    toast(err.message, "error");
  }
});

// -- API keys ---------------------------------------------------------------------------------

async function loadKeys() {
  const list = $("key-list");
  try {
    const keys = (await api("GET", "/api/keys")).filter((k) => !k.revoked_at);
    list.replaceChildren(
      ...(keys.length
        ? keys.map((k) =>
            el("li", {},
              el("span", { class: "grow" }, el("strong", {}, k.name || "Unnamed key"), " ", el("code", {}, `${k.prefix}…`)),
              el("span", { class: "muted small" }, new Date(k.created_at).toLocaleDateString()),
              el("button", { type: "button", class: "btn danger-outline", "aria-label": `Revoke ${k.name || k.prefix}`, onclick: async () => {
                if (!(await confirmDialog("Revoke key?", "Programs using this key will stop working at once.", "Revoke"))) return;
                try {
                  await api("DELETE", `/api/keys/${k.id}`);
                  toast("Key revoked");
                  loadKeys();
                } catch (err) {
                  toast(err.message, "error");
                }
              } }, "Revoke")))
        : [el("li", { class: "list-empty" }, "No API keys.")]),
    );
  } catch (err) {
    list.replaceChildren(el("li", { class: "list-empty" }, err.message));
  }
}

$("key-add").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const created = await api("POST", "/api/keys", { name: $("key-name").value.trim() });
    $("key-name").value = "";
    const box = $("key-once");
    box.replaceChildren(
      el("strong", {}, "Copy your new key now — it won't be shown again."),
      el("code", {}, created.key),
      el("button", { type: "button", class: "btn", onclick: () => copyText(created.key) }, icon("copy"), "Copy key"),
    );
    box.hidden = false;
    loadKeys();
  } catch (err) {
    toast(err.message, "error");
  }
});

// -- account ----------------------------------------------------------------------------------

$("name-save").addEventListener("click", (e) =>
  saving(e.currentTarget, () => api("PATCH", "/api/auth/me", { display_name: $("display-name").value.trim() }), "Name saved"));

// The server's refusal (a wrong current password, a common one) is shown under the form.
$("pw-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = $("pw-error");
  const show = (text) => { error.textContent = text; error.hidden = !text; };
  if ($("pw-new").value !== $("pw-confirm").value) return show("The new password and its confirmation differ.");
  show("");
  $("pw-save").disabled = true;
  try {
    await api("POST", "/api/auth/password", { current_password: $("pw-current").value, new_password: $("pw-new").value });
    e.target.reset();
    toast("Password changed; your other sessions were signed out");
  } catch (err) {
    show(err.message);
  } finally {
    $("pw-save").disabled = false;
  }
});

async function loadMe() {
  const me = await api("GET", "/api/auth/me");
  $("use-for-training").checked = me.use_for_training;
  enable("use-for-training");
  if ("memory_enabled" in me) {
    $("mem-enabled").checked = me.memory_enabled;
    enable("mem-enabled");
  }
}

// -- administration ---------------------------------------------------------------------------

async function loadAdmin() {
  const site = await api("GET", "/api/admin/settings");
  $("allow-signup").checked = site.allow_signup;
  $("comparison-rate").value = Math.round((site.comparison_rate ?? 0) * 100);
  enable("allow-signup", "admin-save");
}

if (isAdmin) {
  $("admin-save").addEventListener("click", (e) =>
    saving(e.currentTarget, () => {
      const pct = Number($("comparison-rate").value);
      if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new Error("The comparison share is a percentage from 0 to 100.");
      return api("PUT", "/api/admin/settings", { allow_signup: $("allow-signup").checked, comparison_rate: pct / 100 });
    }, "Server settings saved"));
}

initSidebar();
const report = (what) => (err) => toast(`Couldn't load ${what}: ${err.message}`, "error");
loadInstructions().catch(report("custom instructions"));
loadMe().catch(report("your account"));
loadMemories();
loadKeys();
if (isAdmin) loadAdmin().catch(report("server settings"));
document.addEventListener("tandem:data-deleted", () => import("./sidebar.js").then((m) => m.refreshHistory()));
