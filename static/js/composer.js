// The composer: a growing textarea (Enter sends, Shift+Enter breaks the line), Send/Stop buttons and a
// character counter that appears near the limit.

/** The message composer at the bottom of the chat. */
export class Composer {
  /** Bind to the composer elements; `onSend(text)` and `onStop()` are called on user intent; `filesReady()` says
   * whether every attached file has finished uploading and being read, `hasFiles()` whether one is ready to go. */
  constructor({ maxChars, onSend, onStop, announce, filesReady = () => true, hasFiles = () => false }) {
    this.maxChars = maxChars;
    this.filesReady = filesReady;
    this.hasFiles = hasFiles;
    this.onSend = onSend;
    this.onStop = onStop;
    this.announce = announce;
    this.form = document.getElementById("composer");
    this.input = document.getElementById("composer-input");
    this.sendButton = document.getElementById("send-button");
    this.stopButton = document.getElementById("stop-button");
    this.counter = document.getElementById("char-counter");
    this.state = { connected: false, streaming: false, sending: false, stopping: false };
    this.wasOver = false;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => this.onKeydown(event));
    this.input.addEventListener("input", () => this.refresh());
    this.stopButton.addEventListener("click", () => this.onStop());
    this.refresh();
  }

  /** Handle Enter (send), Shift+Enter (newline, default) and Escape (stop a streaming reply). */
  onKeydown(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape" && this.state.streaming) {
      event.preventDefault();
      this.onStop();
    }
  }

  /** Send the current text if allowed. */
  submit() {
    if (!this.canSend()) return;
    this.onSend(this.input.value);
  }

  /** Return the text's length in code points (what the server counts). */
  length() {
    return [...this.input.value].length;
  }

  /** Return true when the text can be sent now. */
  canSend() {
    const { connected, streaming, sending } = this.state;
    const length = this.length();
    // Text, or at least one file that is ready (a screenshot may go without words).
    const something = this.input.value.trim() !== "" || this.hasFiles();
    return connected && !streaming && !sending && something && length <= this.maxChars && this.filesReady();
  }

  /** Update connection/streaming/sending flags and refresh the controls. */
  set(flags) {
    Object.assign(this.state, flags);
    this.refresh();
  }

  /** Replace the text (e.g. clear after sending, or restore after a failure). */
  setText(text) {
    this.input.value = text;
    this.refresh();
  }

  /** Return the current text. */
  text() {
    return this.input.value;
  }

  /** Re-derive button states, the counter and the textarea height. */
  refresh() {
    const { connected, streaming, stopping } = this.state;
    this.sendButton.disabled = !this.canSend();
    this.sendButton.title = !connected ? "Not connected" : streaming ? "Wait for the reply (or stop it)" : "";
    this.stopButton.hidden = !streaming;
    this.stopButton.disabled = !connected || stopping;
    this.form.classList.toggle("is-streaming", streaming);
    this.updateCounter();
    this.autosize();
  }

  /** Show "n / max" once the text passes 80% of the limit; announce crossing the limit once. */
  updateCounter() {
    const length = this.length();
    const near = length >= Math.floor(this.maxChars * 0.8);
    const over = length > this.maxChars;
    this.counter.hidden = !near;
    this.counter.textContent = near ? `${length.toLocaleString()} / ${this.maxChars.toLocaleString()}` : "";
    this.counter.classList.toggle("is-over", over);
    this.input.setAttribute("aria-invalid", String(over));
    if (over && !this.wasOver) {
      this.announce(`Message is too long: ${length - this.maxChars} characters over the limit.`);
    }
    this.wasOver = over;
  }

  /** Grow the textarea with its content (up to the CSS max-height) where CSS field-sizing is unsupported. */
  autosize() {
    if (CSS.supports("field-sizing", "content")) return;
    this.input.style.height = "auto";
    this.input.style.height = `${this.input.scrollHeight}px`;
  }

  /** Put keyboard focus in the textarea. */
  focus() {
    this.input.focus();
  }
}
