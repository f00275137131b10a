// The connection badge in the top bar: it tells the truth (connecting, connected, reconnecting, offline).

// Set by chat.js: told whether the socket is connected after every change.
export const statusHooks = { changed: () => {} };

/** Show the connection state: `kind` is connecting, connected, reconnecting or offline. */
export function setStatus(kind, text, detail = "") {
  const status = document.getElementById("status");
  status.dataset.state = kind;
  status.title = detail;
  document.getElementById("status-text").textContent = text;
  statusHooks.changed(kind === "connected");
}

/** Show "reconnecting", or "offline" when the browser knows the network is gone. */
export function setDisconnected(detail = "") {
  if (navigator.onLine === false) setStatus("offline", "Offline", "No network: waiting for it to come back");
  else setStatus("reconnecting", "Reconnecting…", detail);
}
