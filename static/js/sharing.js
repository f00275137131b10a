// The share dialog: make (or refresh) a read-only link to a snapshot of the chat shown, copy it, and list and
// revoke the session's links.

import { copyText } from "./markdown.js";

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** The share dialog. */
export class ShareDialog {
  /** `actions`: request(event, payload), currentId() (the shown conversation), titleOf(id). */
  constructor(actions) {
    this.actions = actions;
    this.dialog = document.getElementById("share-dialog");
    this.list = document.getElementById("share-list");
    this.shares = [];
    document.getElementById("share-open").addEventListener("click", () => this.open());
    document.getElementById("share-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    document.getElementById("share-copy").addEventListener("click", (event) => {
      this.copy(event.currentTarget, document.getElementById("share-url").value);
    });
    this.list.addEventListener("click", (event) => this.onListClick(event));
  }

  /** Open the dialog with the session's links. */
  open() {
    document.getElementById("share-made").hidden = true;
    this.refresh();
    this.dialog.showModal();
  }

  /** Make (or refresh) the shown chat's link and show it, ready to copy. */
  create() {
    const payload = { conversation_id: this.actions.currentId() };
    const days = document.getElementById("share-expiry").value;
    if (days) payload.expires_in_days = Number(days);
    this.actions.request("share_conversation", payload).then((resp) => {
      if (!resp) return;
      const url = document.getElementById("share-url");
      url.value = resp.url;
      document.getElementById("share-made").hidden = false;
      url.select();
      this.refresh();
    });
  }

  /** Read and show the session's live links. */
  refresh() {
    this.actions.request("list_shares", {}).then((resp) => {
      if (!resp) return;
      this.shares = resp.shares || [];
      const template = document.getElementById("tpl-share");
      const fragment = document.createDocumentFragment();
      for (const share of this.shares) {
        const item = template.content.firstElementChild.cloneNode(true);
        item.dataset.shareId = share.share_id;
        item.querySelector(".share-title").textContent = share.title || this.actions.titleOf(share.conversation_id);
        item.querySelector(".share-meta").textContent = share.expires_at
          ? `expires ${dateFormat.format(new Date(share.expires_at))}` : "no expiry";
        fragment.append(item);
      }
      this.list.replaceChildren(fragment);
      document.getElementById("share-none").hidden = this.shares.length > 0;
    });
  }

  /** Copy or revoke one listed link. */
  onListClick(event) {
    const control = event.target.closest("button");
    const share = this.shares.find((each) => each.share_id === control?.closest(".share-item")?.dataset.shareId);
    if (!share) return;
    if (control.dataset.action === "copy") this.copy(control, share.url);
    else if (control.dataset.action === "revoke") {
      this.actions.request("unshare", { share_id: share.share_id }).then((resp) => resp && this.refresh());
    }
  }

  /** Copy a link and say so on the button. */
  async copy(button, url) {
    if (await copyText(url)) button.classList.add("is-done");
  }
}
