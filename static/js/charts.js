// Usage charts (admin page: every model and account; account page: one's own): replies, tokens and tool calls per
// day over 30 days, drawn with uPlot from the JSON at the section's data-usage-url, with a table of the same figures below.
// Names (models, accounts) reach the page as text only.

/* global uPlot */

const COLORS = ["#5b4bd6", "#d9480f", "#2b8a3e", "#c2185b", "#1971c2", "#e67700", "#5f3dc4", "#087f5b"];

/** Seconds since 1970 for each ISO day (uPlot's x axis). */
function xs(days) {
  return days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
}

/** One line chart of `metric` ("messages" | "tokens" | "tool_calls") for every series of a group
 * ({name: {messages, tokens, tool_calls}}). */
function drawChart(container, title, days, group, metric) {
  const names = Object.keys(group).sort();
  const heading = document.createElement("h3");
  heading.className = "chart-title";
  heading.textContent = title;
  const box = document.createElement("div");
  box.className = "chart-box";
  container.append(heading, box);
  if (!names.length) {
    box.textContent = "Nothing yet.";
    return;
  }
  const width = Math.max(280, Math.min(container.clientWidth || 640, 900));
  const options = {
    width, height: 220,
    series: [{}, ...names.map((name, n) => ({ label: name, stroke: COLORS[n % COLORS.length], width: 2 }))],
    axes: [{}, { size: 60 }],
    scales: { x: { time: true } },
  };
  new uPlot(options, [xs(days), ...names.map((name) => group[name][metric] || days.map(() => 0))], box);
}

/** The table below the charts: one row per series with its 30-day totals. */
function drawTable(container, rows) {
  const table = document.createElement("table");
  table.className = "admin-table chart-table";
  const head = table.createTHead().insertRow();
  for (const label of ["", "Replies (30 days)", "Tokens (30 days)", "Tool calls (30 days)"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = label;
    head.append(th);
  }
  const body = table.createTBody();
  for (const [kind, name, figures] of rows) {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = `${kind}: ${name}`;
    row.append(th);
    for (const metric of ["messages", "tokens", "tool_calls"]) {
      row.insertCell().textContent = (figures[metric] || []).reduce((a, b) => a + b, 0).toLocaleString();
    }
  }
  container.append(table);
}

/** Read the figures and draw every chart of one section. */
async function drawSection(section) {
  const response = await fetch(section.dataset.usageUrl, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    section.querySelector(".charts-status").textContent = "The figures could not be read.";
    return;
  }
  const data = await response.json();
  const charts = section.querySelector(".charts");
  charts.replaceChildren();
  const hasModels = Object.keys(data.models || {}).length > 0 || section.dataset.scope === "all";
  if (hasModels) {
    drawChart(charts, "Tokens per day, by model", data.days, data.models || {}, "tokens");
    drawChart(charts, "Replies per day, by model", data.days, data.models || {}, "messages");
    drawChart(charts, "Tool calls per day, by model", data.days, data.models || {}, "tool_calls");
  }
  const all = section.dataset.scope === "all";
  drawChart(charts, all ? "Tokens per day, by account" : "Your tokens per day", data.days, data.users || {}, "tokens");
  drawChart(charts, all ? "Tool calls per day, by account" : "Your tool calls per day", data.days, data.users || {},
    "tool_calls");
  const rows = [...Object.entries(data.models || {}).map(([n, f]) => ["Model", n, f]),
    ...Object.entries(data.users || {}).map(([n, f]) => ["Account", n, f])];
  drawTable(charts, rows);
  const status = section.querySelector(".charts-status");
  if (data.daily_tokens !== undefined) {
    const mine = Object.values(data.users || {})[0];
    const today = mine ? mine.tokens[mine.tokens.length - 1] : 0;
    const calls = mine && mine.tool_calls ? mine.tool_calls[mine.tool_calls.length - 1] : 0;
    const tools = ` ${calls.toLocaleString()} tool call${calls === 1 ? "" : "s"} today.`;
    status.textContent = (data.daily_tokens
      ? `Today: ${today.toLocaleString()} of your ${data.daily_tokens.toLocaleString()} daily tokens.`
      : `Today: ${today.toLocaleString()} tokens (no daily limit).`) + tools;
  } else {
    status.textContent = "";
  }
  section.dataset.ready = "true";
}

for (const section of document.querySelectorAll("[data-usage-url]")) drawSection(section);
