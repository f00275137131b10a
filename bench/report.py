"""The report of `make bench`: markdown tables with the relays' figures and ratios, the targets, BENCHMARKS.md."""

from __future__ import annotations

import math
from pathlib import Path

from common import fmt, machine_lines, markdown_table

MARKER = "<!-- Everything below this line is written by `make bench` (bench/run.py); edit above it. -->"
TARGET_MODES = ("eventlet", "gevent")


def _value(value) -> float:
    """A number from a row cell (NaN for missing)."""
    return math.nan if value is None else float(value)


def _ratio(a, b) -> str:
    """a / b with a multiplication sign, n/a when either is missing."""
    a, b = _value(a), _value(b)
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}×"


def _diff(a, b, digits: int = 1) -> str:
    """a − b, signed."""
    a, b = _value(a), _value(b)
    return "n/a" if math.isnan(a) or math.isnan(b) else f"{a - b:+,.{digits}f}"


def _problems(row: dict) -> str:
    """lost/duplicated/corrupted (and failed connections), or 'none'."""
    if row.get("error"):
        return "ERROR"
    parts = [f"{row[k]} {k}" for k in ("lost", "duplicated", "corrupted", "failures") if row.get(k)]
    return ", ".join(parts) or "none"


def _pct(row: dict, key: str) -> str:
    """A CPU share column (% of one core)."""
    return fmt(_value(row.get(key)), 0)


class Rows:
    """The rows of one run, looked up by scenario, mode, implementation and level."""

    def __init__(self, rows: list[dict]):
        """Keep the rows."""
        self.rows = rows

    def of(self, scenario: str) -> list[dict]:
        """The rows of one scenario, without failed ones."""
        return [r for r in self.rows if r["scenario"] == scenario and not r.get("error")]

    def find(self, scenario: str, mode: str, impl: str, **level) -> dict:
        """The row for a scenario, mode, implementation (and level), or an empty dict."""
        for row in self.of(scenario):
            if row["mode"] == mode and row["impl"] == impl and all(row.get(k) == v for k, v in level.items()):
                return row
        return {}


def streams_table(rows: Rows) -> str:
    """Concurrent long streams."""
    lines = []
    for r in rows.of("streams"):
        bare = rows.find("streams", r["mode"], "bare", streams=r["streams"])
        naive = rows.find("streams", r["mode"], "naive", streams=r["streams"])
        server = r["impl"] == "server"
        lines.append([r["mode"], r["streams"], r["impl"], r["replies"], fmt(r["first_ms_p50"]), fmt(r["first_ms_p99"]),
                      fmt(r["full_ms_p50"], 0), fmt(r["full_ms_p99"], 0), fmt(r["cpu_us_token"]),
                      _ratio(r["cpu_us_token"], bare.get("cpu_us_token")) if server else "",
                      _ratio(r["cpu_us_token"], naive.get("cpu_us_token")) if server else "",
                      fmt(r["events"], 1), fmt(r["bytes"], 0), fmt(r["rss_mb"], 1), _pct(r, "server_pct"),
                      _pct(r, "fake_pct"), _pct(r, "loadgen_pct"), _pct(r, "pressure_pct"), _problems(r)])
    return markdown_table(["mode", "streams", "impl", "replies", "first text p50 ms", "p99", "full reply p50 ms", "p99",
                           "CPU µs/token", "÷ bare", "÷ naive", "events/reply", "bytes/reply", "RSS MB", "server %",
                           "fake %", "loadgen %", "pressure %", "problems"], lines)


def turns_table(rows: Rows) -> str:
    """Tiny turns."""
    lines = []
    for r in rows.of("turns"):
        bare = rows.find("turns", r["mode"], "bare")
        server = r["impl"] == "server"
        lines.append([r["mode"], r["impl"], f"{r['clients']} × {r['turns']}", fmt(r["first_ms_p50"]),
                      fmt(r["first_ms_p99"]), _diff(r["first_ms_p50"], bare.get("first_ms_p50")) if server else "",
                      fmt(r["full_ms_p50"]), fmt(r["cpu_ms_turn"], 2),
                      _ratio(r["cpu_ms_turn"], bare.get("cpu_ms_turn")) if server else "", fmt(r["events"], 1),
                      fmt(r["bytes"], 0), _pct(r, "server_pct"), _pct(r, "loadgen_pct"), _pct(r, "pressure_pct"),
                      _problems(r)])
    return markdown_table(["mode", "impl", "clients × turns", "first text p50 ms", "p99", "p50 − bare",
                           "full reply p50 ms", "CPU ms/turn", "÷ bare", "events/turn", "bytes/turn", "server %",
                           "loadgen %", "pressure %", "problems"], lines)


def burst_table(rows: Rows) -> str:
    """A burst of new connections."""
    lines = []
    for r in rows.of("burst"):
        bare = rows.find("burst", r["mode"], "bare")
        server = r["impl"] == "server"
        lines.append([r["mode"], r["impl"], f"{r['connections']} in {r['window_s']:g} s", r["connected"],
                      r["connections"] - r["connected"], fmt(r["connect_ms_p50"]), fmt(r["connect_ms_p99"]),
                      fmt(r["connect_ms_max"]), fmt(r["cpu_ms_conn"], 2),
                      _ratio(r["cpu_ms_conn"], bare.get("cpu_ms_conn")) if server else "", _pct(r, "server_pct"),
                      _pct(r, "loadgen_pct"), _pct(r, "pressure_pct"), _problems(r)])
    return markdown_table(["mode", "impl", "burst", "connected", "failed", "time to connect p50 ms", "p99", "max",
                           "CPU ms/connection", "÷ bare", "server %", "loadgen %", "pressure %", "problems"], lines)


def idle_table(rows: Rows) -> str:
    """Idle sockets held open."""
    lines = []
    for r in rows.of("idle"):
        bare = rows.find("idle", r["mode"], "bare")
        server = r["impl"] == "server"
        lines.append([r["mode"], r["impl"], r["sockets"], r["connected"], fmt(r["kb_socket"]),
                      fmt(r["kb_socket_1000"]) if r["sockets"] != 1000 else "",
                      _diff(r["kb_socket"], bare.get("kb_socket")) if server else "", fmt(r["connect_ms_socket"], 2),
                      _ratio(r["connect_ms_socket"], bare.get("connect_ms_socket")) if server else "",
                      fmt(r["idle_us_socket_s"], 2), fmt(r["rss_mb"], 1), _pct(r, "loadgen_pct"), _problems(r)])
    return markdown_table(["mode", "impl", "sockets", "connected", "KB/socket", "KB/socket at 1,000", "− bare KB",
                           "connect CPU ms/socket", "÷ bare", "idle CPU µs/socket/s", "RSS MB", "loadgen %",
                           "problems"], lines)


def storm_table(rows: Rows) -> str:
    """The reconnect storm."""
    lines = []
    for r in rows.of("storm"):
        lines.append([r["mode"], r["impl"], r["clients"], r["back"], fmt(r["connected_p50_s"], 2),
                      fmt(r["connected_max_s"], 2), fmt(r["first_back_s"], 2), fmt(r["back_p50_s"], 2),
                      fmt(r["back_p99_s"], 2), fmt(r["all_back_s"], 2), r["same_session"], fmt(r["attempts"], 1),
                      fmt(r["server_cpu_s"], 2), _pct(r, "loadgen_pct"), _problems(r)])
    return markdown_table(["mode", "impl", "clients", "back", "reconnected p50 s", "max", "back and chatting: first s",
                           "p50 s", "p99 s", "all s", "same session", "attempts", "new process CPU s", "loadgen %",
                           "problems"], lines)


def _check(value: float, ok: bool, text: str) -> str:
    """A measured figure with ✓ or ✗ (or n/a)."""
    return "n/a" if math.isnan(value) else f"{text} {'✓' if ok else '✗'}"


def targets_table(args, rows: Rows) -> str:
    """The issue's targets, per async mode: measured against the relays in this run."""
    level = 50 if 50 in args.streams else max(args.streams)
    lines = []

    def add(name: str, threshold: str, measure) -> None:
        lines.append([name, *(measure(mode) for mode in TARGET_MODES), threshold])

    def ratio_target(scenario: str, key: str, against: str, limit: float, **lvl):
        def measure(mode: str) -> str:
            a = _value(rows.find(scenario, mode, "server", **lvl).get(key))
            b = _value(rows.find(scenario, mode, against, **lvl).get(key))
            value = a / b if b else math.nan
            return _check(value, value <= limit, f"{value:.2f}×")
        return measure

    def first_text(mode: str) -> str:
        value = _value(rows.find("turns", mode, "server").get("first_ms_p50")) - _value(
            rows.find("turns", mode, "bare").get("first_ms_p50"))
        return _check(value, value <= 30, f"{value:+.1f} ms")

    def burst_all(mode: str) -> str:
        row = rows.find("burst", mode, "server")
        if not row:
            return "n/a"
        failed = row["connections"] - row["connected"]
        text = f"{failed} failed, p99 {fmt(row['connect_ms_p99'])} ms"
        return _check(0.0, failed == 0 and row["window_s"] <= 5, text)

    def idle_rss(mode: str) -> str:
        value = _value(rows.find("idle", mode, "server").get("kb_socket")) - _value(
            rows.find("idle", mode, "bare").get("kb_socket"))
        return _check(value, value <= 10, f"{value:+.1f} KB")

    def storm_back(mode: str) -> str:
        row = rows.find("storm", mode, "server")
        if not row:
            return "n/a"
        value = _value(row["all_back_s"])
        if math.isnan(value):
            return f"{row['back']}/{row['clients']} back ✗"
        return _check(value, value <= 8, f"{value:.2f} s")

    def whole(mode: str) -> str:
        mine = [r for r in rows.rows if r["mode"] == mode and r["impl"] == "server"]
        if not mine:
            return "n/a"
        bad = sum(r.get(k, 0) for r in mine for k in ("lost", "duplicated", "corrupted"))
        errors = sum(1 for r in mine if r.get("error"))
        return _check(0.0, bad == 0 and errors == 0, f"{bad} bad replies" + (f", {errors} errors" if errors else ""))

    add("per-turn server CPU ÷ bare (tiny turns)", "≤ 1.5×", ratio_target("turns", "cpu_ms_turn", "bare", 1.5))
    add("first text p50 − bare (tiny turns)", "≤ +30 ms", first_text)
    add(f"burst of {args.burst} in {args.burst_window:g} s: all connect", "0 failed", burst_all)
    add("CPU per connection ÷ bare (burst)", "≤ 1.5×", ratio_target("burst", "cpu_ms_conn", "bare", 1.5))
    add("CPU per connection ÷ bare (idle sockets' connects)", "≤ 1.5×",
        ratio_target("idle", "connect_ms_socket", "bare", 1.5))
    add(f"RSS per idle socket at {args.idle:,} − bare's at {args.idle_baseline:,}", "≤ +10 KB", idle_rss)
    add(f"reconnect storm of {args.storm}: all back and chatting", "≤ 8 s", storm_back)
    add(f"CPU per token ÷ naive at {level} streams", "≤ 0.25×",
        ratio_target("streams", "cpu_us_token", "naive", 0.25, streams=level))
    add("nothing lost, duplicated or corrupted (real server, all scenarios)", "0", whole)
    return markdown_table(["target", *TARGET_MODES, "threshold"], lines)


def render(args, rows: list[dict], seconds: float) -> str:
    """The whole generated section."""
    table = Rows(rows)
    upstream = (args.tokens - 1) * args.delay * 1000
    out = ["## Results" + (" (QUICK smoke run: small counts, not the real figures)" if args.quick else ""), ""]
    out += [f"- {line}" for line in machine_lines()]
    out += [f"- Run: `{' '.join(['bench/run.py', *args.argv])}`, {seconds / 60:.1f} min; modes "
            f"{', '.join(args.modes)}; real server settings: defaults"
            + (", " + ", ".join(f"{k}={v}" for k, v in args.set.items()) if args.set else "")
            + f"; SQLite in {args.db_dir or 'a temp dir'}; websocket compression {'on' if args.deflate else 'off'}",
            ""]
    sections = [
        ("streams", f"### Concurrent streams: {args.tokens} tokens {args.delay * 1000:g} ms apart (upstream time "
                    f"{upstream:.0f} ms)", streams_table),
        ("turns", f"### Tiny turns: {args.turn_clients} clients × {args.turns} turns of {args.tiny_tokens} tokens, "
                  "one after the other per client", turns_table),
        ("burst", f"### Burst: {args.burst} new connections spread over {args.burst_window:g} s", burst_table),
        ("idle", f"### Idle sockets: {args.idle:,} on the real server, {args.idle_baseline:,} on the relays, held "
                 f"{args.idle_hold:g} s", idle_table),
        ("storm", f"### Reconnect storm: {args.storm} clients, target killed with -9 and restarted at once",
         storm_table),
    ]
    for scenario, title, table_of in sections:
        if scenario in args.only:
            out += [title, "", table_of(table), ""]
    out += ["### Targets (real server vs the relays, same run)", "", targets_table(args, table), ""]
    errors = [f"- {r['scenario']} / {r['impl']} ({r['mode']}): {r['error']}" for r in rows if r.get("error")]
    notes = [f"- {r['scenario']} / {r['impl']} ({r['mode']}): {note}" for r in rows for note in r.get("notes", [])]
    if errors or notes:
        out += ["### Problems", "", *errors, *notes[:40], ""]
    return "\n".join(out)


def write_benchmarks(path: Path, report: str) -> None:
    """Replace the generated part of `path`, keeping the hand-written text above the marker."""
    text = path.read_text() if path.exists() else ""
    intro = text.split(MARKER)[0].rstrip() if MARKER in text else "# Benchmarks\n\nSee bench/README.md."
    path.write_text(f"{intro}\n\n{MARKER}\n\n{report}\n")
