// The shared page: the server sent each message's stored text, escaped. Assistant text is Markdown: render it
// through the chat's own sanitizer (marked + DOMPurify, remote images turned into links), exactly as the chat does.

import { copyText, decorateCodeBlocks, renderMarkdown, setupHighlighting } from "./markdown.js";

/** Render every assistant message's Markdown in place, and wire the code blocks' copy buttons. */
function renderShared() {
  setupHighlighting();
  for (const body of document.querySelectorAll("[data-markdown]")) {
    const text = body.textContent;
    body.replaceChildren(renderMarkdown(text));
    decorateCodeBlocks(body, { lazy: true });
  }
  document.getElementById("message-list").addEventListener("click", async (event) => {
    const button = event.target.closest(".code-copy");
    if (!button) return;
    const code = button.closest(".code-block")?.querySelector("code");
    if (code && (await copyText(code.textContent))) {
      button.querySelector(".code-copy-text").textContent = "Copied";
    }
  });
  for (const time of document.querySelectorAll("time[datetime]")) {
    const date = new Date(time.dateTime);
    if (!Number.isNaN(date.getTime())) time.textContent = date.toLocaleString();
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderShared);
else renderShared();
