// The sidebar's projects: each with its chats, pinned ones first; create, rename, re-instruct, pin and delete;
// drag a chat onto a project to put it there, or onto the Chats list to take it out (the settings panel does the
// same from the keyboard). The edit dialog lists the documents a project holds, and the composer's uploaded ones, to
// tick. Every change goes through the protocol module's `request`.

import { titleOf } from "./sidebar.js";

const DRAG_TYPE = "application/x-chatbotws-conversation";

/** The projects section of the sidebar. */
export class Projects {
  /** Bind to the sidebar; `actions` holds request(event, payload), open(conversationId) and uploaded() (the
   * composer's ready files). */
  constructor(actions) {
    this.actions = actions;
    this.list = document.getElementById("project-list");
    this.chats = document.getElementById("conversation-list");
    this.dialog = document.getElementById("project-dialog");
    this.projects = [];
    this.conversations = [];
    this.activeId = null;
    this.editing = null; // the project the dialog edits (null: a new one)
    document.getElementById("new-project").addEventListener("click", () => this.edit(null));
    this.list.addEventListener("click", (event) => this.onClick(event));
    document.getElementById("project-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.wireDragging();
  }

  /** Show the server's project list (the list_projects ack, or the `projects` event). */
  setProjects(projects) {
    this.projects = projects || [];
    this.render();
  }

  /** Show which chats are in which project (called whenever the sidebar's conversation list changes). */
  setConversations(conversations, activeId) {
    this.conversations = conversations || [];
    if (activeId != null) this.activeId = String(activeId);
    this.render();
  }

  /** Return the project record of an id. */
  find(id) {
    return this.projects.find((project) => String(project.id) === String(id)) || null;
  }

  /** Rebuild the project list with each project's chats. */
  render() {
    const template = document.getElementById("tpl-project");
    const fragment = document.createDocumentFragment();
    for (const project of this.projects) {
      const item = template.content.firstElementChild.cloneNode(true);
      item.dataset.projectId = String(project.id);
      item.querySelector(".project-name").textContent = project.name;
      const pin = item.querySelector('[data-action="pin"]');
      pin.setAttribute("aria-pressed", String(Boolean(project.pinned)));
      pin.setAttribute("aria-label", `${project.pinned ? "Unpin" : "Pin"} “${project.name}”`);
      item.classList.toggle("is-pinned", Boolean(project.pinned));
      item.querySelector('[data-action="edit"]').setAttribute("aria-label", `Edit “${project.name}”`);
      item.querySelector('[data-action="delete"]').setAttribute("aria-label", `Delete “${project.name}”`);
      const chats = item.querySelector(".project-chats");
      for (const conversation of this.conversations) {
        if (String(conversation.project_id) !== String(project.id)) continue;
        const chat = document.createElement("li");
        chat.className = "project-chat";
        chat.dataset.conversationId = String(conversation.id);
        chat.draggable = true;
        const open = document.createElement("button");
        open.type = "button";
        open.className = "conversation-open";
        open.textContent = titleOf(conversation);
        if (String(conversation.id) === this.activeId) {
          chat.classList.add("is-active");
          open.setAttribute("aria-current", "true");
        }
        chat.append(open);
        chats.append(chat);
      }
      fragment.append(item);
    }
    this.list.replaceChildren(fragment);
  }

  /** Route clicks: a project chat opens; pin, edit and delete act on the project. */
  onClick(event) {
    const control = event.target.closest("button");
    if (!control) return;
    const chat = control.closest(".project-chat");
    if (chat) {
      this.actions.open(chat.dataset.conversationId);
      return;
    }
    const project = this.find(control.closest(".project")?.dataset.projectId);
    if (!project) return;
    const action = control.dataset.action;
    if (action === "pin") this.actions.request("update_project", { project_id: project.id, pinned: !project.pinned });
    else if (action === "edit") this.edit(project);
    else if (action === "delete" && window.confirm(`Delete the project “${project.name}”? Its chats are kept.`)) {
      this.actions.request("delete_project", { project_id: project.id });
    }
  }

  /** Open the project dialog for a new project (null) or an existing one. */
  edit(project) {
    this.editing = project;
    document.getElementById("project-dialog-title").textContent = project ? "Edit project" : "New project";
    document.getElementById("project-name").value = project ? project.name : "";
    document.getElementById("project-instructions").value = project ? project.instructions : "";
    this.showFiles(project);
    this.dialog.showModal();
    document.getElementById("project-name").focus();
  }

  /** List the project's documents (ticked) and the composer's uploaded ones (unticked) in the dialog. */
  showFiles(project) {
    const list = document.getElementById("project-file-list");
    const held = project ? project.files || [] : [];
    const heldIds = new Set(held.map((file) => String(file.id)));
    const offered = (this.actions.uploaded?.() || [])
      .filter((file) => file.kind === "document" && !heldIds.has(String(file.id)));
    const items = [...held, ...offered].map((file) => {
      const item = document.createElement("li");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = String(file.id);
      box.checked = heldIds.has(String(file.id));
      label.append(box, ` ${file.name}`);
      item.append(label);
      return item;
    });
    list.replaceChildren(...items);
    document.getElementById("project-files").hidden = !project; // a new project gets files once it exists
  }

  /** Create or update the project from the dialog's fields. */
  save() {
    const name = document.getElementById("project-name").value.trim();
    const instructions = document.getElementById("project-instructions").value;
    if (!name) return;
    this.dialog.close();
    if (this.editing) {
      const files = [...document.querySelectorAll("#project-file-list input:checked")].map((box) => box.value);
      this.actions.request("update_project", { project_id: this.editing.id, name, instructions, files });
    } else {
      this.actions.request("create_project", { name, instructions });
    }
  }

  /** Chats are dragged by their list item; projects and the Chats list take them. */
  wireDragging() {
    const nav = document.getElementById("conversation-nav");
    nav.addEventListener("dragstart", (event) => {
      const item = event.target.closest?.("[data-conversation-id]");
      if (!item) return;
      event.dataTransfer.setData(DRAG_TYPE, item.dataset.conversationId);
      event.dataTransfer.effectAllowed = "move";
    });
    const target = (event) => event.target.closest?.(".project") || event.target.closest?.("#conversation-list");
    nav.addEventListener("dragover", (event) => {
      if (!event.dataTransfer.types.includes(DRAG_TYPE) || !target(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      for (const el of nav.querySelectorAll(".is-drop-target")) el.classList.remove("is-drop-target");
      target(event).classList.add("is-drop-target");
    });
    nav.addEventListener("dragleave", (event) => target(event)?.classList.remove("is-drop-target"));
    nav.addEventListener("drop", (event) => {
      const into = target(event);
      const id = event.dataTransfer.getData(DRAG_TYPE);
      for (const el of nav.querySelectorAll(".is-drop-target")) el.classList.remove("is-drop-target");
      if (!into || !id) return;
      event.preventDefault();
      const projectId = into.classList.contains("project") ? into.dataset.projectId : null;
      this.actions.request("update_conversation", { conversation_id: id, project_id: projectId });
    });
  }
}
