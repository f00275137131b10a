// The chat page's entry point: speaks the Socket.IO protocol (see the README), and wires the conversation view,
// composer, sidebar and connection status together.

/* global io */

import { AttachmentTray, setAttachments, setSources } from "./attachments.js";
import { addEditButton, branchHooks, setBranchesBusy } from "./branches.js";
import { Composer } from "./composer.js";
import {
  announce, appendMessage, applyDelta, applyReasoning, ensureReplyBubble, finishReply, followBottom, hooks, list,
  olderFailed, prependOlder, refreshRegenerate, renderHistory, replyState, streamingReply, updateTitle, view,
  wireScrolling,
} from "./conversation.js";
import { setupHighlighting } from "./markdown.js";
import { ModelPicker } from "./models.js";
import { createMessage, getText, setLabel, setNote, setTime, summary, wireCodeCopy } from "./messages.js";
import { Importer } from "./imports.js";
import { Navigation } from "./navigation.js";
import { Projects } from "./projects.js";
import { Search } from "./search.js";
import { SettingsPanel } from "./settings.js";
import { ShareDialog } from "./sharing.js";
import { Sidebar, titleOf } from "./sidebar.js";
import { setDisconnected, setStatus, statusHooks } from "./status.js";
import { showError } from "./toasts.js";
import { ToolPicker, applyStep, showApproval, showSteps, stepsOf } from "./tools.js";

const ACK_TIMEOUT_MS = 20000;
const SIGN_IN_URL = "/signin";
const FINISH_STATUS = { stopped: "stopped", error: "error", interrupted: "interrupted" };

/** Read the server's page config from <body data-config>, with safe defaults. */
function readConfig() {
  let config = {};
  try {
    config = JSON.parse(document.body.dataset.config || "{}") || {};
  } catch (_) {
    config = {};
  }
  return {
    demo: Boolean(config.demo),
    model: String(config.model || ""),
    provider: String(config.provider || ""),
    notice: String(config.notice || ""),
    maxMessageChars: Number(config.max_message_chars) > 0 ? Number(config.max_message_chars) : 4000,
    version: String(config.version || ""),
    auth: String(config.auth || "open"),
    shareLinks: String(config.share_links || "off"),
  };
}

/** Return a random id for a sent message (randomUUID needs a secure context; plain-HTTP LAN installs lack it). */
function randomId() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const config = readConfig();
const state = {
  socket: null,
  connected: false,
  sentClientIds: new Set(), // client_ids this tab sent, so their echoes are ignored
  unconfirmed: new Map(), // client_id -> {clientId, el, text, conversationId}: the ack was lost to a disconnect
  signedOut: false, // the server said this login has ended (signed out everywhere, disabled, password changed)
  switching: null, // a request that changes the conversation shown is on its way (its history comes first)
};

// Requests whose answer shows another conversation: text sent meanwhile waits for it (issue 8).
const SWITCHES = new Set(["new_conversation", "open_conversation", "switch_branch"]);

/** Leave for the sign-in page (in accounts and proxy mode, when the login is missing or has ended). */
function goSignIn() {
  window.location.assign(SIGN_IN_URL);
}

/** After the server closed the socket without saying why: if the page itself now sends us to sign in, go. */
function checkSignedIn() {
  fetch("/", { redirect: "manual", cache: "no-store" }).then((response) => {
    if (response.type === "opaqueredirect") goSignIn();
  }, () => {});
}

const tray = new AttachmentTray({
  csrf: document.querySelector('meta[name="csrf-token"]')?.content || "",
  onChange: () => composer.refresh(),
  dropTarget: document.body,
});

const composer = new Composer({
  maxChars: config.maxMessageChars,
  onSend: sendMessage,
  onStop: stopReply,
  announce,
  filesReady: () => tray.settled(),
  hasFiles: () => tray.ready().length > 0,
});

const picker = new ModelPicker((model) => {
  request("set_model", { conversation_id: view.activeId, model }).then((resp) => {
    if (!resp) picker.show(sidebar.find(view.activeId)?.model); // refused: show what the conversation still uses
  });
});

const toolPicker = new ToolPicker(request);

const sidebar = new Sidebar({
  open: (id) => request("open_conversation", { conversation_id: id }),
  create: () => request("new_conversation", {}).then((resp) => resp && composer.focus()),
  rename: (id, title) => request("rename_conversation", { conversation_id: id, title }),
  remove: (id) => request("delete_conversation", { conversation_id: id }),
  rendered: (conversations, activeId) => projects.setConversations(conversations, activeId),
});

const projects = new Projects({ request, uploaded: () => tray.ready(), open: (id) => {
  sidebar.closeDrawer();
  request("open_conversation", { conversation_id: id });
} });

const settings = new SettingsPanel({
  request,
  current: () => sidebar.find(view.activeId) || (view.activeId ? { id: view.activeId } : null),
  projects: () => projects.projects,
  onStarted: () => composer.focus(),
});

const importer = new Importer({
  done: (ack) => announce(`Imported ${ack.imported} chat${ack.imported === 1 ? "" : "s"}.`),
  failed: (error) => showError(error),
});

const sharing = new ShareDialog({ request, currentId: () => view.activeId, titleOf: (id) => titleOf(sidebar.find(id)) });
document.getElementById("share-open").hidden = config.shareLinks === "off";

const navigation = new Navigation({ request, fetchOlder });

const search = new Search({
  search: (query, limit) => request("search", { query, limit }).then((resp) => resp && (resp.results || [])),
  open: (result) => {
    sidebar.closeDrawer(false);
    navigation.openResult(result);
  },
  reveal: () => sidebar.narrow.matches && sidebar.openDrawer(),
});

Object.assign(hooks, {
  changed: () => {
    const streaming = streamingReply() !== null;
    composer.set({ streaming, stopping: false });
    setBranchesBusy(streaming);
  },
  regenerate,
  activated: (id) => {
    sidebar.setActive(id);
    picker.show(sidebar.find(id)?.model);
    toolPicker.show(id, sidebar.find(id)?.tools);
  },
  conversation: (id) => sidebar.find(id),
  titleOf,
  loadOlder: () => fetchOlder(),
});

Object.assign(branchHooks, { switchTo: (id, direction) => navigation.switchTo(id, direction), edit: editMessage });
statusHooks.changed = (connected) => {
  state.connected = connected;
  composer.set({ connected });
};

/** Emit an event with an ack; resolve to the ack on success, or show the error and resolve to null (`quiet`:
 * resolve to the refusal itself, shown by the caller). */
function request(event, payload, { quiet = false } = {}) {
  const answer = new Promise((resolve) => {
    if (!state.socket || !state.connected) {
      showError({ code: "offline" });
      resolve(null);
      return;
    }
    state.socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, resp) => {
      if (err) {
        showError(state.socket.connected ? { code: "timeout" } : { code: "offline" });
        resolve(null);
      } else if (!resp || !resp.ok) {
        if (quiet) {
          resolve(resp || null);
          return;
        }
        showError(resp && resp.error);
        resolve(null);
      } else {
        resolve(resp);
      }
    });
  });
  if (SWITCHES.has(event)) {
    // The server sends the new conversation's history before this ack, so once it settles the view is current.
    const settled = answer.then(() => {
      if (state.switching === settled) state.switching = null;
    });
    state.switching = settled;
  }
  return answer;
}

// ---- user actions ---------------------------------------------------------------------------------------------

/** Send the composer's text: optimistic bubble now, marked failed (text back in the composer) on error. */
function sendMessage(text) {
  if (state.switching) {
    // Another conversation is about to be shown: the text belongs to it, not to the one still on screen.
    composer.setText("");
    state.switching.then(() => sendMessage(text));
    return;
  }
  const clientId = randomId();
  state.sentClientIds.add(clientId);
  const files = tray.ready();
  const el = createMessage({ role: "user", content: text });
  setAttachments(el, files);
  el.classList.add("msg--pending");
  el.dataset.clientId = clientId;
  appendMessage(el);
  followBottom(true);
  refreshRegenerate();
  composer.setText("");
  emitUserMessage({ clientId, el, text, conversationId: view.activeId, files: files.map((file) => file.id) });
}

/** Emit one user message and settle its bubble from the ack. */
function emitUserMessage(pending) {
  const { clientId, el, text } = pending;
  composer.set({ sending: true });
  const payload = { message: text, client_id: clientId };
  if (pending.conversationId != null) payload.conversation_id = pending.conversationId;
  if (pending.files && pending.files.length) payload.attachments = pending.files;
  const socketId = state.socket.id; // a new id after the ack timed out: the socket was replaced meanwhile
  state.socket.timeout(ACK_TIMEOUT_MS).emit("user_message", payload, (err, resp) => {
    composer.set({ sending: false });
    if (err && (!state.socket.connected || state.socket.id !== socketId)) {
      // Committed or not, we cannot tell: resend on reconnect (now, if that has happened already); the same
      // client_id makes that idempotent.
      state.unconfirmed.set(clientId, pending);
      if (state.socket.connected) emitUserMessage(pending);
      return;
    }
    state.unconfirmed.delete(clientId);
    el.classList.remove("msg--pending");
    if (err || !resp || !resp.ok) {
      const error = err ? { code: "timeout" } : (resp && resp.error) || { code: "internal" };
      setLabel(el, "failed");
      setNote(el, error.message || "");
      if (composer.text() === "") composer.setText(text); // nothing typed is ever lost (the files stay too)
      showError(error);
      return;
    }
    if (pending.files && pending.files.length) tray.clear();
    el.dataset.messageId = String(resp.message_id);
    addEditButton(el);
    // A history re-sent meanwhile may already hold this message (keep one copy) or may predate it (put it back).
    const twin = list.querySelector(`.msg--user[data-message-id="${CSS.escape(String(resp.message_id))}"]`);
    if (twin && twin !== el) el.remove();
    else if (!twin && !el.isConnected && String(resp.conversation_id) === view.activeId) appendMessage(el);
    if (resp.reply_id != null) ensureReplyBubble(resp.reply_id, String(resp.conversation_id ?? view.activeId));
  });
}

/** Ask the server to stop the reply in flight; the final bot_message then carries finish_reason "stopped". */
function stopReply() {
  const reply = streamingReply();
  if (!reply) return;
  composer.set({ stopping: true });
  request("stop", { reply_id: reply.wire }).then((resp) => {
    if (!resp) composer.set({ stopping: false });
  });
}

/** Ask for a new answer to the last message (the server re-sends history, then streams the new reply). */
function regenerate() {
  if (streamingReply()) return;
  for (const button of list.querySelectorAll(".msg-regenerate")) button.disabled = true;
  request("regenerate", { conversation_id: view.activeId }).then((resp) => {
    if (resp && resp.reply_id != null) ensureReplyBubble(resp.reply_id, view.activeId);
    else refreshRegenerate();
  });
}

/** Resend an edited user message as a new version of it; resolves to true once the server took it. */
function editMessage(messageId, text) {
  const clientId = randomId();
  state.sentClientIds.add(clientId);
  const payload = { message_id: Number(messageId), message: text, client_id: clientId };
  return request("edit_message", payload).then((resp) => {
    if (!resp) return false;
    // The new path's history came first; the reply streams into it.
    if (resp.reply_id != null) ensureReplyBubble(resp.reply_id, String(resp.conversation_id));
    return true;
  });
}

/** Ask the server to replay a reply's deltas after the last one applied; give up cleanly if it is gone. */
function resumeReply(reply) {
  const payload = { reply_id: reply.wire, after_seq: reply.nextSeq - 1,
    after_reasoning_seq: reply.nextReasoningSeq - 1, after_tool_seq: (reply.nextToolSeq ?? 0) - 1 };
  state.socket.timeout(ACK_TIMEOUT_MS).emit("resume", payload, (err, resp) => {
    if (err || reply.done) return; // on a timeout the next reconnect's history sorts it out
    if (!resp || !resp.ok) finishReply(reply, { status: "interrupted" });
  });
}

// ---- server events --------------------------------------------------------------------------------------------

/** A welcome text, or the authoritative full text of a finished reply. */
function onBotMessage(data) {
  const conversationId = data.conversation_id != null ? String(data.conversation_id) : view.activeId;
  if (data.welcome) {
    if (conversationId !== view.activeId || list.querySelector(".msg--welcome")) return;
    const el = createMessage({ role: "assistant", content: data.message || "", createdAt: data.created_at,
      welcome: true });
    appendMessage(el);
    announce(`Assistant: ${summary(el)}`);
    return;
  }
  let reply = data.reply_id != null ? view.replies.get(String(data.reply_id)) : null;
  if (conversationId !== view.activeId) {
    if (reply) reply.done = true;
    return;
  }
  if (!reply) reply = replyState(data.reply_id ?? randomId(), conversationId);
  if (!reply.el || !reply.el.isConnected) {
    reply.el = createMessage({ role: "assistant", content: "" });
    reply.el.dataset.replyId = reply.id;
    appendMessage(reply.el);
  }
  if (data.message_id != null) reply.el.dataset.messageId = String(data.message_id);
  if (data.created_at) setTime(reply.el, data.created_at);
  const status = FINISH_STATUS[data.finish_reason] || "complete";
  const note = data.error && data.error.message ? data.error.message : "";
  finishReply(reply, { text: data.message ?? reply.text, status, note, reasoning: data.reasoning || null,
    usage: data.usage, speed: data.speed, model: data.model });
  setSources(reply.el, data.sources);
  if (Array.isArray(data.tools)) reply.tools = new Map(data.tools.map((step) => [String(step.id), step]));
  if (reply.el && reply.el.isConnected) showSteps(reply.el, stepsOf(reply));
  if (data.error && data.error.code === "model_unavailable") picker.nudge();
  followBottom();
  const label = status === "complete" ? "" : ` (${status === "error" ? "failed" : status})`;
  announce(`Assistant replied${label}: ${summary(reply.el)}`);
}

/** An error: a failed reply ends in its bubble; anything else becomes a toast. */
function onError(data) {
  if (data && data.code === "auth_required") {
    state.signedOut = true; // the server disconnects us next
    return;
  }
  const reply = data && data.reply_id != null ? view.replies.get(String(data.reply_id)) : null;
  if (reply && !reply.done) {
    finishReply(reply, { status: "error", note: data.message || "" });
    if (reply.conversationId !== view.activeId || !reply.el) showError(data);
  } else {
    showError(data);
  }
}

/** Show the session's conversation list (the `conversations` event, or the list_conversations ack). */
function renderConversations(data) {
  sidebar.render(data.conversations || [], view.activeId ?? (data.active_id != null ? String(data.active_id) : null));
  picker.show(sidebar.find(view.activeId)?.model);
  updateTitle();
}

/** Fetch the page of messages above the oldest one shown and put it there; resolves to whether it did. */
function fetchOlder() {
  const oldest = list.querySelector("[data-message-id]");
  if (!oldest || !view.more) return Promise.resolve(false);
  view.loadingOlder = true;
  const payload = { conversation_id: view.activeId, before_id: Number(oldest.dataset.messageId) };
  return request("load_more", payload).then((resp) => {
    if (resp) prependOlder(String(resp.conversation_id), resp.messages || [], Boolean(resp.more));
    else olderFailed();
    return Boolean(resp);
  });
}

/** Connect and register every server event. */
function connect() {
  const socket = io({ transports: ["websocket", "polling"] });
  state.socket = socket;

  socket.on("connect", () => {
    setStatus("connected", "Connected");
    // A connect sends only what the tab shows; the sidebar asks for the list itself.
    request("list_conversations", {}).then((resp) => resp && renderConversations(resp));
    request("list_models", {}).then((resp) => resp && picker.setModels(resp));
    request("list_projects", {}).then((resp) => resp && projects.setProjects(resp.projects));
    for (const pending of state.unconfirmed.values()) emitUserMessage(pending);
  });
  socket.on("disconnect", (reason) => {
    // Socket.IO retries by itself, except after a deliberate disconnect by either side.
    if (reason === "io server disconnect" && state.signedOut) {
      goSignIn();
      return;
    }
    if (reason === "io server disconnect" && config.auth !== "open") checkSignedIn();
    if (reason === "io server disconnect" || reason === "io client disconnect") {
      setStatus("offline", "Disconnected", "The server closed the connection: reload the page to reconnect");
    } else {
      setDisconnected();
    }
  });
  socket.on("connect_error", (err) => {
    if (socket.active) {
      setDisconnected();
      return;
    }
    // Refused by the server (e.g. rate_limited, server full): say why, and try again when it says we may.
    const refusal = (err && err.data) || {};
    if (refusal.code === "auth_required") {
      goSignIn();
      return;
    }
    setStatus("offline", "Can't connect", refusal.message || "The server refused the connection: reload to retry");
    if (refusal.code) showError(refusal);
    if (refusal.retry_after > 0) setTimeout(() => socket.connect(), Math.ceil(refusal.retry_after * 1000));
  });
  socket.io.on("reconnect_attempt", (attempt) => setDisconnected(`Attempt ${attempt}`));
  window.addEventListener("offline", () => socket.connected || setDisconnected());
  window.addEventListener("online", () => socket.connected || setDisconnected());

  socket.on("session_id", (data) => showProvider(data.provider ?? config.provider, data.model ?? config.model,
    data.notice ?? config.notice));
  socket.on("history", (data) => {
    const inFlight = renderHistory(String(data.conversation_id), data.messages || [], state.unconfirmed.values(),
      Boolean(data.more));
    for (const reply of inFlight) resumeReply(reply);
  });
  socket.on("conversations", renderConversations);
  socket.on("projects", (data) => projects.setProjects(data && data.projects));
  socket.on("conversation_updated", (data) => {
    if (!data || !data.conversation) return;
    sidebar.upsert(data.conversation);
    toolPicker.remember(data.conversation);
    if (String(data.conversation.id) === view.activeId) picker.show(data.conversation.model);
    updateTitle();
  });
  socket.on("user_message_echo", (data) => {
    const message = data.message || {};
    if (state.sentClientIds.has(message.client_id) || String(data.conversation_id) !== view.activeId) return;
    const el = createMessage({ role: "user", content: message.content || "", createdAt: message.created_at,
      id: message.id });
    setAttachments(el, message.attachments);
    addEditButton(el);
    appendMessage(el);
    refreshRegenerate();
  });
  socket.on("bot_start", (data) => ensureReplyBubble(data.reply_id, String(data.conversation_id)));
  socket.on("bot_reasoning", (data) => {
    const reply = view.replies.get(String(data.reply_id));
    if (reply) applyReasoning(reply, Number(data.seq), String(data.text ?? ""));
  });
  socket.on("bot_delta", (data) => {
    const reply = view.replies.get(String(data.reply_id));
    if (reply) applyDelta(reply, Number(data.seq), String(data.text ?? ""));
  });
  socket.on("bot_tool", (data) => {
    const known = view.replies.get(String(data.reply_id));
    if (!known || !data.step) return;
    const reply = ensureReplyBubble(data.reply_id, known.conversationId);
    if (applyStep(reply, Number(data.seq), data.step) && reply.el && reply.el.isConnected) {
      showSteps(reply.el, stepsOf(reply));
    }
  });
  socket.on("tool_approval", (data) => {
    const known = view.replies.get(String(data.reply_id));
    if (!known) return;
    const reply = ensureReplyBubble(data.reply_id, known.conversationId);
    if (!reply.el || !reply.el.isConnected || reply.done) return;
    showApproval(reply.el, data, (approve) => request("approve_tool",
      { reply_id: reply.wire, step_id: data.step_id, approve }));
    announce("The assistant asks before running a tool: approve or decline it in the reply.");
  });
  socket.on("bot_status", (data) => {
    const reply = view.replies.get(String(data.reply_id));
    if (!reply || reply.done || !reply.el || reply.text) return;
    if (data.status === "queued") {
      const ahead = Math.max(0, Number(data.position) - 1);
      setNote(reply.el, ahead ? `Waiting for the model — ${ahead} ${ahead === 1 ? "reply" : "replies"} ahead of yours…`
        : "Waiting for the model — yours is next…");
    } else if (data.status === "retrying") {
      const seconds = Math.max(1, Math.ceil(Number(data.retry_in) || 1));
      setNote(reply.el, `The AI service is busy — retrying in ${seconds} s…`);
    }
  });
  socket.on("bot_message", onBotMessage);
  socket.on("error", onError);
}

// ---- start ----------------------------------------------------------------------------------------------------

const PROVIDER_LABELS = { groq: "Groq", openai: "Your model server", local: "Local model", demo: "Offline demo" };

/** Show who answers under the title ("<provider> · <model>", or just the provider above the model picker), and the
 * provider's notice (demo, local model) as a banner. */
function showProvider(provider, model, notice) {
  const label = document.getElementById("model-name");
  const name = PROVIDER_LABELS[provider] || "";
  label.dataset.provider = name;
  label.dataset.full = (provider === "demo" ? name : [name, model].filter(Boolean).join(" · ")) || model || "";
  label.textContent = document.getElementById("model-picker").hidden ? label.dataset.full : name;
  const banner = document.getElementById("provider-banner");
  banner.textContent = notice || "";
  banner.hidden = !notice;
}

/** Wire the page up once the vendored libraries (deferred scripts) have run. */
function start() {
  setupHighlighting();
  wireCodeCopy(list);
  wireScrolling();
  showProvider(config.provider, config.model, config.notice);
  document.getElementById("app-version").textContent = config.version ? `v${config.version}` : "";
  if (typeof io !== "function") {
    setStatus("offline", "Scripts missing", "The page failed to load its scripts: reload to retry");
    return;
  }
  setStatus("connecting", "Connecting…");
  connect();
  composer.focus();
}

start();

// The browser tests' handle on the page (it holds no secrets), installed only when a test asks for it with
// `?test-hook` in the page's address.
if (new URLSearchParams(window.location.search).has("test-hook")) {
  window.chatbotws = { state, view, getText, search, settings, sharing, importer };
}
