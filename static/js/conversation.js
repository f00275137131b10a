// The conversation on screen: the message list, following the newest text, per-reply stream state (ordered
// deltas, re-rendered at most once per animation frame) and history rendering. No socket code lives here.

import { setAttachments, setSources } from "./attachments.js";
import { decorateMessage } from "./branches.js";
import {
  addCopyButton, createMessage, setLabel, setNote, setStreaming, setText,
} from "./messages.js";
import { foldReasoning, setUsage, showReasoning } from "./reasoning.js";
import { showSteps } from "./tools.js";

const STICK_THRESHOLD_PX = 80;
const FOUND_MS = 2400; // how long a message opened from search stays highlighted
// Older messages are asked for when the reader scrolls this close to the top of a paged history.
const LOAD_OLDER_PX = 200;

export const list = document.getElementById("message-list");
const scroller = document.getElementById("messages");
const jumpButton = document.getElementById("jump-latest");
const announcer = document.getElementById("announcer");

export const view = {
  activeId: null, // the conversation shown, as a string
  replies: new Map(), // String(reply_id) -> {id, wire, conversationId, el, text, nextSeq, buffer, done}
  dirty: new Set(), // replies whose bubble needs re-rendering at the next animation frame
  frame: 0,
  stuck: true, // the view follows new text while the reader is at the bottom
  more: false, // the server holds older messages of this conversation than those shown (history is paged)
  loadingOlder: false, // a load_more request is on its way
};

// Set by chat.js: what the rest of the page does when the conversation view changes.
export const hooks = {
  changed: () => {}, // streaming started or ended: refresh the composer
  regenerate: () => {}, // the Regenerate button was pressed
  activated: () => {}, // another conversation is now shown
  conversation: () => null, // the sidebar's record of a conversation id
  titleOf: () => "ChatbotWS",
  loadOlder: () => {}, // the reader reached the top of a paged history: fetch the page before this message id
};

/** Announce text to screen readers through the polite live region. */
export function announce(text) {
  // Clearing first makes a repeated identical message count as a change.
  announcer.textContent = "";
  requestAnimationFrame(() => {
    announcer.textContent = text;
  });
}

/** Return the in-flight reply of the active conversation, if any. */
export function streamingReply() {
  for (const reply of view.replies.values()) {
    if (!reply.done && reply.conversationId === view.activeId) return reply;
  }
  return null;
}

/** Append a message element to the list and keep the view at the bottom if the reader was there. */
export function appendMessage(el) {
  list.append(el);
  followBottom();
}

// ---- scrolling ------------------------------------------------------------------------------------------------

/** Scroll to the newest message when the reader is following along. */
export function followBottom(force = false) {
  if (force) view.stuck = true;
  if (view.stuck) scroller.scrollTop = scroller.scrollHeight;
  jumpButton.hidden = view.stuck;
}

/** Track whether the reader is at the bottom; the jump button brings them back. */
export function wireScrolling() {
  scroller.addEventListener("scroll", () => {
    view.stuck = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_THRESHOLD_PX;
    jumpButton.hidden = view.stuck;
    maybeLoadOlder();
  }, { passive: true });
  // A growing composer (or a rotated phone) shrinks the view: stay at the bottom if the reader was there.
  new ResizeObserver(() => followBottom()).observe(scroller);
  jumpButton.addEventListener("click", () => {
    followBottom(true);
    document.getElementById("composer-input").focus();
  });
}

// ---- replies and streaming ------------------------------------------------------------------------------------

/** Return the state of a reply, creating it (empty, expecting seq 0) if unknown. */
export function replyState(replyId, conversationId) {
  const id = String(replyId);
  let reply = view.replies.get(id);
  if (!reply) {
    // `wire` keeps the id exactly as the server sent it (a number): the server checks its type.
    reply = { id, wire: replyId, conversationId: String(conversationId), el: null, text: "", nextSeq: 0,
      buffer: new Map(), done: false, reasoning: "", nextReasoningSeq: 0, reasoningBuffer: new Map(),
      reasoningSince: null, thoughtFor: null };
    view.replies.set(id, reply);
  }
  return reply;
}

/** Make sure an in-flight reply of the active conversation has a streaming bubble on screen. */
export function ensureReplyBubble(replyId, conversationId) {
  const reply = replyState(replyId, conversationId);
  if (reply.done || reply.conversationId !== view.activeId) return reply;
  if (!reply.el || !reply.el.isConnected) {
    reply.el = createMessage({ role: "assistant", content: reply.text });
    reply.el.dataset.replyId = reply.id;
    setStreaming(reply.el, true);
    showReasoning(reply.el, reply.reasoning, { live: !reply.text });
    appendMessage(reply.el);
  }
  refreshRegenerate();
  hooks.changed();
  return reply;
}

/** Queue a reply's bubble for re-rendering at the next animation frame (at most once per frame). */
function scheduleRender(reply) {
  view.dirty.add(reply);
  if (!view.frame) view.frame = requestAnimationFrame(flushRenders);
}

/** Re-render the Markdown of every reply that changed since the last frame. */
function flushRenders() {
  view.frame = 0;
  for (const reply of view.dirty) {
    if (!reply.el || !reply.el.isConnected || reply.done) continue;
    if (reply.reasoning) showReasoning(reply.el, reply.reasoning, { live: !reply.text });
    if (reply.text && reply.reasoning) foldReasoning(reply.el, reply.thoughtFor);
    setText(reply.el, reply.text);
  }
  view.dirty.clear();
  followBottom();
}

/** Apply one piece of reasoning in seq order (its own seq, like the answer's). */
export function applyReasoning(reply, seq, text) {
  if (reply.done || seq < reply.nextReasoningSeq) return;
  reply.reasoningBuffer.set(seq, text);
  let changed = false;
  while (reply.reasoningBuffer.has(reply.nextReasoningSeq)) {
    reply.reasoning += reply.reasoningBuffer.get(reply.nextReasoningSeq);
    reply.reasoningBuffer.delete(reply.nextReasoningSeq);
    reply.nextReasoningSeq += 1;
    changed = true;
  }
  if (reply.reasoningSince === null) reply.reasoningSince = performance.now();
  if (changed) scheduleRender(reply);
}

/** Apply one delta in seq order: duplicates are dropped, early arrivals wait for the gap to fill. */
export function applyDelta(reply, seq, text) {
  if (reply.done || seq < reply.nextSeq) return;
  if (!reply.text && reply.reasoningSince !== null && reply.thoughtFor === null) {
    reply.thoughtFor = (performance.now() - reply.reasoningSince) / 1000; // the answer starts: reasoning is over
  }
  reply.buffer.set(seq, text);
  let changed = false;
  while (reply.buffer.has(reply.nextSeq)) {
    reply.text += reply.buffer.get(reply.nextSeq);
    reply.buffer.delete(reply.nextSeq);
    reply.nextSeq += 1;
    changed = true;
  }
  if (changed) {
    if (reply.el) setNote(reply.el, "");
    scheduleRender(reply);
  }
}

/** End a reply: final text (if given), status label, no more streaming look. */
export function finishReply(reply, { text = null, status = "complete", note = "", reasoning = null, usage = null,
  speed = null, model = null } = {}) {
  reply.done = true;
  view.dirty.delete(reply);
  if (text !== null) reply.text = text;
  if (reasoning) reply.reasoning = reasoning;
  const el = reply.el;
  if (el && el.isConnected) {
    showReasoning(el, reply.reasoning);
    foldReasoning(el, reply.thoughtFor);
    setUsage(el, usage, speed, model);
    setText(el, reply.text);
    setStreaming(el, false);
    setLabel(el, status);
    setNote(el, note);
    addCopyButton(el);
  }
  refreshRegenerate();
  hooks.changed();
}

/** Put the Regenerate button on the last reply only, when nothing is streaming. */
export function refreshRegenerate() {
  for (const button of list.querySelectorAll(".msg-regenerate")) button.remove();
  const last = list.lastElementChild;
  if (!last || last.dataset.role !== "assistant" || last.classList.contains("msg--welcome")) return;
  if (last.classList.contains("msg--streaming") || streamingReply()) return;
  if (!list.querySelector(".msg--user")) return;
  const button = document.getElementById("tpl-regenerate").content.firstElementChild.cloneNode(true);
  button.setAttribute("aria-label", "Regenerate this reply");
  button.addEventListener("click", () => hooks.regenerate());
  last.querySelector(".msg-actions").append(button);
}

// ---- history --------------------------------------------------------------------------------------------------

/** Build the bubble of one stored message (with its versions); a reply still streaming is recorded in `toResume`. */
function historyElement(message, conversationId, seen, toResume) {
  const isUser = message.role === "user";
  const el = createMessage({
    role: isUser ? "user" : "assistant",
    content: message.status === "streaming" ? "" : message.content || "",
    createdAt: message.created_at,
    id: message.id,
  });
  decorateMessage(el, message);
  if (isUser) {
    setAttachments(el, message.attachments);
    return el;
  }
  if (message.reply_id != null) el.dataset.replyId = String(message.reply_id);
  const known = message.reply_id != null ? view.replies.get(String(message.reply_id)) : null;
  if (message.status === "streaming" && message.reply_id != null && !(known && known.done)) {
    const reply = replyState(message.reply_id, conversationId);
    seen.add(reply.id);
    reply.el = el;
    setText(el, reply.text);
    setStreaming(el, true);
    toResume.push(reply);
  } else {
    setLabel(el, message.status === "streaming" ? "complete" : message.status);
    if (message.status === "streaming" && known) setText(el, known.text);
    showReasoning(el, message.reasoning || "");
    foldReasoning(el);
    if (message.tools) showSteps(el, message.tools);
    setUsage(el, message.usage, message.speed, message.model);
    addCopyButton(el);
    setSources(el, message.sources);
    if (known) {
      known.done = true; // it finished while we were away; the stored text is authoritative
      seen.add(known.id);
    }
  }
  return el;
}

/** Ask for the page before the oldest message shown, when the reader is near the top and there is one. */
function maybeLoadOlder() {
  if (!view.more || view.loadingOlder || scroller.scrollTop > LOAD_OLDER_PX) return;
  const oldest = list.querySelector("[data-message-id]");
  if (!oldest) return;
  view.loadingOlder = true;
  hooks.loadOlder(view.activeId, Number(oldest.dataset.messageId));
}

/** Put an older page above the messages shown, keeping what the reader looks at in place. */
export function prependOlder(conversationId, messages, more) {
  view.loadingOlder = false;
  if (conversationId !== view.activeId) return;
  const oldest = list.querySelector("[data-message-id]");
  const before = oldest ? Number(oldest.dataset.messageId) : Infinity;
  const fragment = document.createDocumentFragment();
  for (const message of messages) {
    if (Number(message.id) < before) fragment.append(historyElement(message, conversationId, new Set(), []));
  }
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  list.prepend(fragment);
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
  view.more = more;
  requestAnimationFrame(maybeLoadOlder);
}

/** A load_more request failed: allow another try on the next scroll. */
export function olderFailed() {
  view.loadingOlder = false;
}

/** Render a whole conversation in one batch; return the replies still in flight (to resume). */
export function renderHistory(conversationId, messages, unconfirmed = [], more = false) {
  const same = conversationId === view.activeId;
  const previousTop = scroller.scrollTop;
  const wasStuck = view.stuck;
  view.activeId = conversationId;
  view.more = more;
  view.loadingOlder = false;
  hooks.activated(conversationId);
  updateTitle();

  const fragment = document.createDocumentFragment();
  const toResume = [];
  const seen = new Set();
  for (const message of messages) fragment.append(historyElement(message, conversationId, seen, toResume));
  // Replies in flight that the history does not list yet (e.g. a regenerate racing its history) stay on screen.
  for (const reply of view.replies.values()) {
    if (reply.done || reply.conversationId !== conversationId || seen.has(reply.id)) continue;
    reply.el = createMessage({ role: "assistant", content: reply.text });
    reply.el.dataset.replyId = reply.id;
    setStreaming(reply.el, true);
    fragment.append(reply.el);
    if (reply.nextSeq > 0) toResume.push(reply);
  }
  // Messages sent whose ack was lost to a disconnect stay visible until their resend is confirmed.
  for (const pending of unconfirmed) {
    if (pending.conversationId === conversationId) fragment.append(pending.el);
  }
  list.replaceChildren(fragment);
  if (same && !wasStuck) {
    scroller.scrollTop = previousTop;
  } else {
    followBottom(true);
    // Bubbles near the end get their real heights only once laid out (content-visibility); settle again.
    requestAnimationFrame(() => followBottom());
  }
  refreshRegenerate();
  hooks.changed();
  return toResume;
}

/** Return the bubble of a message id in the conversation shown, if it is on screen. */
export function messageElement(messageId) {
  return list.querySelector(`[data-message-id="${CSS.escape(String(messageId))}"]`);
}

/** Bring a message into view and highlight it briefly (a search result opened, a version flipped to). */
export function revealMessage(el, { highlight = true } = {}) {
  view.stuck = false;
  jumpButton.hidden = false;
  el.scrollIntoView({ block: "center" });
  // Bubbles above it get their real heights only once laid out (content-visibility): settle once more.
  requestAnimationFrame(() => el.isConnected && el.scrollIntoView({ block: "center" }));
  if (!highlight) return;
  el.classList.remove("msg--found");
  void el.offsetWidth; // restart the animation when the same message is found twice
  el.classList.add("msg--found");
  setTimeout(() => el.classList.remove("msg--found"), FOUND_MS);
}

/** Show the active conversation's title in the top bar and the tab. */
export function updateTitle() {
  const conversation = hooks.conversation(view.activeId);
  const title = conversation ? hooks.titleOf(conversation) : "ChatbotWS";
  document.getElementById("conversation-title").textContent = title;
  document.title = conversation ? `${title} · ChatbotWS` : "ChatbotWS";
}

