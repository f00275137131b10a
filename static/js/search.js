// The sidebar's search box: results as you type (debounced; late answers to older queries are dropped), snippets
// drawn as text with <mark> elements made here (never parsed as HTML), arrow keys to move, Ctrl+K / ⌘K to focus.

const DEBOUNCE_MS = 200;
const RESULTS = 20;

/** The search box and its result list. */
export class Search {
  /** Bind to the search elements; `actions.search(query, limit)` resolves to results or null, `actions.open(r)`
   * shows a result, `actions.reveal()` makes the box reachable (opens the drawer on phones). */
  constructor(actions) {
    this.actions = actions;
    this.input = document.getElementById("search-input");
    this.results = document.getElementById("search-results");
    this.empty = document.getElementById("search-empty");
    this.conversations = document.getElementById("conversation-nav");
    this.timer = 0;
    this.asked = 0; // sequence number of the newest query sent
    if (/Mac|iPhone|iPad/.test(navigator.platform || "")) document.getElementById("search-hint").textContent = "⌘ K";
    this.input.addEventListener("input", () => this.schedule());
    this.input.addEventListener("keydown", (event) => this.onKeydown(event));
    this.results.addEventListener("keydown", (event) => this.onResultsKeydown(event));
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
        event.preventDefault();
        this.focus();
      }
    });
  }

  /** Put the caret in the search box, selecting what is there. */
  focus() {
    this.actions.reveal();
    this.input.focus();
    this.input.select();
  }

  /** Search once typing pauses. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), DEBOUNCE_MS);
  }

  /** Send the query (an empty box shows the conversation list again). */
  run() {
    clearTimeout(this.timer);
    const query = this.input.value.trim();
    const asked = ++this.asked;
    if (!query) {
      this.clear();
      return;
    }
    this.actions.search(this.input.value.slice(0, 200), RESULTS).then((results) => {
      if (asked === this.asked && results) this.render(results);
    });
  }

  /** Forget the query and its results. */
  clear() {
    this.results.replaceChildren();
    this.results.hidden = true;
    this.empty.hidden = true;
    this.conversations.hidden = false;
  }

  /** Show the results in place of the conversation list. */
  render(results) {
    const template = document.getElementById("tpl-search-result");
    const fragment = document.createDocumentFragment();
    for (const result of results) {
      const item = template.content.firstElementChild.cloneNode(true);
      const button = item.querySelector(".search-open");
      item.querySelector(".search-title").textContent = result.title || "New chat";
      item.querySelector(".search-where").textContent = result.message_id == null ? "title"
        : result.role === "user" ? "you said" : "assistant said";
      fillSnippet(item.querySelector(".search-snippet"), result.snippet);
      button.addEventListener("click", () => this.actions.open(result));
      fragment.append(item);
    }
    this.results.replaceChildren(fragment);
    this.results.hidden = results.length === 0;
    this.empty.hidden = results.length > 0;
    this.conversations.hidden = true;
  }

  /** Enter opens the first result, ArrowDown walks into the list, Esc empties the box. */
  onKeydown(event) {
    const first = this.results.querySelector(".search-open");
    if (event.key === "Enter") {
      event.preventDefault();
      this.run();
      first?.click();
    } else if (event.key === "ArrowDown" && first) {
      event.preventDefault();
      first.focus();
    } else if (event.key === "Escape" && this.input.value) {
      event.preventDefault();
      event.stopPropagation();
      this.input.value = "";
      this.asked += 1;
      this.clear();
    }
  }

  /** Arrow keys move between results; ArrowUp from the first goes back to the box. */
  onResultsKeydown(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...this.results.querySelectorAll(".search-open")];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    event.preventDefault();
    const next = at + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0) this.input.focus();
    else buttons[Math.min(next, buttons.length - 1)].focus();
  }
}

/** Draw a snippet's pieces: plain text nodes, and <mark> elements for the matched words (text only). */
function fillSnippet(container, pieces) {
  const fragment = document.createDocumentFragment();
  for (const piece of Array.isArray(pieces) ? pieces : []) {
    const text = String(piece && piece.text != null ? piece.text : "");
    if (piece && piece.match) {
      const mark = document.createElement("mark");
      mark.textContent = text;
      fragment.append(mark);
    } else {
      fragment.append(document.createTextNode(text));
    }
  }
  container.replaceChildren(fragment);
}
