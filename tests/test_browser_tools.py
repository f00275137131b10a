"""Tools on the page in real headless Chromium (fixtures from test_browser): the toggles, step cards streamed into
the reply, hostile tool output shown as inert text, and a destructive step approved with the Approve button."""

from __future__ import annotations

import json
import re

import pytest

from tests import test_browser
from tests.test_browser import assert_clean, expect, send, wait_final

pytestmark = [pytest.mark.browser, pytest.mark.server]
browser, open_chat, database_url = test_browser.browser, test_browser.open_chat, test_browser.database_url

HOSTILE_SEARCH = {
    "type": "search",
    "arguments": {"query": "<img src=x onerror=\"window.__pwned=1\">"},
    "output": "<script>window.__pwned=1</script> ![t](http://127.0.0.9/tool.png)",
    "search_results": {"results": [
        {"title": "<b onmouseover=\"window.__pwned=1\">Lyon</b>", "url": "http://127.0.0.9/page"},
        {"title": "click me", "url": "javascript:window.__pwned=1"},
    ]},
}


def choose_tool(page, label):
    """Open the composer's Tools panel and tick one tool."""
    page.locator("#tools-button").click()
    option = page.locator("#tools-panel label", has_text=label)
    expect(option).to_be_visible()
    option.locator("input").check()
    expect(page.locator("#tools-button")).to_have_class(re.compile(r"is-on"))
    page.locator("#tools-button").click()


def test_page_tool_steps_show_hostile_output_as_inert_text(live_server, fake_groq, open_chat):
    server = live_server()
    page = open_chat(server)
    choose_tool(page, "Web search")
    fake_groq.script(executed_tools=[HOSTILE_SEARCH], text="Sunny.")
    send(page, "weather?")
    reply = wait_final(page, "Sunny.")
    card = reply.locator(".tool-step")
    expect(card).to_have_count(1)
    query = HOSTILE_SEARCH["arguments"]["query"]
    expect(card.locator(".tool-step-title")).to_have_text(f"Searched the web for “{query}”")
    expect(card).to_have_class(re.compile(r"tool-step--done"))
    card.locator("summary").click()
    expect(card.locator("pre").last).to_have_text(HOSTILE_SEARCH["output"])
    links = card.locator("a[href]")
    expect(links).to_have_count(1)  # the javascript: source is not a link at all
    expect(links.first).to_have_text('<b onmouseover="window.__pwned=1">Lyon</b>')
    expect(links.first).to_have_attribute("rel", "noopener noreferrer nofollow")

    def check_harmless():
        """Nothing ran, nothing active is in the page, nothing was fetched off the origin."""
        for selector in ("img", "iframe", "script", "[onerror]", "[onmouseover]", "a[href^='javascript']"):
            expect(page.locator(f"#message-list {selector}")).to_have_count(0)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert_clean(page, server)

    check_harmless()
    page.reload()  # history renders the stored steps the same way
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".msg--bot .tool-step")).to_have_count(1)
    check_harmless()


def test_page_destructive_step_waits_for_approve(live_server, fake_groq, open_chat, mcp_orders):
    server = live_server(MCP_SERVERS=json.dumps([{"name": "orders", "url": mcp_orders.url}]))
    page = open_chat(server)
    choose_tool(page, "cancel_order (asks first)")
    fake_groq.script(tool_calls=[{"name": "orders__cancel_order", "arguments": {"order_id": "77"}}])
    fake_groq.script(text="Order 77 is cancelled.")
    send(page, "cancel order 77")
    prompt = page.locator(".tool-approval")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("orders › cancel_order")
    expect(page.locator(".tool-step--running")).to_have_count(1)
    assert {"tool": "cancel_order", "order_id": "77"} not in mcp_orders.calls()
    page.reload()  # mid-step: the resumed reply shows its step and asks again
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(prompt).to_be_visible()
    expect(page.locator(".tool-step")).to_have_count(1)
    prompt.get_by_role("button", name="Approve").click()
    reply = wait_final(page, "Order 77 is cancelled.")
    expect(reply.locator(".tool-step--done .tool-step-title")).to_have_text("Called orders › cancel_order")
    expect(page.locator(".tool-approval")).to_have_count(0)
    assert mcp_orders.calls().count({"tool": "cancel_order", "order_id": "77"}) == 1
    assert_clean(page, server)


def test_page_code_step_shows_its_code_output_and_chart(live_server, fake_groq, open_chat):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    server = live_server()
    page = open_chat(server)
    choose_tool(page, "Run code")
    run = {"type": "python", "arguments": {"code": "print(6 * 7)"}, "output": "42",
           "code_results": [{"text": "42", "png": png}]}
    fake_groq.script(executed_tools=[run], text="It is 42.")
    send(page, "6 * 7?")
    reply = wait_final(page, "It is 42.")
    card = reply.locator(".tool-step")
    expect(card.locator(".tool-step-title")).to_have_text("Ran code")
    card.locator("summary").click()
    expect(card.locator("pre").first).to_have_text("print(6 * 7)")
    expect(card.locator("pre").last).to_have_text("42")
    expect(card.locator("img.tool-step-image")).to_have_attribute("src", f"data:image/png;base64,{png}")
    assert card.locator("img.tool-step-image").evaluate("img => img.complete && img.naturalWidth") == 1
    assert_clean(page, server)
