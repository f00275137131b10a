// Light/dark theme: follows prefers-color-scheme until the person picks one with the toggle; the pick is
// remembered in localStorage. Loaded as a classic blocking script in <head> so the first paint is right.
(function () {
  "use strict";

  const STORAGE_KEY = "chatbotws.theme";
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

  /** Return the stored choice ("light" | "dark") or null when the person never chose. */
  function storedTheme() {
    try {
      const value = localStorage.getItem(STORAGE_KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (_) {
      return null; // storage can be disabled (privacy mode); the system preference still works
    }
  }

  /** Return the theme in force: the stored choice, else the system preference. */
  function currentTheme() {
    return storedTheme() || (systemDark.matches ? "dark" : "light");
  }

  /** Apply a theme to the root element, the highlight.js stylesheets and the toggle button. */
  function apply(theme) {
    document.documentElement.dataset.theme = theme;
    const light = document.getElementById("hljs-light");
    const dark = document.getElementById("hljs-dark");
    // Media queries rather than `disabled`, so a stylesheet never ends up off in both themes.
    if (light) light.media = theme === "light" ? "all" : "not all";
    if (dark) dark.media = theme === "dark" ? "all" : "not all";
    const toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.setAttribute("aria-pressed", String(theme === "dark"));
      toggle.title = theme === "dark" ? "Switch to the light theme" : "Switch to the dark theme";
    }
  }

  /** Flip the theme and remember the choice. */
  function toggle() {
    const next = currentTheme() === "dark" ? "light" : "dark";
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch (_) {
      // not remembered, but still applied for this visit
    }
    apply(next);
  }

  apply(currentTheme());
  systemDark.addEventListener("change", () => apply(currentTheme()));
  document.addEventListener("DOMContentLoaded", () => {
    apply(currentTheme());
    const button = document.getElementById("theme-toggle");
    if (button) button.addEventListener("click", toggle);
  });
})();
