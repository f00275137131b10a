// Friendly toasts for errors: a kind title per error code plus the server's human-readable message.

const TITLES = {
  session_not_found: "Your session has expired.",
  invalid_message: "That message couldn't be sent.",
  message_too_long: "That message is a bit too long.",
  busy: "Hang on, still answering.",
  rate_limited: "Whoa, slow down a little.",
  not_found: "That chat isn't there any more.",
  upstream_unavailable: "The AI service can't be reached.",
  upstream_rate_limited: "The AI service is busy.",
  upstream_auth: "The AI service refused the server's key.",
  model_unavailable: "The model isn't available right now.",
  internal: "Oops, something broke on our side.",
  auth_required: "Please sign in.",
  timeout: "No answer from the server.",
  offline: "Not connected.",
};

const DEFAULT_MESSAGES = {
  timeout: "The server did not confirm in time. Check the connection status and try again.",
  offline: "The connection dropped; try again once the status says connected.",
};

const LIFETIME_MS = 8000;

/** Return the friendly title for an error code. */
export function titleFor(code) {
  return TITLES[code] || "Something went wrong.";
}

/** Show a toast for an error `{code, message}`; identical toasts already on screen are not repeated. */
export function showError(error) {
  const code = (error && error.code) || "internal";
  const message = (error && error.message) || DEFAULT_MESSAGES[code] || "Please try again.";
  const container = document.getElementById("toasts");
  const key = `${code}\n${message}`;
  for (const existing of container.children) {
    if (existing.dataset.key === key) return existing;
  }
  const toast = document.getElementById("tpl-toast").content.firstElementChild.cloneNode(true);
  toast.dataset.key = key;
  toast.dataset.code = code;
  toast.querySelector(".toast-title").textContent = titleFor(code);
  toast.querySelector(".toast-message").textContent = message;
  const dismiss = () => toast.remove();
  toast.querySelector(".toast-close").addEventListener("click", dismiss);
  // Keep it while hovered or focused so nobody loses a message mid-read.
  let timer = setTimeout(dismiss, LIFETIME_MS);
  const pause = () => clearTimeout(timer);
  const resume = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, LIFETIME_MS);
  };
  toast.addEventListener("mouseenter", pause);
  toast.addEventListener("mouseleave", resume);
  toast.addEventListener("focusin", pause);
  toast.addEventListener("focusout", resume);
  container.append(toast);
  return toast;
}
