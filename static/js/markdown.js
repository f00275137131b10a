// Model output -> safe DOM. Model text is untrusted: marked turns Markdown into HTML with raw HTML escaped,
// DOMPurify sanitizes that HTML (allow-list below), then the result is parsed inside an inert <template> where
// remote images become links and links get target/rel, before anything touches the live document.

/* global marked, DOMPurify, hljs */

const ALLOWED_TAGS = [
  "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "s", "code", "pre",
  "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "img", "span", "sup", "sub", "kbd",
];
const ALLOWED_ATTR = ["href", "src", "alt", "title", "class", "align", "start", "colspan", "rowspan"];
// Belt and braces: even if a future allow-list change let these in, they stay out.
const FORBID_TAGS = ["style", "script", "form", "input", "button", "textarea", "select", "iframe", "frame", "object",
  "embed", "link", "meta", "base", "svg", "math", "video", "audio", "source", "track", "picture"];
const FORBID_ATTR = ["style", "srcset", "background", "poster", "ping", "action", "formaction", "xlink:href"];
const LANGUAGE_CLASS = /^language-[\w+#.-]{1,40}$/;

let configured = false;

/** Escape text for HTML (used for raw HTML in model output, which is shown, never run). */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Configure marked and DOMPurify once (both are page-wide singletons). */
function configure() {
  if (configured) return;
  configured = true;
  marked.use({
    gfm: true,
    breaks: true,
    renderer: {
      // Raw HTML from the model is displayed as text: nobody asked it for markup, and it cannot surprise us.
      html({ text }) {
        return escapeHtml(text);
      },
      // Task-list checkboxes would be <input>s; a glyph says the same without a form control.
      checkbox({ checked }) {
        return checked ? "☑ " : "☐ ";
      },
    },
  });
  DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    // Only highlight.js language hints may carry a class, so model output cannot borrow the page's own styles.
    if (data.attrName === "class" && !LANGUAGE_CLASS.test(data.attrValue)) data.keepAttr = false;
  });
}

/** Return true when a URL (relative or absolute) points at this page's origin. */
function isSameOrigin(url) {
  try {
    return new URL(url, window.location.href).origin === window.location.origin;
  } catch (_) {
    return false;
  }
}

/** Replace every image that is not same-origin with a link (or plain text), so nothing remote is fetched. */
function neutraliseImages(root) {
  for (const img of root.querySelectorAll("img")) {
    const src = img.getAttribute("src") || "";
    if (src && isSameOrigin(src)) continue;
    const label = img.getAttribute("alt") || src || "image";
    let replacement;
    let url = null;
    try {
      url = new URL(src, window.location.href);
    } catch (_) {
      url = null;
    }
    if (url && (url.protocol === "https:" || url.protocol === "http:")) {
      replacement = document.createElement("a");
      replacement.href = url.href;
      replacement.className = "remote-image";
    } else {
      replacement = document.createElement("span");
    }
    replacement.textContent = `🖼 ${label}`;
    img.replaceWith(replacement);
  }
}

/** Make every link open in a new tab without handing the page (or the referrer) to the target. */
function hardenLinks(root) {
  for (const link of root.querySelectorAll("a")) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
}

/** Turn untrusted Markdown into a sanitized DocumentFragment ready to insert. */
export function renderMarkdown(text) {
  configure();
  const html = marked.parse(text, { async: false });
  const clean = DOMPurify.sanitize(html, {
    ALLOWED_TAGS, ALLOWED_ATTR, FORBID_TAGS, FORBID_ATTR, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false,
  });
  // Template content is inert: images inside it are not fetched while we rewrite them.
  const template = document.createElement("template");
  template.innerHTML = clean;
  neutraliseImages(template.content);
  hardenLinks(template.content);
  return template.content;
}

/** Return the language named by a code element's `language-*` class, if highlight.js knows it. */
function knownLanguage(code) {
  for (const name of code.classList) {
    if (name.startsWith("language-")) {
      const language = name.slice("language-".length);
      if (hljs.getLanguage(language)) return language;
      code.classList.remove(name); // unknown: let highlight.js guess rather than warn
    }
  }
  return null;
}

/** Wrap each code block with a language label and a copy button, and highlight it (now or when visible). */
export function decorateCodeBlocks(root, { lazy = false } = {}) {
  const toolsTemplate = document.getElementById("tpl-code-tools");
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    if (!code || pre.parentElement?.classList.contains("code-block")) continue;
    const language = knownLanguage(code);
    const block = document.createElement("div");
    block.className = "code-block";
    pre.replaceWith(block);
    const tools = toolsTemplate.content.firstElementChild.cloneNode(true);
    tools.querySelector(".code-lang").textContent = language || "code";
    block.append(tools, pre);
    if (lazy) highlightWhenVisible(code);
    else highlightCode(code);
  }
}

/** Highlight one code element with highlight.js (its text content only; hljs escapes it). */
function highlightCode(code) {
  if (code.dataset.highlighted) return;
  hljs.highlightElement(code);
}

let observer = null;

/** Defer highlighting of history code blocks until they scroll into view (long conversations stay fast). */
function highlightWhenVisible(code) {
  if (!("IntersectionObserver" in window)) {
    highlightCode(code);
    return;
  }
  if (!observer) {
    observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        highlightCode(entry.target);
      }
    }, { rootMargin: "400px 0px" });
  }
  observer.observe(code);
}

/** Copy text to the clipboard, falling back to a hidden textarea where the async API is unavailable. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // permission denied (e.g. not focused): try the legacy path below
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "clipboard-helper";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {
    ok = false;
  }
  area.remove();
  return ok;
}

/** Configure highlight.js: we only hand it text, so its unescaped-HTML warning is noise. */
export function setupHighlighting() {
  hljs.configure({ ignoreUnescapedHTML: true });
}
