// Files in the composer: the attach button, drag-and-drop and paste add files; each uploads with tus-js-client
// (resumable: a dropped connection or a reload goes on where it stopped) and shows as a chip with its progress,
// then its status as the server reads it. Also draws a message's attachments (thumbnails, cards) and a reply's
// sources (numbered citations that open the excerpt). Text reaches the page through textContent only.

/* global tus */

const POLL_MS = 700;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
const CHUNK_BYTES = 2 * 1024 * 1024;

/** A byte count for people. */
export function sizeText(size) {
  if (size < 1024) return `${size} bytes`;
  return size < 1024 * 1024 ? `${(size / 1024).toFixed(1)} KB` : `${(size / 1024 / 1024).toFixed(1)} MB`;
}

/** A short type label for a MIME type. */
function typeText(mime) {
  const known = { "application/pdf": "PDF", "text/plain": "Text", "text/markdown": "Markdown", "text/csv": "CSV",
    "application/json": "JSON", "text/html": "HTML", "image/jpeg": "JPEG", "image/png": "PNG" };
  if (known[mime]) return known[mime];
  return mime && mime.includes("wordprocessingml") ? "Word" : "File";
}

/** The chips of files being attached to the next message. */
export class AttachmentTray {
  /** Bind to the composer's attach button, file input and chip list; `onChange()` runs when chips change. */
  constructor({ csrf, onChange, dropTarget }) {
    this.csrf = csrf;
    this.onChange = onChange;
    this.chips = [];
    this.list = document.getElementById("composer-files");
    this.input = document.getElementById("file-input");
    document.getElementById("attach-button").addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.add([...this.input.files]);
      this.input.value = "";
    });
    dropTarget.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      dropTarget.classList.add("is-dropping");
    });
    dropTarget.addEventListener("dragleave", () => dropTarget.classList.remove("is-dropping"));
    dropTarget.addEventListener("drop", (event) => {
      dropTarget.classList.remove("is-dropping");
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
    document.getElementById("composer-input").addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (!files.length) return;
      event.preventDefault(); // a pasted screenshot becomes a chip, not text
      this.add(files);
    });
  }

  /** Start uploading each file as a chip. */
  add(files) {
    for (const file of files) this.upload(file);
    this.onChange();
  }

  /** Upload one file with tus; the chip follows its progress, then the server's reading of it. */
  upload(file) {
    const chip = { file, id: null, status: "uploading", error: "", info: null, el: this.chipElement(file) };
    this.chips.push(chip);
    this.list.append(chip.el);
    chip.upload = new tus.Upload(file, {
      endpoint: "/files",
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      headers: { "X-CSRFToken": this.csrf },
      metadata: { filename: file.name || "pasted-image.png", filetype: file.type || "" },
      onProgress: (sent, total) => this.show(chip, { progress: total ? sent / total : 1 }),
      onError: (error) => {
        const body = error.originalResponse ? error.originalResponse.getBody() : "";
        let message = "The upload failed.";
        try {
          message = JSON.parse(body).error.message || message;
        } catch (_) { /* not JSON: keep the plain sentence */ }
        this.settle(chip, "failed", message);
      },
      onSuccess: () => {
        chip.id = chip.upload.url.split("/").pop();
        chip.status = "processing";
        this.show(chip, { progress: 1 });
        this.poll(chip);
      },
    });
    chip.upload.findPreviousUploads().then((previous) => {
      if (previous.length) chip.upload.resumeFromPreviousUpload(previous[0]);
      chip.upload.start();
    });
  }

  /** Ask the server how reading the file goes until it is ready or failed. */
  poll(chip) {
    if (!this.chips.includes(chip)) return;
    fetch(`/files/${encodeURIComponent(chip.id)}/info`, { cache: "no-store" })
      .then((response) => response.json())
      .then((info) => {
        chip.info = info;
        if (info.status === "ready") this.settle(chip, "ready", "");
        else if (info.status === "failed") this.settle(chip, "failed", info.error || "This file cannot be used.");
        else setTimeout(() => this.poll(chip), POLL_MS);
      }, () => setTimeout(() => this.poll(chip), POLL_MS * 3));
  }

  /** A chip reached its end state. */
  settle(chip, status, error) {
    chip.status = status;
    chip.error = error;
    this.show(chip, { progress: 1 });
    this.onChange();
  }

  /** Build a chip: name, progress bar, status line, remove button. */
  chipElement(file) {
    const el = document.getElementById("tpl-file-chip").content.firstElementChild.cloneNode(true);
    el.querySelector(".file-chip-name").textContent = file.name || "pasted image";
    el.querySelector(".file-chip-remove").addEventListener("click", () => this.remove(el));
    return el;
  }

  /** Draw a chip's state. */
  show(chip, { progress }) {
    const bar = chip.el.querySelector("progress");
    bar.value = progress;
    bar.hidden = chip.status !== "uploading";
    chip.el.dataset.status = chip.status;
    const labels = { uploading: "Uploading…", processing: "Reading…", ready: "Ready", failed: chip.error };
    chip.el.querySelector(".file-chip-status").textContent = labels[chip.status] || "";
  }

  /** Drop a chip (and stop its upload, deleting what the server holds of an unfinished one). */
  remove(el) {
    const chip = this.chips.find((each) => each.el === el);
    if (!chip) return;
    if (chip.status === "uploading") chip.upload.abort(true).catch(() => {});
    this.chips = this.chips.filter((each) => each !== chip);
    el.remove();
    this.onChange();
  }

  /** Whether every chip has finished (ready or failed): only then can the message go. */
  settled() {
    return this.chips.every((chip) => chip.status === "ready" || chip.status === "failed");
  }

  /** The ready files, for the message: [{id, name, kind, mime, size, pages?}]. */
  ready() {
    return this.chips.filter((chip) => chip.status === "ready").map((chip) => chip.info);
  }

  /** Empty the tray after a message carried its files. */
  clear() {
    for (const chip of this.chips) chip.el.remove();
    this.chips = [];
    this.onChange();
  }
}

/** Show a message's files under its text: pictures as thumbnails (full size on click), documents as cards. */
export function setAttachments(el, attachments) {
  el.querySelector(".msg-files")?.remove();
  if (!Array.isArray(attachments) || !attachments.length) return;
  const box = document.createElement("div");
  box.className = "msg-files";
  for (const file of attachments) {
    const url = `/files/${encodeURIComponent(file.id)}`;
    const link = document.createElement("a");
    link.href = url;
    if (file.kind === "image") {
      link.className = "file-thumb";
      link.target = "_blank";
      link.rel = "noopener";
      const img = document.createElement("img");
      img.src = url;
      img.alt = file.name;
      img.loading = "lazy";
      link.append(img);
    } else {
      link.className = "file-card";
      link.download = file.name;
      const name = document.createElement("strong");
      name.textContent = file.name;
      const meta = document.createElement("span");
      meta.textContent = [typeText(file.mime), file.pages ? `${file.pages} pages` : "", sizeText(file.size || 0)]
        .filter(Boolean).join(" · ");
      link.append(name, meta);
    }
    box.append(link);
  }
  el.querySelector(".msg-bubble").append(box);
}

/** Show the excerpts a reply was given, and turn its [n] markers into links that open them beside the reply. */
export function setSources(el, sources) {
  el.querySelector(".msg-sources")?.remove();
  if (!Array.isArray(sources) || !sources.length) return;
  const details = document.createElement("details");
  details.className = "msg-sources";
  const summary = document.createElement("summary");
  summary.textContent = `Sources (${sources.length})`;
  const list = document.createElement("ol");
  const key = el.dataset.replyId || el.dataset.messageId || "reply";
  for (const source of sources) {
    const item = document.createElement("li");
    item.id = `source-${key}-${source.n}`;
    item.value = source.n;
    const where = document.createElement("strong");
    where.textContent = source.page ? `${source.name}, page ${source.page}` : source.name;
    const excerpt = document.createElement("blockquote");
    excerpt.textContent = source.excerpt || "";
    item.append(where, excerpt);
    list.append(item);
  }
  details.append(summary, list);
  el.querySelector(".msg-main").append(details);
  linkCitations(el, key, new Set(sources.map((source) => source.n)));
}

/** Replace "[n]" in the reply's text (outside code) by a link that opens source n. */
function linkCitations(el, key, numbers) {
  const body = el.querySelector(".msg-body");
  const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement.closest("code, pre, a") ? NodeFilter.FILTER_REJECT
      : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) if (/\[\d+\]/.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const parts = node.nodeValue.split(/(\[\d+\])/);
    const fragment = document.createDocumentFragment();
    for (const part of parts) {
      const n = /^\[(\d+)\]$/.exec(part);
      if (n && numbers.has(Number(n[1]))) {
        const link = document.createElement("a");
        link.className = "cite";
        link.href = `#source-${key}-${n[1]}`;
        link.textContent = part;
        link.addEventListener("click", (event) => {
          event.preventDefault();
          openSource(el, key, n[1]);
        });
        fragment.append(link);
      } else if (part) {
        fragment.append(document.createTextNode(part));
      }
    }
    node.replaceWith(fragment);
  }
}

/** Open the reply's sources at excerpt n and bring it into view. */
function openSource(el, key, n) {
  const details = el.querySelector(".msg-sources");
  details.open = true;
  for (const item of details.querySelectorAll("li")) item.classList.toggle("is-cited", item.id === `source-${key}-${n}`);
  document.getElementById(`source-${key}-${n}`)?.scrollIntoView({ block: "nearest" });
}
