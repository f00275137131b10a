"""The pooled transport under the SDK clients: requests go round several connection pools."""

from __future__ import annotations

import httpx
import pytest

from chatbot.providers.transport import PooledTransport


class CountingPool(httpx.BaseTransport):
    """A stand-in pool that answers every request and counts what it was given."""

    def __init__(self):
        self.requests: list[str] = []
        self.closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        return httpx.Response(200, text="ok")

    def close(self) -> None:
        self.closed = True


def test_requests_go_round_the_pools_made_on_first_use():
    made: list[CountingPool] = []

    def factory():
        made.append(CountingPool())
        return made[-1]

    transport = PooledTransport(3, factory=factory)
    with httpx.Client(transport=transport, base_url="http://upstream") as client:
        assert client.get("/a").text == "ok"
        assert len(made) == 1  # no pool is made before it is needed
        for path in ("/b", "/c", "/d", "/e"):
            client.get(path)
    assert [pool.requests for pool in made] == [["/a", "/d"], ["/b", "/e"], ["/c"]]
    assert all(pool.closed for pool in made)  # closing the client closes every pool


def test_pools_must_be_positive():
    with pytest.raises(ValueError):
        PooledTransport(0)


def test_real_pools_stream_from_a_loopback_server(fake_groq):
    """The default pools (real HTTPTransports) carry the SDK's streamed completions."""
    from chatbot.providers.groq import GroqProvider

    provider = GroqProvider(fake_groq.api_key, "test-model", base_url=fake_groq.base_url)
    transport = provider._client._client._transport
    assert isinstance(transport, PooledTransport)
    try:
        texts = ["".join(delta.text for delta in provider.stream([{"role": "user", "content": f"hi {n}"}]))
                 for n in range(3)]
        assert sum(pool is not None for pool in transport._pools) == 3  # one request each in three pools
    finally:
        provider.close()
    assert all(texts) and len(set(texts)) == 1


@pytest.mark.parametrize("sdk", ["groq", "openai"])
def test_provider_works_out_the_sdk_platform_headers_once_when_built(sdk, fake_groq):
    """The SDK's first request runs `uname -p` in a subprocess, and so does every request started before it ends
    (a herd of them after a restart): the provider does it once, when built."""
    import groq._base_client
    import openai._base_client

    from chatbot.providers.groq import GroqProvider
    from chatbot.providers.openai_compat import OpenAICompatProvider

    cache = (groq._base_client if sdk == "groq" else openai._base_client).platform_headers
    cache.cache_clear()
    if sdk == "groq":
        provider = GroqProvider(fake_groq.api_key, "test-model", base_url=fake_groq.base_url)
    else:
        provider = OpenAICompatProvider(f"{fake_groq.base_url}/openai/v1", "test-model", api_key=fake_groq.api_key)
    try:
        assert cache.cache_info().currsize == 1
        assert "".join(d.text for d in provider.stream([{"role": "user", "content": "hi"}]))
        assert cache.cache_info().misses == 1  # the request found it done
    finally:
        provider.close()
