// Import conversations: a ChatGPT export (conversations.json) or a ChatbotWS JSON export, picked in the sidebar
// and posted as it is to POST /conversations/import with the page's CSRF token; the button shows how much has gone
// up, then "Importing…". The server checks the whole file first: a malformed one is refused with one sentence and
// nothing is imported.

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

  /** Post one file, showing how much of it has gone up on the button; tell the page how it went. */
  send(file) {
    const token = document.querySelector('meta[name="csrf-token"]')?.content || "";
    const label = this.button.querySelector("span");
    const idle = label.textContent;
    this.button.disabled = true;
    const request = new XMLHttpRequest();
    request.open("POST", "/conversations/import");
    request.setRequestHeader("Content-Type", "application/json");
    request.setRequestHeader("X-CSRFToken", token);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) label.textContent = `Sending… ${Math.floor((100 * event.loaded) / event.total)} %`;
    });
    request.upload.addEventListener("load", () => {
      label.textContent = "Importing…";
    });
    const done = () => {
      this.button.disabled = false;
      label.textContent = idle;
    };
    request.addEventListener("load", () => {
      done();
      const body = request.response;
      if (request.status === 200 && body && body.ok) this.actions.done(body);
      else this.actions.failed((body && body.error) || { code: "internal" });
    });
    request.addEventListener("error", () => {
      done();
      this.actions.failed({ code: "offline" });
    });
    request.send(file);
  }
}
