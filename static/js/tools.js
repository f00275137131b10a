// Tools on the page: a reply's steps as compact cards (search, code, the team's tools), the Approve/Decline
// prompt of a destructive step, and the composer's tool toggles. Tool input and output are data: they reach the page
// through textContent only (never as HTML or Markdown), and links only when they are http(s).

const STATUS = { running: "running…", done: "done", error: "failed", declined: "declined" };

/** What a step did, in words: "Searched the web for …", "Ran code", "Called orders › lookup_order". */
export function stepTitle(step) {
  const input = step.input && typeof step.input === "object" ? step.input : {};
  if (step.kind === "search") return input.query ? `Searched the web for “${input.query}”` : "Searched the web";
  if (step.kind === "code") return "Ran code";
  const name = String(step.name || "");
  const match = /^mcp:([^/]+)\/(.+)$/.exec(name);
  return match ? `Called ${match[1]} › ${match[2]}` : `Called ${name}`;
}

/** A labelled <pre> holding text as text. */
function block(label, text) {
  const wrap = document.createElement("div");
  wrap.className = "tool-step-part";
  const title = document.createElement("span");
  title.className = "tool-step-part-label";
  title.textContent = label;
  const pre = document.createElement("pre");
  pre.textContent = text;
  wrap.append(title, pre);
  return wrap;
}

/** The links a search found (http(s) only; the text is the page's title as text). */
function sources(list) {
  const ul = document.createElement("ul");
  ul.className = "tool-step-sources";
  for (const source of list) {
    let url;
    try {
      url = new URL(String(source.url));
    } catch {
      continue;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") continue;
    const a = document.createElement("a");
    a.href = url.href;
    a.textContent = String(source.title || url.href);
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    const li = document.createElement("li");
    li.append(a);
    ul.append(li);
  }
  return ul;
}

/** One step as an expandable card. */
function stepCard(step) {
  const card = document.createElement("details");
  card.className = `tool-step tool-step--${step.status}`;
  card.dataset.stepId = String(step.id);
  const summary = document.createElement("summary");
  const spinner = document.createElement("span");
  spinner.className = "tool-step-spinner";
  spinner.setAttribute("aria-hidden", "true");
  const title = document.createElement("span");
  title.className = "tool-step-title";
  title.textContent = stepTitle(step);
  const state = document.createElement("span");
  state.className = "tool-step-status";
  state.textContent = STATUS[step.status] || String(step.status || "");
  summary.append(spinner, title, state);
  card.append(summary);
  const input = step.kind === "code" && step.input && step.input.code ? String(step.input.code)
    : JSON.stringify(step.input ?? {}, null, 2);
  card.append(block(step.kind === "code" ? "Code" : "Input", input));
  if (step.output) card.append(block(step.status === "error" ? "Why" : "Output", String(step.output)));
  if (Array.isArray(step.sources) && step.sources.length) card.append(sources(step.sources));
  for (const picture of Array.isArray(step.images) ? step.images : []) {
    // The server re-encodes checked PNG bytes into these URLs; anything else is not shown.
    if (typeof picture !== "string" || !picture.startsWith("data:image/png;base64,")) continue;
    const img = document.createElement("img");
    img.className = "tool-step-image";
    img.alt = "A chart the code made";
    img.src = picture;
    card.append(img);
  }
  return card;
}

/** Show a reply's steps (in the order they began) above its answer. */
export function showSteps(el, steps) {
  let box = el.querySelector(".msg-tools");
  if (!box) {
    box = document.createElement("div");
    box.className = "msg-tools";
    el.querySelector(".msg-bubble").insertBefore(box, el.querySelector(".msg-body"));
  }
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.stepId));
  const cards = (steps || []).map(stepCard);
  for (const card of cards) card.open = open.has(card.dataset.stepId);
  box.replaceChildren(...cards);
  box.hidden = cards.length === 0;
  for (const prompt of el.querySelectorAll(".tool-approval")) {
    const step = (steps || []).find((s) => String(s.id) === prompt.dataset.stepId);
    if (step && step.status !== "running") prompt.remove(); // answered (here or in another tab), or timed out
  }
}

/** Apply one `bot_tool` in seq order (repeats dropped, early ones wait); true when the reply's steps changed. */
export function applyStep(reply, seq, step) {
  reply.tools ??= new Map();
  reply.toolBuffer ??= new Map();
  reply.nextToolSeq ??= 0;
  if (seq < reply.nextToolSeq) return false;
  reply.toolBuffer.set(seq, step);
  let changed = false;
  while (reply.toolBuffer.has(reply.nextToolSeq)) {
    const next = reply.toolBuffer.get(reply.nextToolSeq);
    reply.tools.set(String(next.id), next);
    reply.toolBuffer.delete(reply.nextToolSeq);
    reply.nextToolSeq += 1;
    changed = true;
  }
  return changed;
}

/** The steps of a reply, in the order they began. */
export function stepsOf(reply) {
  return reply.tools ? [...reply.tools.values()] : [];
}

/** Ask the person about a destructive step inside its reply: what the model wants to run, Approve / Decline.
 * `answer(approve)` sends the answer (a promise); the prompt goes when a step's state says it was settled. */
export function showApproval(el, data, answer) {
  const stepId = String(data.step_id);
  if (el.querySelector(`.tool-approval[data-step-id="${CSS.escape(stepId)}"]`)) return;
  const box = document.createElement("div");
  box.className = "tool-approval";
  box.dataset.stepId = stepId;
  box.setAttribute("role", "group");
  const text = document.createElement("p");
  text.textContent = `The assistant wants to run ${stepTitle({ kind: "mcp", name: data.name })
    .replace(/^Called /, "")}. Allow it?`;
  box.append(text, block("Input", JSON.stringify(data.input ?? {}, null, 2)));
  const buttons = document.createElement("div");
  buttons.className = "tool-approval-actions";
  for (const [label, approve] of [["Approve", true], ["Decline", false]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = approve ? "btn btn-primary" : "btn";
    button.textContent = label;
    button.addEventListener("click", () => {
      for (const b of buttons.querySelectorAll("button")) b.disabled = true;
      Promise.resolve(answer(approve)).finally(() => box.remove());
    });
    buttons.append(button);
  }
  box.append(buttons);
  el.querySelector(".msg-bubble").insertBefore(box, el.querySelector(".msg-body"));
}

/** The composer's "Tools" toggles: the tools the active conversation's model can use (list_tools), grouped by
 * server, checked as the conversation chose; a change is sent at once (update_conversation). */
export class ToolPicker {
  /** Bind to #tools-button and #tools-panel; `request(event, payload)` resolves to the ack (or null). */
  constructor(request) {
    this.request = request;
    this.button = document.getElementById("tools-button");
    this.panel = document.getElementById("tools-panel");
    this.choices = new Map(); // conversation id -> its tool ids
    this.conversationId = null;
    if (!this.button || !this.panel) return;
    this.button.addEventListener("click", () => (this.panel.hidden ? this.open() : this.close()));
  }

  /** Remember a conversation's choice (from `conversation_updated` and acks). */
  remember(conversation) {
    if (!conversation || conversation.id == null) return;
    this.choices.set(String(conversation.id), conversation.tools || []);
    if (String(conversation.id) === this.conversationId) {
      this.button?.classList.toggle("is-on", (conversation.tools || []).length > 0);
    }
  }

  /** The active conversation changed (`tools`: its choice, when known). */
  show(conversationId, tools) {
    this.conversationId = conversationId;
    if (tools !== undefined) this.choices.set(conversationId, tools || []);
    this.close();
    this.button?.classList.toggle("is-on", (this.choices.get(conversationId) || []).length > 0);
  }

  /** Read the tools and show the toggles. */
  async open() {
    const ack = await this.request("list_tools", { conversation_id: this.conversationId });
    if (!ack) return;
    const chosen = new Set(this.choices.get(this.conversationId) || []);
    const rows = [];
    if (!ack.tools.length) {
      const none = document.createElement("p");
      none.textContent = "This conversation's model cannot use tools.";
      rows.push(none);
    }
    let server = null;
    for (const tool of ack.tools) {
      const group = tool.server || "Built in";
      if (group !== server) {
        server = group;
        const heading = document.createElement("p");
        heading.className = "tools-group";
        heading.textContent = group;
        rows.push(heading);
      }
      const label = document.createElement("label");
      label.className = "tools-option";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = tool.id;
      box.checked = chosen.has(tool.id);
      box.addEventListener("change", () => this.save());
      const name = document.createElement("span");
      name.textContent = tool.needs_approval ? `${tool.label} (asks first)` : tool.label;
      name.title = tool.description || "";
      label.append(box, name);
      rows.push(label);
    }
    for (const down of ack.unavailable || []) {
      const note = document.createElement("p");
      note.className = "tools-down";
      note.textContent = `${down}: not reachable right now`;
      rows.push(note);
    }
    this.panel.replaceChildren(...rows);
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
  }

  /** Hide the toggles. */
  close() {
    if (!this.panel) return;
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }

  /** Send the checked tools as the conversation's choice. */
  async save() {
    const tools = [...this.panel.querySelectorAll("input:checked")].map((box) => box.value);
    const ack = await this.request("update_conversation", { conversation_id: this.conversationId, tools });
    if (ack && ack.conversation) this.remember(ack.conversation);
  }
}
