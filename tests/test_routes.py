"""HTTP routes: the page and its cookie, probes, metrics, export format, security headers."""

from __future__ import annotations

import pytest

from chatbot.web.routes import to_markdown
from chatbot.web.sessions import COOKIE_NAME


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/metrics", "/static/css/base.css"])
def test_routes_security_headers_everywhere(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_routes_page_sets_session_cookie_and_config(app):
    response = app.test_client().get("/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS (or TRUST_PROXY + X-Forwarded-Proto) adds it
    assert b"data-config=" in response.data and b"<script>" not in response.data


def test_routes_page_keeps_the_session_of_a_valid_cookie(app):
    client = app.test_client()
    first = client.get("/").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    tokens = app.extensions["chatbot"].tokens
    second = client.get("/").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert tokens.owner(first) == tokens.owner(second) is not None


def test_routes_readyz_reports_a_failed_database(app, monkeypatch):
    def down():
        raise ConnectionError("database is gone")

    monkeypatch.setattr(app.extensions["chatbot"].store, "ping", down)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "failed"},
                                   "provider": "groq", "model": "openai/gpt-oss-120b"}
    assert b"gone" not in response.data


def test_routes_readyz_and_page_say_which_provider_serves(make_app):
    app = make_app(LLM_PROVIDER="demo")
    assert app.test_client().get("/readyz").get_json() == {"status": "ok", "checks": {"database": "ok"},
                                                           "provider": "demo", "model": "demo"}
    page = app.test_client().get("/").get_data(as_text=True)
    assert "&#34;provider&#34;: &#34;demo&#34;" in page and "Demo mode" in page


def test_routes_metrics_are_prometheus_text(app):
    body = app.test_client().get("/metrics").get_data(as_text=True)
    for name in ("chatbot_connected_sockets 0", "chatbot_replies_in_flight 0",
                 'chatbot_replies_total{outcome="complete"} 0.0'):
        assert name in body


def test_routes_markdown_export_marks_unfinished_replies():
    conversation = {"title": "Trip", "created_at": "2026-11-25T10:00:00+00:00"}
    messages = [
        {"role": "user", "content": "Plan it", "status": "complete", "created_at": "t1"},
        {"role": "assistant", "content": "Day 1…", "status": "interrupted", "created_at": "t2"},
    ]
    text = to_markdown(conversation, messages)
    assert text.startswith("# Trip\n")
    assert "## You — t1\n\nPlan it" in text and "## Assistant (interrupted) — t2\n\nDay 1…" in text


def test_routes_markdown_export_marks_thinking_apart_from_the_answer():
    conversation = {"title": "Think", "created_at": "2026-12-01T10:00:00+00:00"}
    messages = [
        {"role": "user", "content": "Why?", "status": "complete", "created_at": "t1"},
        {"role": "assistant", "content": "Because.", "status": "complete", "created_at": "t2",
         "reasoning": "First line of thought.\n\nSecond."},
    ]
    text = to_markdown(conversation, messages)
    assert "> **Thinking**" in text
    assert "> First line of thought.\n>\n> Second." in text
    assert text.index("> Second.") < text.index("Because.")  # the thinking, then the answer
