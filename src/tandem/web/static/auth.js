// Log-in and sign-up forms: POST to /api/auth, then go where the visitor was headed.
import { ApiError, api } from "./api.js";

const form = document.getElementById("auth-form");
const error = document.getElementById("form-error");

function destination() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // Only same-site paths: "//evil.example" or "https://…" would be an open redirect.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!error) return;
  error.hidden = true;
  const data = Object.fromEntries(new FormData(form));
  const signup = form.dataset.mode === "signup";
  if (signup && (data.password || "").length < 8) {
    error.textContent = "The password needs at least 8 characters.";
    error.hidden = false;
    return;
  }
  const body = signup
    ? { email: data.email.trim(), password: data.password, display_name: (data.display_name || "").trim() }
    : { email: data.email.trim(), password: data.password };
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await api("POST", signup ? "/api/auth/signup" : "/api/auth/login", body);
    location.assign(destination());
  } catch (err) {
    let message = err.message;
    // The password rule's refusals ("one of the most common passwords") are worth reading.
    if (err instanceof ApiError && err.status === 422 && !/password/i.test(err.message)) message = "Check the email address and password.";
    if (err instanceof ApiError && err.status === 409) message = "An account with this email already exists. Log in instead.";
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  }
});
