"""Settings: defaults, environment, test mapping; every bad value is one clear error naming the variable."""

from __future__ import annotations

import pytest

from chatbot.config import ConfigError, load_settings


def test_config_defaults(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["PORT"] == 5000 and settings["HOST"] == "127.0.0.1"
    assert settings["ASYNC_MODE"] == "gevent" and settings["SHUTDOWN_SECONDS"] == 3.0
    assert settings["GROQ_MODEL"] == "openai/gpt-oss-120b"
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'chatbot.db'}"
    assert settings["GROQ_API_KEY"] is None


def test_config_development_secret_is_generated_once_and_kept(tmp_path):
    first = load_settings(tmp_path, environ={})["SECRET_KEY"]
    assert len(first) >= 32 and (tmp_path / "secret_key").read_text() == first
    assert load_settings(tmp_path, environ={})["SECRET_KEY"] == first


def test_config_test_mapping_overrides_environment(tmp_path):
    settings = load_settings(tmp_path, {"PORT": "6001", "MAX_MESSAGE_CHARS": 10}, environ={"PORT": "6000"})
    assert settings["PORT"] == 6001 and settings["MAX_MESSAGE_CHARS"] == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"), ("PORT", "0"), ("PORT", "70000"), ("ASYNC_MODE", "tornado"), ("MAX_MESSAGE_CHARS", "-1"),
        ("ALLOWED_ORIGINS", "example.org"), ("ALLOWED_ORIGINS", "https://a.org/path"), ("LOG_CONTENT", "maybe"),
        ("RATE_LIMIT_MESSAGES", "lots"), ("CHATBOT_ENV", "staging"), ("GROQ_TEMPERATURE", "9"),
        ("GROQ_MODELS", "openai/gpt-oss-120b, bad id"), ("GROQ_MODELS", "-x"), ("GROQ_MODELS_TTL", "0"),
        ("GROQ_MODELS_TTL", "soon"), ("GROQ_REASONING_EFFORT", "max"), ("SHOW_REASONING", "sometimes"),
        ("AUTH_MODE", "everyone"), ("SIGNUP", "maybe"), ("AUTH_PROXY_HEADER", "X User"),
        ("AUTH_PROXY_TRUSTED", "proxy.local"), ("OIDC_ISSUER", "accounts.example.org"), ("USER_DAILY_TOKENS", "-5"),
        ("RATE_LIMIT_SIGNIN", "often"), ("ARGON2_MEMORY_KIB", "1"), ("SHUTDOWN_SECONDS", "-1"),
    ],
)
def test_config_invalid_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=rf"^{name} is invalid"):
        load_settings(tmp_path, environ={name: value})


def test_config_secret_values_are_not_echoed(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={"SECRET_KEY": "hunter2"})
    assert "hunter2" not in str(caught.value)


def test_config_production_requires_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY must be set in production"):
        load_settings(tmp_path, environ={"CHATBOT_ENV": "production"})


def test_config_production_refuses_wildcard_origin(tmp_path):
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS may not be"):
        load_settings(tmp_path, environ={"CHATBOT_ENV": "production", "SECRET_KEY": "x" * 40,
                                         "ALLOWED_ORIGINS": "*"})


def test_config_secret_key_is_never_the_groq_key(tmp_path):
    with pytest.raises(ConfigError, match="must not be an API key"):
        load_settings(tmp_path, environ={"SECRET_KEY": "gsk_" + "a" * 40, "GROQ_API_KEY": "gsk_" + "a" * 40})


def test_config_origins_are_parsed(tmp_path):
    settings = load_settings(tmp_path, environ={"ALLOWED_ORIGINS": "https://a.org, http://b.test:8080/"})
    assert settings["ALLOWED_ORIGINS"] == ("https://a.org", "http://b.test:8080")


def test_config_model_settings_defaults(tmp_path):
    """No allow-list, a five-minute TTL, no reasoning effort, thinking shown."""
    settings = load_settings(tmp_path, environ={})
    assert settings["GROQ_MODELS"] == () and settings["GROQ_MODELS_TTL"] == 300.0
    assert settings["GROQ_REASONING_EFFORT"] is None and settings["SHOW_REASONING"] is True


def test_config_model_allow_list_is_parsed(tmp_path):
    """The allow-list is trimmed and de-duplicated in order; an empty effort is unset."""
    settings = load_settings(tmp_path, environ={
        "GROQ_MODELS": " openai/gpt-oss-20b, groq/compound,,openai/gpt-oss-20b ", "SHOW_REASONING": "off",
        "GROQ_MODELS_TTL": "60", "GROQ_REASONING_EFFORT": "",
    })
    assert settings["GROQ_MODELS"] == ("openai/gpt-oss-20b", "groq/compound")
    assert settings["SHOW_REASONING"] is False and settings["GROQ_MODELS_TTL"] == 60.0
    assert settings["GROQ_REASONING_EFFORT"] is None


@pytest.mark.parametrize(
    ("model", "effort"),
    [("openai/gpt-oss-120b", "low"), ("openai/gpt-oss-20b", "HIGH"), ("qwen/qwen3.6-27b", "none"),
     ("qwen/qwen3.6-27b", "default")],
)
def test_config_reasoning_effort_fits_the_model_family(tmp_path, model, effort):
    """An effort of GROQ_MODEL's family is accepted (case-insensitively)."""
    settings = load_settings(tmp_path, environ={"GROQ_MODEL": model, "GROQ_REASONING_EFFORT": effort})
    assert settings["GROQ_REASONING_EFFORT"] == effort.lower()


@pytest.mark.parametrize(
    ("model", "effort", "says"),
    [("openai/gpt-oss-120b", "none", "low, medium, high"), ("openai/gpt-oss-20b", "default", "low, medium, high"),
     ("qwen/qwen3.6-27b", "medium", "none, default"), ("groq/compound", "low", "takes no reasoning effort"),
     ("llama-3.1-8b-instant", "none", "takes no reasoning effort")],
)
def test_config_reasoning_effort_refused_for_other_families(tmp_path, model, effort, says):
    """An effort GROQ_MODEL's family does not take is refused at start-up, naming the variable and the choices."""
    with pytest.raises(ConfigError, match=r"^GROQ_REASONING_EFFORT is invalid") as caught:
        load_settings(tmp_path, environ={"GROQ_MODEL": model, "GROQ_REASONING_EFFORT": effort})
    assert says in str(caught.value) and model in str(caught.value)


def test_config_auth_mode_defaults_to_open_in_development(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert (settings["AUTH_MODE"], settings["SIGNUP"], settings["USER_DAILY_TOKENS"]) == ("open", "approval", 0)


@pytest.mark.parametrize("mode", ["open", "accounts", "proxy"])
def test_config_production_takes_any_explicit_auth_mode(tmp_path, mode):
    settings = load_settings(tmp_path, environ={"CHATBOT_ENV": "production", "SECRET_KEY": "x" * 40,
                                                "AUTH_MODE": mode})
    assert settings["AUTH_MODE"] == mode


def test_config_production_refuses_a_missing_auth_mode(tmp_path):
    with pytest.raises(ConfigError, match=r"^AUTH_MODE must be set in production"):
        load_settings(tmp_path, environ={"CHATBOT_ENV": "production", "SECRET_KEY": "x" * 40})


def test_config_single_sign_on_needs_accounts_mode(tmp_path):
    environ = {"OIDC_ISSUER": "https://id.example.org", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s"}
    with pytest.raises(ConfigError, match=r"^OIDC_ISSUER is set but AUTH_MODE is not accounts"):
        load_settings(tmp_path, environ=environ)
    settings = load_settings(tmp_path, environ={**environ, "AUTH_MODE": "accounts"})
    assert settings["OIDC_ISSUER"] == environ["OIDC_ISSUER"]


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "public"), ({"AUTH_MODE": "accounts"}, "signed_in"), ({"AUTH_MODE": "proxy"}, "signed_in"),
    ({"AUTH_MODE": "accounts", "SHARE_LINKS": "public"}, "public"), ({"SHARE_LINKS": "off"}, "off"),
])
def test_config_share_links_default_follows_the_sign_in_mode(tmp_path, environ, expected):
    assert load_settings(tmp_path, environ=environ)["SHARE_LINKS"] == expected


def test_config_share_links_for_signed_in_readers_need_sign_in(tmp_path):
    with pytest.raises(ConfigError, match=r"^SHARE_LINKS=signed_in needs AUTH_MODE=accounts or proxy"):
        load_settings(tmp_path, environ={"SHARE_LINKS": "signed_in"})
