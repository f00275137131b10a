// The conversation sidebar: list, switch, rename and delete (through accessible <dialog>s), export links,
// and the drawer behaviour on narrow screens.

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** Return "5 minutes ago"-style text for an ISO timestamp. */
function ago(iso) {
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  if (Number.isNaN(seconds)) return "";
  const steps = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, size] of steps) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

/** Return the display title of a conversation. */
export function titleOf(conversation) {
  return (conversation && conversation.title && conversation.title.trim()) || "New chat";
}

/** The conversation list and its dialogs. */
export class Sidebar {
  /** Bind the sidebar to its elements; `actions` holds the open/rename/delete/new callbacks. */
  constructor(actions) {
    this.actions = actions;
    this.list = document.getElementById("conversation-list");
    this.empty = document.getElementById("conversation-empty");
    this.sidebar = document.getElementById("sidebar");
    this.menuButton = document.getElementById("menu-toggle");
    this.backdrop = document.getElementById("drawer-backdrop");
    this.conversations = [];
    this.activeId = null;
    this.pendingDialog = null;
    this.narrow = window.matchMedia("(max-width: 52rem)");
    this.wireDrawer();
    this.wireDialogs();
    document.getElementById("new-conversation").addEventListener("click", () => {
      this.closeDrawer();
      this.actions.create();
    });
    this.list.addEventListener("click", (event) => this.onListClick(event));
  }

  /** Replace the list with the server's (sent after connect and whenever it changes). */
  render(conversations, activeId) {
    this.conversations = conversations;
    if (activeId != null) this.activeId = activeId;
    const template = document.getElementById("tpl-conversation");
    const fragment = document.createDocumentFragment();
    for (const conversation of conversations) {
      if (conversation.project_id) continue; // shown under its project
      const item = template.content.firstElementChild.cloneNode(true);
      item.draggable = true; // onto a project (see projects.js)
      const title = titleOf(conversation);
      const id = String(conversation.id);
      item.dataset.conversationId = id;
      item.querySelector(".conversation-title").textContent = title;
      const count = conversation.message_count || 0;
      item.querySelector(".conversation-meta").textContent =
        `${count} message${count === 1 ? "" : "s"} · ${ago(conversation.updated_at || conversation.created_at)}`;
      const open = item.querySelector(".conversation-open");
      if (id === String(this.activeId)) {
        item.classList.add("is-active");
        open.setAttribute("aria-current", "true");
      }
      const base = `/conversations/${encodeURIComponent(id)}`;
      const md = item.querySelector('[data-action="export-md"]');
      md.href = `${base}/export.md`;
      md.setAttribute("aria-label", `Export “${title}” as Markdown`);
      const json = item.querySelector('[data-action="export-json"]');
      json.href = `${base}/export.json`;
      json.setAttribute("aria-label", `Export “${title}” as JSON`);
      item.querySelector('[data-action="rename"]').setAttribute("aria-label", `Rename “${title}”`);
      item.querySelector('[data-action="delete"]').setAttribute("aria-label", `Delete “${title}”`);
      fragment.append(item);
    }
    // Keep keyboard focus on the same conversation's control when the list is rebuilt under it.
    const focused = document.activeElement;
    const focusedItem = this.list.contains(focused) ? focused.closest(".conversation") : null;
    const focusKey = focusedItem && [focusedItem.dataset.conversationId, focused.dataset.action || "open"];
    this.list.replaceChildren(fragment);
    this.empty.hidden = conversations.length > 0;
    if (focusKey) this.restoreFocus(...focusKey);
    this.actions.rendered?.(conversations, this.activeId);
  }

  /** Put one changed conversation (a reply finished, a rename) in its place, newest activity first. */
  upsert(conversation) {
    const others = this.conversations.filter((c) => String(c.id) !== String(conversation.id));
    const key = (c) => c.updated_at || c.created_at || "";
    this.render([conversation, ...others].sort((a, b) => key(b).localeCompare(key(a))), null);
  }

  /** Focus a control of a conversation item after a re-render. */
  restoreFocus(id, action) {
    const item = this.itemFor(id);
    if (!item) return;
    const target = action === "open" ? item.querySelector(".conversation-open")
      : item.querySelector(`[data-action="${action}"]`);
    target?.focus();
  }

  /** Return the list item of a conversation id. */
  itemFor(id) {
    return [...this.list.children].find((item) => item.dataset.conversationId === String(id)) || null;
  }

  /** Return the conversation record for an id, if listed. */
  find(id) {
    return this.conversations.find((c) => String(c.id) === String(id)) || null;
  }

  /** Mark a conversation as the active one without waiting for the next list. */
  setActive(id) {
    this.activeId = id;
    this.actions.rendered?.(this.conversations, id);
    for (const item of this.list.children) {
      const active = item.dataset.conversationId === String(id);
      item.classList.toggle("is-active", active);
      const open = item.querySelector(".conversation-open");
      if (active) open.setAttribute("aria-current", "true");
      else open.removeAttribute("aria-current");
    }
  }

  /** Route clicks on list items to open / rename / delete. */
  onListClick(event) {
    const item = event.target.closest(".conversation");
    if (!item) return;
    const id = item.dataset.conversationId;
    const control = event.target.closest("button, a");
    if (!control) return;
    const action = control.dataset.action;
    if (action === "rename") this.askRename(id);
    else if (action === "delete") this.askDelete(id);
    else if (!action) {
      this.closeDrawer();
      this.actions.open(id);
    }
  }

  /** Open the rename dialog for a conversation. */
  askRename(id) {
    const input = document.getElementById("rename-input");
    input.value = titleOf(this.find(id));
    this.openDialog("rename-dialog", { id, kind: "rename" });
    input.select();
  }

  /** Open the delete confirmation dialog for a conversation. */
  askDelete(id) {
    document.getElementById("delete-name").textContent = titleOf(this.find(id));
    this.openDialog("delete-dialog", { id, kind: "delete" });
  }

  /** Show a modal dialog, remembering what it is about and where focus should return. */
  openDialog(dialogId, pending) {
    const dialog = document.getElementById(dialogId);
    this.pendingDialog = { ...pending, returnFocus: document.activeElement };
    dialog.showModal();
  }

  /** Wire both dialogs: submit runs the action, Cancel/Escape just closes; focus goes back where it was. */
  wireDialogs() {
    for (const dialog of document.querySelectorAll("dialog.dialog")) {
      dialog.querySelector("[data-dialog-cancel]").addEventListener("click", () => dialog.close());
      dialog.addEventListener("close", () => {
        const pending = this.pendingDialog;
        this.pendingDialog = null;
        const back = pending?.returnFocus;
        if (back && back.isConnected) back.focus();
        else if (pending) this.restoreFocus(pending.id, "open");
      });
    }
    document.getElementById("rename-form").addEventListener("submit", (event) => {
      event.preventDefault(); // handled here; the dialog closes itself below
      const pending = this.pendingDialog;
      const title = document.getElementById("rename-input").value.trim();
      if (!title) return;
      document.getElementById("rename-dialog").close();
      if (pending) this.actions.rename(pending.id, title);
    });
    document.getElementById("delete-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const pending = this.pendingDialog;
      document.getElementById("delete-dialog").close();
      if (pending) this.actions.remove(pending.id);
    });
  }

  /** Wire the phone drawer: menu button, backdrop, Escape. */
  wireDrawer() {
    this.menuButton.addEventListener("click", () => (this.isDrawerOpen() ? this.closeDrawer() : this.openDrawer()));
    document.getElementById("drawer-close").addEventListener("click", () => this.closeDrawer());
    this.backdrop.addEventListener("click", () => this.closeDrawer());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isDrawerOpen() && !document.querySelector("dialog[open]")) {
        event.stopPropagation();
        this.closeDrawer();
      }
    });
    this.narrow.addEventListener("change", () => this.closeDrawer(false));
  }

  /** Return true when the drawer is open (narrow screens only). */
  isDrawerOpen() {
    return document.body.classList.contains("drawer-open");
  }

  /** Slide the sidebar in over the chat and move focus into it. */
  openDrawer() {
    document.body.classList.add("drawer-open");
    this.backdrop.hidden = false;
    this.menuButton.setAttribute("aria-expanded", "true");
    // The chat behind the drawer is out of reach for keyboard and screen readers while it is open.
    document.getElementById("main").inert = true;
    (this.list.querySelector('[aria-current="true"]') || document.getElementById("new-conversation")).focus();
  }

  /** Close the drawer, optionally returning focus to the menu button. */
  closeDrawer(returnFocus = true) {
    if (!this.isDrawerOpen()) return;
    document.body.classList.remove("drawer-open");
    this.backdrop.hidden = true;
    this.menuButton.setAttribute("aria-expanded", "false");
    document.getElementById("main").inert = false;
    if (returnFocus && this.narrow.matches) this.menuButton.focus();
  }
}
