// Going to a message: flipping a message's versions (‹ 2/3 ›) and opening a search result, up the path shown or on
// the branch the message is on. Talks to the server through the `request` it is given.

import { messageElement, revealMessage, view } from "./conversation.js";

/** Moves the view to other messages and versions. */
export class Navigation {
  /** `request(event, payload)` resolves to an ack or null; `fetchOlder()` loads the page above, resolving to
   * whether it did. */
  constructor({ request, fetchOlder }) {
    this.request = request;
    this.fetchOlder = fetchOlder;
  }

  /** Show another version of a message: the server makes its newest path active and sends the new history. */
  switchTo(messageId, direction) {
    this.request("switch_branch", { message_id: Number(messageId) }).then((resp) => {
      const el = resp && messageElement(messageId);
      if (!el) return;
      revealMessage(el, { highlight: false });
      // Keep the keyboard on the switcher (the same arrow while there is a version further on), to flip again.
      const [prev, next] = el.querySelectorAll(".version-btn");
      const same = direction === "prev" ? prev : next;
      (same && !same.disabled ? same : direction === "prev" ? next : prev)?.focus();
    });
  }

  /** Open a search result: its conversation, then the message (up the path shown, else on its own branch). */
  async openResult(result) {
    const conversationId = String(result.conversation_id);
    if (conversationId !== view.activeId) {
      if (!(await this.request("open_conversation", { conversation_id: conversationId }))) return;
    }
    if (result.message_id == null) return;
    let el = messageElement(result.message_id);
    while (!el && view.more && view.activeId === conversationId && (await this.fetchOlder())) {
      el = messageElement(result.message_id);
    }
    if (!el && view.activeId === conversationId) {
      if (!(await this.request("switch_branch", { message_id: Number(result.message_id) }))) return;
      el = messageElement(result.message_id);
    }
    if (el) revealMessage(el);
  }
}
