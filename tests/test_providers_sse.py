"""Tests for chatbot.providers.sse's rate-limit bookkeeping and the usage helpers in base, against the fake Groq."""

from __future__ import annotations

import httpx
import pytest

from chatbot.providers.base import UpstreamError, output_tokens_per_second, ratelimit_remaining
from chatbot.providers.demo import DemoProvider
from chatbot.providers.groq import GroqProvider
from fakes.groq import DEFAULT_RATELIMIT

MESSAGES = [{"role": "user", "content": "Say hello."}]


def provider_for(fake, **options) -> GroqProvider:
    """A GroqProvider on the fake, with fast retries."""
    return GroqProvider(fake.api_key, "test-model", base_url=fake.base_url, backoff=0.01, **options)


def drain(stream) -> UpstreamError | None:
    """Iterate a stream to the end; the UpstreamError it raised, if any."""
    try:
        for _ in stream:
            pass
    except UpstreamError as exc:
        return exc
    return None


def test_chat_completion_stream_keeps_rate_limits(fake_groq):
    """The response's x-ratelimit-remaining-* headers are kept on the stream as ints."""
    stream = provider_for(fake_groq).stream(MESSAGES)
    assert stream.rate_limits == {"requests": None, "tokens": None}
    assert drain(stream) is None
    assert stream.rate_limits == DEFAULT_RATELIMIT


def test_chat_completion_stream_rate_limits_from_refusal(fake_groq):
    """A 429 that is not retried still reports its remaining counts."""
    fake_groq.script(status=429, retry_after=3600, ratelimit={"requests": 10, "tokens": 0})
    stream = provider_for(fake_groq).stream(MESSAGES)
    assert drain(stream).code == "upstream_rate_limited"
    assert stream.rate_limits == {"requests": 10, "tokens": 0}


def test_chat_completion_stream_rate_limits_follow_the_last_response(fake_groq):
    """After a retried 429 the counts are the successful response's; a count it leaves out keeps the earlier one."""
    fake_groq.script(status=429, retry_after=0.01, ratelimit={"requests": 9, "tokens": 0})
    fake_groq.script(tokens=2, ratelimit={"tokens": 4000})
    stream = provider_for(fake_groq).stream(MESSAGES)
    assert drain(stream) is None
    assert stream.rate_limits == {"requests": 9, "tokens": 4000}


def test_chat_completion_stream_without_headers(fake_groq):
    """An upstream that sends no rate-limit headers leaves the counts unknown."""
    fake_groq.ratelimit = {}
    stream = provider_for(fake_groq).stream(MESSAGES)
    assert drain(stream) is None
    assert stream.rate_limits == {"requests": None, "tokens": None}


def test_demo_stream_has_no_rate_limits():
    """Every ReplyStream has rate_limits, so the turn engine can read them whatever the provider."""
    stream = DemoProvider(token_delay=0).stream(MESSAGES)
    assert drain(stream) is None and stream.rate_limits == {"requests": None, "tokens": None}


def test_chat_completion_stream_usage_gives_speed(fake_groq):
    """Groq's usage (completion_tokens / completion_time) gives the reply's output speed."""
    fake_groq.script(tokens=10, usage={"completion_time": 0.04})
    stream = provider_for(fake_groq).stream(MESSAGES)
    assert drain(stream) is None
    assert output_tokens_per_second(stream.usage) == pytest.approx(250.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-remaining-requests": "14399", "x-ratelimit-remaining-tokens": "5999"},
         {"requests": 14399, "tokens": 5999}),
        ({"x-ratelimit-remaining-tokens": "12.0"}, {"requests": None, "tokens": 12}),
        ({"x-ratelimit-remaining-requests": "lots", "x-ratelimit-remaining-tokens": "-3"},
         {"requests": None, "tokens": 0}),
        ({}, {"requests": None, "tokens": None}),
    ],
)
def test_ratelimit_remaining_reads(headers, expected):
    """Counts are read as non-negative ints; missing or garbled headers are None."""
    assert ratelimit_remaining(httpx.Headers(headers)) == expected


@pytest.mark.parametrize(
    ("usage", "speed"),
    [
        ({"completion_tokens": 500, "completion_time": 1.0}, 500.0),
        ({"completion_tokens": 0, "completion_time": 1.0}, None),
        ({"completion_tokens": 10, "completion_time": 0}, None),
        ({"completion_tokens": 10}, None),
        ({"completion_tokens": "10", "completion_time": 1.0}, None),
        (None, None),
    ],
)
def test_output_tokens_per_second_reads(usage, speed):
    """Speed needs positive token and time figures from the upstream."""
    assert output_tokens_per_second(usage) == speed
