// Import conversations: a ChatGPT export (conversations.json) or a ChatbotWS JSON export, picked in the sidebar
// and posted as it is to POST /conversations/import with the page's CSRF token. The server checks the whole file
// first: a malformed one is refused with one sentence and nothing is imported.

/** The sidebar's Import button and its hidden file picker. */
export class Importer {
  /** `actions`: done(ack) after an import, failed(error) when refused. */
  constructor(actions) {
    this.actions = actions;
    this.input = document.getElementById("import-file");
    this.button = document.getElementById("import-open");
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      const file = this.input.files && this.input.files[0];
      this.input.value = "";
      if (file) this.send(file);
    });
  }

  /** Post one file; tell the page how it went. */
  async send(file) {
    const token = document.querySelector('meta[name="csrf-token"]')?.content || "";
    this.button.disabled = true;
    try {
      const response = await fetch("/conversations/import", {
        method: "POST", body: file, credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      });
      const body = await response.json().catch(() => null);
      if (response.ok && body && body.ok) this.actions.done(body);
      else this.actions.failed((body && body.error) || { code: "internal" });
    } catch (_) {
      this.actions.failed({ code: "offline" });
    } finally {
      this.button.disabled = false;
    }
  }
}
