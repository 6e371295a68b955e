// The model picker: the models this user may pick (engine variants are for admins), what each
// can do, and which one a request names.
import { api, el } from "./api.js";
import { state } from "./chat_state.js";

const app = document.getElementById("app");
export const picker = document.getElementById("model-picker");

export async function loadModels() {
  try {
    const models = await api("GET", "/api/models");
    state.models = models.map((m) => m.id);
    state.modelInfo = new Map(models.map((m) => [m.id, m]));
  } catch {
    state.models = [];
  }
  syncPicker();
}

// Whether the model that would answer can see images; unknown models are given the benefit.
export function modelSeesImages() {
  const info = state.modelInfo.get(picker.value || state.implicitModel);
  return !info || info.accepts_images;
}

export function syncPicker() {
  const implicit = state.conv?.model || state.profile?.model_version || app.dataset.defaultModel || state.models[0] || "";
  state.implicitModel = implicit;
  const ids = state.models.includes(implicit) || !implicit ? state.models : [implicit, ...state.models];
  picker.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
  const saved = state.conv ? null : localStorage.getItem("tandem.model");
  picker.value = saved && ids.includes(saved) ? saved : implicit;
  picker.closest(".model-pick").hidden = ids.length === 0;
}

// The model to name in a request: only when the user picked one other than the default, so a
// profile's or conversation's own model still applies otherwise.
export function chosenModel() {
  return picker.value && picker.value !== state.implicitModel ? picker.value : undefined;
}

picker.addEventListener("change", () => {
  if (!state.conv) localStorage.setItem("tandem.model", picker.value);
});
