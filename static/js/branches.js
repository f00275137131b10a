// Versions of a conversation on the page: the ‹ 2/3 › switcher on a message with siblings, and the inline editor
// that resends an edited user message as a new version. No socket code lives here: chat.js sets `branchHooks`.

import { getText } from "./messages.js";

// Set by chat.js.
export const branchHooks = {
  switchTo: () => {}, // show the version `messageId` (switch_branch)
  edit: () => Promise.resolve(false), // resend `text` as a new version of user message `messageId`; true when sent
};

let busy = false; // a reply streams in the conversation shown: no switching or editing meanwhile

/** Give a stored message its version switcher (when it has siblings) and, for a user message, its Edit button. */
export function decorateMessage(el, message) {
  const ids = Array.isArray(message.sibling_ids) ? message.sibling_ids : [];
  if (ids.length > 1 && Number(message.version) >= 1) setVersions(el, Number(message.version), ids);
  if (message.role === "user") addEditButton(el);
}

/** Show "‹ version/versions ›" under a message; the arrows ask for the neighbouring version. */
function setVersions(el, version, siblingIds) {
  const template = document.getElementById("tpl-versions");
  const group = template.content.firstElementChild.cloneNode(true);
  const [prev, next] = group.querySelectorAll(".version-btn");
  group.querySelector(".version-count").textContent = `${version}/${siblingIds.length}`;
  group.setAttribute("aria-label", `Version ${version} of ${siblingIds.length}`);
  prev.setAttribute("aria-label", "Previous version");
  next.setAttribute("aria-label", "Next version");
  prev.dataset.target = version > 1 ? String(siblingIds[version - 2]) : "";
  next.dataset.target = version < siblingIds.length ? String(siblingIds[version]) : "";
  for (const button of [prev, next]) {
    button.dataset.edge = button.dataset.target ? "" : "true";
    button.disabled = busy || !button.dataset.target;
    button.addEventListener("click", () => {
      if (button.dataset.target) branchHooks.switchTo(button.dataset.target, button === prev ? "prev" : "next");
    });
  }
  el.querySelector(".msg-meta").insertBefore(group, el.querySelector(".msg-actions"));
}

/** Give a confirmed user message its Edit button (once). */
export function addEditButton(el) {
  const actions = el.querySelector(".msg-actions");
  if (!el.dataset.messageId || actions.querySelector(".msg-edit")) return;
  const button = document.getElementById("tpl-edit").content.firstElementChild.cloneNode(true);
  button.setAttribute("aria-label", "Edit this message and send it again");
  button.disabled = busy;
  button.addEventListener("click", () => openEditor(el));
  actions.append(button);
}

/** Turn switching and editing off while a reply streams (the server would refuse them as busy). */
export function setBranchesBusy(value) {
  busy = value;
  for (const button of document.querySelectorAll(".msg-edit, .msg-editor-send")) button.disabled = busy;
  for (const button of document.querySelectorAll(".version-btn")) button.disabled = busy || !button.dataset.target;
}

/** Replace a user message's text with an editor: Enter resends it as a new version, Esc cancels. */
export function openEditor(el) {
  if (el.querySelector(".msg-editor")) return;
  const body = el.querySelector(".msg-body");
  const form = document.getElementById("tpl-editor").content.firstElementChild.cloneNode(true);
  const input = form.querySelector(".msg-editor-input");
  const send = form.querySelector(".msg-editor-send");
  input.value = getText(el);
  send.disabled = busy;
  body.hidden = true;
  body.after(form);
  el.classList.add("msg--editing");

  const close = () => {
    form.remove();
    body.hidden = false;
    el.classList.remove("msg--editing");
    el.querySelector(".msg-edit")?.focus();
  };
  const submit = () => {
    const text = input.value;
    if (!text.trim() || busy || send.disabled) return;
    send.disabled = true;
    input.readOnly = true;
    branchHooks.edit(el.dataset.messageId, text).then((sent) => {
      // Sent: the server's new history replaces this message (editor and all). Refused: keep the text to retry.
      if (sent && form.isConnected) close();
      send.disabled = busy;
      input.readOnly = false;
    });
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  form.querySelector(".msg-editor-cancel").addEventListener("click", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation(); // Esc here cancels the edit, nothing else (not a stop, not the drawer)
      close();
    }
  });
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}
