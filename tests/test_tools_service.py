"""The tool settings (MCP_SERVERS and the limits) and the tool service the engine asks."""

import json

import pytest

from chatbot.config import ConfigError, load_settings
from chatbot.protocol import ChatError
from chatbot.tools.service import ToolService

ORDERS = {"name": "orders", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer t0ken"}}


def test_tool_settings_defaults(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["MCP_SERVERS"] == () and settings["TOOLS_MAX_STEPS"] == 8
    assert settings["TOOL_TIMEOUT"] == 30.0 and settings["TOOL_APPROVAL_SECONDS"] == 120.0


def test_mcp_servers_are_parsed_from_json(tmp_path):
    raw = json.dumps([ORDERS, {"name": "wiki", "url": "https://wiki.example/mcp", "approve": ["*"]}])
    servers = load_settings(tmp_path, environ={"MCP_SERVERS": raw})["MCP_SERVERS"]
    assert servers[0] == {**ORDERS, "approve": ()} and servers[1]["approve"] == ("*",)


@pytest.mark.parametrize("servers", [
    {"name": "orders"},
    [{"name": "orders"}],
    [{"name": "or ders", "url": "http://x/mcp"}],
    [ORDERS, ORDERS],
    [{"name": "orders", "url": "ftp://x/mcp"}],
    [{"name": "orders", "url": "http://x/mcp", "headers": {"X": 1}}],
    [{"name": "orders", "url": "http://x/mcp", "token": "t"}],
])
def test_bad_mcp_servers_are_refused_without_echoing_headers(tmp_path, servers):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={"MCP_SERVERS": json.dumps(servers)})
    assert "MCP_SERVERS" in str(caught.value) and "t0ken" not in str(caught.value)


def test_the_service_accepts_only_this_deployments_tools():
    service = ToolService({"MCP_SERVERS": [ORDERS]})
    try:
        assert service.choice(["web_search", "mcp:orders/lookup_order"]) == ["web_search", "mcp:orders/lookup_order"]
        with pytest.raises(ChatError) as caught:
            service.choice(["mcp:billing/refund"])
        assert caught.value.code == "tool_unavailable"
        with pytest.raises(ChatError) as caught:
            service.answer(1, "step-1", True)
        assert caught.value.code == "not_found"
    finally:
        service.close()


def test_without_enabled_tools_a_reply_is_the_providers_own_stream():
    class Provider:
        name = "groq"

        def stream(self, messages, **options):
            return ("plain", options)

    service = ToolService({})
    stream = service.stream(Provider(), [], model="openai/gpt-oss-120b", enabled=[], reply_id=1, account="a",
                            emit=print, ask=print, sleep=lambda s: None)
    assert stream[0] == "plain" and "tools" not in stream[1]
