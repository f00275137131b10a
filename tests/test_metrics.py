"""Tests for chatbot.metrics: every method shows in the rendered scrape, parsed back with prometheus' own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatbot.metrics import OUTCOMES, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    """The rendered scrape as {(sample name, sorted labels): value}."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain") and isinstance(body, bytes)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_metrics_render_starts_with_outcomes_at_zero():
    """A fresh Metrics renders every family; reply outcomes are there at 0 before any reply."""
    scraped = samples(Metrics())
    for outcome in OUTCOMES:
        assert scraped[("chatbot_replies_total", (("outcome", outcome),))] == 0
    assert scraped[("chatbot_connections_total", ())] == 0
    assert scraped[("chatbot_connected_sockets", ())] == 0


def test_metrics_reply_finished_fills_histograms_by_model():
    """A finished reply counts its outcome and lands in the three histograms of its model."""
    metrics = Metrics()
    metrics.reply_finished("openai/gpt-oss-120b", "complete", ttft=0.25, duration=2.5, tokens_per_second=480.0)
    metrics.reply_finished("openai/gpt-oss-120b", "stopped", ttft=0.4, duration=1.0)
    metrics.reply_finished("groq/compound", "error")
    scraped = samples(metrics)
    model = (("model", "openai/gpt-oss-120b"),)
    assert scraped[("chatbot_replies_total", (("outcome", "complete"),))] == 1
    assert scraped[("chatbot_replies_total", (("outcome", "stopped"),))] == 1
    assert scraped[("chatbot_replies_total", (("outcome", "error"),))] == 1
    assert scraped[("chatbot_time_to_first_token_seconds_count", model)] == 2
    assert scraped[("chatbot_time_to_first_token_seconds_sum", model)] == pytest.approx(0.65)
    assert scraped[("chatbot_time_to_first_token_seconds_bucket", (("le", "0.3"), *model))] == 1
    assert scraped[("chatbot_reply_duration_seconds_sum", model)] == pytest.approx(3.5)
    assert scraped[("chatbot_output_tokens_per_second_count", model)] == 1
    assert scraped[("chatbot_output_tokens_per_second_bucket", (("le", "500.0"), *model))] == 1
    assert ("chatbot_time_to_first_token_seconds_count", (("model", "groq/compound"),)) not in scraped


@pytest.mark.parametrize("outcome", ["done", "", "COMPLETE"])
def test_metrics_reply_finished_refuses_unknown_outcome(outcome):
    """Outcomes are a fixed set, so a typo cannot invent a label value."""
    with pytest.raises(ValueError, match="outcome"):
        Metrics().reply_finished("m", outcome)


def test_metrics_counts_errors_refusals_and_connections():
    """Upstream errors by code, our refusals by kind, and connections are counted."""
    metrics = Metrics()
    metrics.upstream_error("upstream_rate_limited")
    metrics.upstream_error("upstream_rate_limited")
    metrics.upstream_error("upstream_auth")
    for kind in ("message", "ip", "busy"):
        metrics.rate_limited(kind)
    metrics.connection_opened()
    scraped = samples(metrics)
    assert scraped[("chatbot_upstream_errors_total", (("code", "upstream_rate_limited"),))] == 2
    assert scraped[("chatbot_upstream_errors_total", (("code", "upstream_auth"),))] == 1
    assert scraped[("chatbot_rate_limited_total", (("kind", "busy"),))] == 1
    assert scraped[("chatbot_connections_total", ())] == 1


def test_metrics_gauges_read_callbacks_at_scrape():
    """Connected sockets and replies in flight are read from the app's callbacks each time it is scraped."""
    counts = {"sockets": 3, "replies": 1}
    metrics = Metrics()
    metrics.track(connected_sockets=lambda: counts["sockets"], replies_in_flight=lambda: counts["replies"])
    assert samples(metrics)[("chatbot_connected_sockets", ())] == 3
    counts.update(sockets=5, replies=0)
    scraped = samples(metrics)
    assert scraped[("chatbot_connected_sockets", ())] == 5 and scraped[("chatbot_replies_in_flight", ())] == 0


def test_metrics_upstream_ratelimit_keeps_last_reported():
    """Remaining requests/tokens are gauges; a count a response did not report keeps its last value."""
    metrics = Metrics()
    metrics.upstream_ratelimit(requests=14399, tokens=5999)
    metrics.upstream_ratelimit(requests=None, tokens=120)
    scraped = samples(metrics)
    assert scraped[("chatbot_upstream_ratelimit_remaining", (("kind", "requests"),))] == 14399
    assert scraped[("chatbot_upstream_ratelimit_remaining", (("kind", "tokens"),))] == 120


def test_metrics_apps_have_their_own_registries():
    """Two Metrics never share numbers (and creating the second does not clash with the first)."""
    first, second = Metrics(), Metrics()
    first.connection_opened()
    assert samples(first)[("chatbot_connections_total", ())] == 1
    assert samples(second)[("chatbot_connections_total", ())] == 0


def test_metrics_tool_calls_by_tool_and_outcome_with_latency():
    """Tool steps are counted by tool and outcome; the ones we ran record their latency."""
    metrics = Metrics()
    metrics.tool_call("mcp:orders/lookup_order", "done", 0.2)
    metrics.tool_call("mcp:orders/lookup_order", "error", 3.0)
    metrics.tool_call("web_search", "done")
    scraped = samples(metrics)
    assert scraped[("chatbot_tool_calls_total", (("outcome", "done"), ("tool", "mcp:orders/lookup_order")))] == 1
    assert scraped[("chatbot_tool_calls_total", (("outcome", "error"), ("tool", "mcp:orders/lookup_order")))] == 1
    assert scraped[("chatbot_tool_calls_total", (("outcome", "done"), ("tool", "web_search")))] == 1
    assert scraped[("chatbot_tool_call_seconds_count", (("tool", "mcp:orders/lookup_order"),))] == 2
    assert ("chatbot_tool_call_seconds_count", (("tool", "web_search"),)) not in scraped
