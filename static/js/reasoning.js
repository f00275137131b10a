// A reply's reasoning (the model's thinking, streamed before its answer) in a foldable block above the answer,
// and the discreet usage line under a finished reply. Rendered through the same sanitizer as answers.

import { renderMarkdown } from "./markdown.js";

/** Show a reply's reasoning; while `live` (no answer yet) the block is open and says "Thinking…". */
export function showReasoning(el, text, { live = false } = {}) {
  const box = el.querySelector(".msg-thinking");
  if (!box) return;
  box.hidden = !text;
  if (!text) return;
  box.querySelector(".msg-thinking-body").replaceChildren(renderMarkdown(text));
  if (live) {
    box.open = true;
    box.classList.add("is-live");
    box.querySelector(".msg-thinking-label").textContent = "Thinking…";
  }
}

/** Fold the reasoning once the answer starts: "Thought for 2.1 s" (or just "Thoughts" when not timed here). */
export function foldReasoning(el, seconds = null) {
  const box = el.querySelector(".msg-thinking");
  if (!box || box.hidden || !box.classList.contains("is-live") && box.dataset.folded) return;
  box.classList.remove("is-live");
  box.open = false;
  box.dataset.folded = "1";
  box.querySelector(".msg-thinking-label").textContent =
    seconds != null ? `Thought for ${seconds.toFixed(1)} s` : "Thoughts";
}

/** "412 tokens · 498 tok/s · first token 0.21 s" from a reply's usage and speed (empty when unknown). */
export function usageText(usage, speed) {
  const parts = [];
  const tokens = usage && Number(usage.completion_tokens);
  if (tokens > 0) parts.push(`${tokens.toLocaleString()} token${tokens === 1 ? "" : "s"}`);
  const rate = speed && Number(speed.tokens_per_second);
  if (rate > 0) parts.push(`${Math.round(rate).toLocaleString()} tok/s`);
  const ttft = speed && speed.ttft;
  if (ttft != null && Number(ttft) >= 0) parts.push(`first token ${Number(ttft).toFixed(2)} s`);
  return parts.join(" · ");
}

/** Show (or hide) the usage line under a reply; the model that wrote it goes in its tooltip. */
export function setUsage(el, usage, speed, model = null) {
  const line = el.querySelector(".msg-usage");
  if (!line) return;
  const text = usageText(usage, speed);
  line.textContent = text;
  line.hidden = !text;
  line.title = model ? `Written by ${model}` : "";
}
