// The message list: building bubbles, rendering their text, status labels and per-message actions.
// History is rendered in one batch through a DocumentFragment; afterwards only the bubbles that change are touched.

import { copyText, decorateCodeBlocks, renderMarkdown } from "./markdown.js";

const LABELS = {
  stopped: "stopped",
  interrupted: "interrupted — the server restarted",
  error: "failed",
  failed: "not sent",
};

// Raw text per bubble (kept out of the DOM so 1,000 messages don't carry their text twice as attributes).
const texts = new WeakMap();

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** Return an ISO timestamp for now, in the format the server uses. */
export function nowIso() {
  return new Date().toISOString();
}

/** Create the element for one message (not yet in the document). */
export function createMessage({ role, content = "", createdAt = null, id = null, welcome = false }) {
  const template = document.getElementById("tpl-message");
  const el = template.content.firstElementChild.cloneNode(true);
  const isUser = role === "user";
  el.classList.add(isUser ? "msg--user" : "msg--bot");
  if (welcome) el.classList.add("msg--welcome");
  el.dataset.role = role;
  if (id != null) el.dataset.messageId = String(id);
  el.querySelector(".msg-who").textContent = isUser ? "You said:" : "Assistant said:";
  setTime(el, createdAt || nowIso());
  setText(el, content, { lazy: true });
  return el;
}

/** Show the local time of an ISO timestamp under the bubble (full date on hover). */
export function setTime(el, iso) {
  const time = el.querySelector(".msg-time");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return;
  time.dateTime = date.toISOString();
  time.textContent = timeFormat.format(date);
  time.title = fullFormat.format(date);
}

/** Render a message's text: user text verbatim (textContent), assistant text as sanitized Markdown. */
export function setText(el, text, { lazy = false } = {}) {
  const body = el.querySelector(".msg-body");
  texts.set(el, text);
  if (el.dataset.role === "user") {
    body.textContent = text;
    return;
  }
  body.replaceChildren(renderMarkdown(text));
  decorateCodeBlocks(body, { lazy });
}

/** Return the raw text of a message as last rendered. */
export function getText(el) {
  return texts.get(el) || "";
}

/** Show or clear the small status label ("stopped", "failed"…) under a bubble. */
export function setLabel(el, status) {
  const label = el.querySelector(".msg-label");
  const text = LABELS[status] || "";
  label.textContent = text;
  label.hidden = !text;
  el.dataset.status = status || "complete";
}

/** Show or clear a note inside the bubble (retry countdown, error message). */
export function setNote(el, text) {
  const note = el.querySelector(".msg-note");
  note.textContent = text || "";
  note.hidden = !text;
}

/** Switch the streaming look (typing dots, busy state) on or off. */
export function setStreaming(el, streaming) {
  el.classList.toggle("msg--streaming", streaming);
  el.querySelector(".msg-typing").hidden = !streaming;
  el.setAttribute("aria-busy", String(streaming));
}

/** Give an assistant bubble its Copy button (once). */
export function addCopyButton(el) {
  const actions = el.querySelector(".msg-actions");
  if (actions.querySelector(".msg-copy")) return;
  const button = document.getElementById("tpl-copy-message").content.firstElementChild.cloneNode(true);
  button.setAttribute("aria-label", "Copy this reply");
  button.addEventListener("click", async () => {
    const ok = await copyText(getText(el));
    flashButton(button, ok ? "Copied!" : "Copy failed");
  });
  actions.prepend(button);
}

/** Briefly swap a button's visible text to confirm an action, then restore it. */
export function flashButton(button, text) {
  const span = button.querySelector("span");
  if (!span) return;
  const original = button.dataset.originalText || span.textContent;
  button.dataset.originalText = original;
  span.textContent = text;
  button.classList.add("is-done");
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(setTimeout(() => {
    span.textContent = original;
    button.classList.remove("is-done");
  }, 1600));
}

/** Delegate clicks on code-block copy buttons for the whole list (buttons are re-created while streaming). */
export function wireCodeCopy(list) {
  list.addEventListener("click", async (event) => {
    const button = event.target.closest(".code-copy");
    if (!button) return;
    const code = button.closest(".code-block")?.querySelector("code");
    if (!code) return;
    const ok = await copyText(code.textContent);
    const label = button.querySelector(".code-copy-text");
    label.textContent = ok ? "Copied!" : "Copy failed";
    button.classList.add("is-done");
    setTimeout(() => {
      label.textContent = "Copy";
      button.classList.remove("is-done");
    }, 1600);
  });
}

/** Return the plain-text first part of a reply, for the screen-reader announcement. */
export function summary(el, limit = 280) {
  const text = el.querySelector(".msg-body").textContent.replace(/\s+/g, " ").trim();
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}
