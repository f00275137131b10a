"""Settings: defaults, then the environment (and `.env`), then the test mapping — validated in one place."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from .model_families import ALL_EFFORTS, DEFAULT_GROQ_MODEL, REASONING_EFFORTS, model_family

DEFAULT_SYSTEM_PROMPT = (
    "You are ChatbotWS, a friendly and concise assistant. Answer in Markdown; use fenced code blocks for code."
)
# What the local model is told instead: SmolLM2 was tuned with "You are a helpful AI assistant named SmolLM, trained
# by Hugging Face"; in those words, with the app's name, it answers simple prompts better than with the prompt above
# (bench/local_prompts.py).
DEFAULT_LOCAL_SYSTEM_PROMPT = "You are a helpful AI assistant named ChatbotWS."


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable and says what is expected."""


def _text(value: str) -> str:
    """Accept any text as it is."""
    return value


def _optional(value: str) -> str | None:
    """Treat an empty value as unset."""
    return value.strip() or None


def _bool(value: str) -> bool:
    """Parse the usual spellings of a boolean."""
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _number(kind: type, low: float, high: float, *, optional: bool = False) -> Callable[[str], Any]:
    """Build a parser for an int or float within [low, high]; with `optional`, empty means unset (None)."""
    noun = "an integer" if kind is int else "a number"

    def parse(value: str):
        if optional and not str(value).strip():
            return None
        try:
            number = kind(str(value).strip())
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise ValueError(f"expected {noun} from {low} to {high}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    """Build a parser that accepts one of `choices`."""

    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return lowered

    return parse


def _optional_choice(*choices: str) -> Callable[[str], str | None]:
    """Build a parser that accepts one of `choices`, or empty for unset (None)."""
    parse_choice = _choice(*choices)

    def parse(value: str) -> str | None:
        return parse_choice(value) if value.strip() else None

    return parse


_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")


def _model_ids(value: str) -> tuple[str, ...]:
    """Parse a comma-separated list of model ids (duplicates dropped, order kept)."""
    ids = tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))
    for model_id in ids:
        if not _MODEL_ID.fullmatch(model_id):
            raise ValueError(f"'{model_id}' is not a model id like openai/gpt-oss-120b")
    return ids


def _origins(value: str) -> tuple[str, ...]:
    """Parse a comma-separated list of exact origins (scheme://host[:port])."""
    origins = tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())
    for origin in origins:
        if origin == "*":
            return ("*",)
        if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
            raise ValueError(f"'{origin}' is not an origin like https://chat.example.org")
    return origins


def _url(value: str) -> str | None:
    """Parse an optional http(s) base URL such as http://localhost:11434/v1 (empty means unset)."""
    value = value.strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or not value.split("://", 1)[1]:
        raise ValueError(f"'{value}' is not an http(s) URL like http://localhost:11434/v1")
    return value


_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _header(value: str) -> str:
    """Validate an HTTP header name such as X-Forwarded-User."""
    value = value.strip()
    if not _HEADER.fullmatch(value):
        raise ValueError("expected an HTTP header name such as X-Forwarded-User")
    return value


def _networks(value: str) -> tuple:
    """Parse a comma-separated list of addresses or networks (127.0.0.1, 10.0.0.0/8, ::1)."""
    import ipaddress

    networks = []
    for item in (part.strip() for part in value.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"'{item}' is not an address or network like 10.0.0.2 or 10.0.0.0/24") from None
    return tuple(networks)


def _issuer(value: str) -> str | None:
    """Validate an OpenID Connect issuer URL (empty: single sign-on is off)."""
    value = value.strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("https://", "http://")) or not value.split("://", 1)[1]:
        raise ValueError("expected the provider's issuer URL, e.g. https://accounts.example.org")
    return value


def _rate(value: str) -> str:
    """Validate a rate limit string such as '20/minute;200/hour' with the limits library."""
    from limits import parse_many

    parse_many(value)
    return value


_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _mcp_servers(value: str) -> tuple[dict, ...]:
    """MCP_SERVERS: a JSON list of {name, url, headers?, approve?} (names unique; http(s) URLs; string headers)."""
    import json

    servers = json.loads(value) if value.strip() else []
    if not isinstance(servers, list):
        raise ValueError("must be a JSON list of {name, url, headers?, approve?}")
    parsed, names = [], set()
    for server in servers:
        if not isinstance(server, dict) or set(server) - {"name", "url", "headers", "approve"}:
            raise ValueError("each server is {name, url, headers?, approve?}")
        name, url = server.get("name"), server.get("url")
        if not isinstance(name, str) or not _SERVER_NAME.fullmatch(name) or name in names:
            raise ValueError("each server needs a unique name of 1-32 letters, digits, _ or -")
        if not isinstance(url, str) or _url(url) is None:
            raise ValueError(f"server {name}: url must be an http(s) URL")
        headers = server.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in headers.items()):
            raise ValueError(f"server {name}: headers must map names to strings")
        approve = server.get("approve") or []
        if not isinstance(approve, list) or not all(isinstance(tool, str) for tool in approve):
            raise ValueError(f"server {name}: approve must be a list of tool names (or \"*\")")
        names.add(name)
        parsed.append({"name": name, "url": url, "headers": dict(headers), "approve": tuple(approve)})
    return tuple(parsed)


@dataclass(frozen=True)
class Setting:
    """One setting: its parser and its default (already parsed)."""

    parse: Callable[[str], Any]
    default: Any
    secret: bool = False


SETTINGS: dict[str, Setting] = {
    "CHATBOT_ENV": Setting(_choice("development", "production"), "development"),
    "SECRET_KEY": Setting(_optional, None, secret=True),
    "LLM_PROVIDER": Setting(_choice("auto", "groq", "openai", "local", "demo"), "auto"),
    "GROQ_API_KEY": Setting(_optional, None, secret=True),
    "GROQ_MODEL": Setting(_text, DEFAULT_GROQ_MODEL),
    "GROQ_BASE_URL": Setting(_optional, None),
    "GROQ_TIMEOUT": Setting(_number(float, 1, 600), 60.0),
    "GROQ_MAX_RETRY_WAIT": Setting(_number(float, 0, 120), 20.0),
    "GROQ_TEMPERATURE": Setting(_number(float, 0, 2, optional=True), None),
    "GROQ_MAX_TOKENS": Setting(_number(int, 1, 131072, optional=True), None),
    "GROQ_MODELS": Setting(_model_ids, ()),
    "GROQ_MODELS_TTL": Setting(_number(float, 1, 86400), 300.0),
    "GROQ_REASONING_EFFORT": Setting(_optional_choice(*ALL_EFFORTS), None),
    "SHOW_REASONING": Setting(_bool, True),
    "OPENAI_BASE_URL": Setting(_url, None),
    "OPENAI_API_KEY": Setting(_optional, None, secret=True),
    "OPENAI_MODEL": Setting(_optional, None),
    "OPENAI_TIMEOUT": Setting(_number(float, 1, 600), 120.0),
    "LOCAL_MODEL_PATH": Setting(_optional, None),
    "LOCAL_CONCURRENCY": Setting(_number(int, 1, 16), 1),
    "LOCAL_CONTEXT": Setting(_number(int, 256, 131072), 4096),
    "LOCAL_THREADS": Setting(_number(int, 0, 256), 0),
    "LOCAL_MAX_TOKENS": Setting(_number(int, 1, 32768), 512),
    "LOCAL_TEMPERATURE": Setting(_number(float, 0, 2), 0.2),
    "LOCAL_SYSTEM_PROMPT": Setting(_text, DEFAULT_LOCAL_SYSTEM_PROMPT),
    "SYSTEM_PROMPT": Setting(_text, DEFAULT_SYSTEM_PROMPT),
    "DEMO_TOKEN_DELAY": Setting(_number(float, 0, 5), 0.02),
    "DATABASE_URL": Setting(_optional, None),
    "REDIS_URL": Setting(_optional, None),
    "REDIS_PREFIX": Setting(_text, "chatbotws"),
    "HOST": Setting(_text, "127.0.0.1"),
    "PORT": Setting(_number(int, 1, 65535), 5000),
    "ALLOWED_ORIGINS": Setting(_origins, ()),
    "ASYNC_MODE": Setting(_choice("gevent", "eventlet", "threading"), "gevent"),
    "MAX_CONNECTIONS": Setting(_number(int, 1, 100000), 1000),
    "MAX_MESSAGE_CHARS": Setting(_number(int, 1, 100000), 4000),
    "MAX_FRAME_BYTES": Setting(_number(int, 1024, 1000000), 65536),
    "HISTORY_CHAR_BUDGET": Setting(_number(int, 100, 10_000_000), 24000),
    "HISTORY_PAGE": Setting(_number(int, 1, 1000), 50),
    "RATE_LIMIT_MESSAGES": Setting(_rate, "20/minute;300/hour"),
    "RATE_LIMIT_MESSAGES_PER_IP": Setting(_rate, "60/minute;1000/hour"),
    "RATE_LIMIT_CONNECTIONS": Setting(_rate, "60/minute"),
    "RATE_LIMIT_ACTIONS": Setting(_rate, "60/minute"),
    "RATE_LIMIT_SEARCH": Setting(_rate, "180/minute"),
    "MAX_CONCURRENT_REPLIES": Setting(_number(int, 1, 100), 3),
    "SESSION_TTL_DAYS": Setting(_number(float, 0.0001, 3650), 30.0),
    "CLEANUP_INTERVAL": Setting(_number(float, 1, 86400), 3600.0),
    "STREAM_WINDOW_MS": Setting(_number(int, 0, 1000), 30),
    "CHECKPOINT_SECONDS": Setting(_number(float, 0.05, 60), 1.0),
    "SHUTDOWN_SECONDS": Setting(_number(float, 0, 300), 3.0),
    "MCP_SERVERS": Setting(_mcp_servers, (), secret=True),  # headers may carry credentials
    "TOOLS_MAX_STEPS": Setting(_number(int, 1, 50), 8),
    "TOOL_TIMEOUT": Setting(_number(float, 0.1, 600), 30.0),
    "TOOL_APPROVAL_SECONDS": Setting(_number(float, 1, 3600), 120.0),
    "TOOL_RESULT_CHARS": Setting(_number(int, 100, 1_000_000), 16000),
    "RATE_LIMIT_TOOLS": Setting(_rate, "30/minute"),
    "TOOL_DAILY_CALLS": Setting(_number(int, 0, 10**9), 500),
    "PING_INTERVAL": Setting(_number(float, 1, 300), 25.0),
    "PING_TIMEOUT": Setting(_number(float, 1, 300), 20.0),
    "TRUST_PROXY": Setting(_bool, False),
    "AUTH_MODE": Setting(_optional_choice("open", "accounts", "proxy"), None),
    "SIGNUP": Setting(_choice("open", "approval", "invite", "closed"), "approval"),
    "AUTH_PROXY_HEADER": Setting(_header, "X-Forwarded-User"),
    "AUTH_PROXY_TRUSTED": Setting(_networks, _networks("127.0.0.1,::1")),
    "OIDC_ISSUER": Setting(_issuer, None),
    "OIDC_CLIENT_ID": Setting(_optional, None),
    "OIDC_CLIENT_SECRET": Setting(_optional, None, secret=True),
    "OIDC_LABEL": Setting(_text, "Sign in with single sign-on"),
    "USER_DAILY_TOKENS": Setting(_number(int, 0, 10**12), 0),
    "RATE_LIMIT_SIGNIN": Setting(_rate, "5/minute;30/hour"),
    "RATE_LIMIT_SIGNIN_PER_IP": Setting(_rate, "20/minute;200/hour"),
    "ARGON2_TIME_COST": Setting(_number(int, 1, 20), 3),
    "ARGON2_MEMORY_KIB": Setting(_number(int, 64, 4_194_304), 65536),
    "ARGON2_PARALLELISM": Setting(_number(int, 1, 16), 4),
    "LINK_TTL_HOURS": Setting(_number(float, 0.01, 8760), 72.0),
    "MAX_UPLOAD_MB": Setting(_number(float, 0.001, 4096), 20.0),
    "MAX_ATTACHMENTS": Setting(_number(int, 0, 50), 5),
    "USER_STORAGE_MB": Setting(_number(float, 0, 10**7), 500.0),
    "ATTACHMENT_CONTEXT_CHARS": Setting(_number(int, 500, 1_000_000), 12000),
    "VISION_MODELS": Setting(_model_ids, ("qwen/qwen3.6-27b", "meta-llama/llama-4-scout-17b-16e-instruct",
                                          "meta-llama/llama-4-maverick-17b-128e-instruct")),
    "RATE_LIMIT_UPLOADS": Setting(_rate, "30/minute;300/hour"),
    "UPLOAD_EXPIRY_HOURS": Setting(_number(float, 0.01, 8760), 24.0),
    "SHARE_LINKS": Setting(_optional_choice("off", "signed_in", "public"), None),
    "LOG_LEVEL": Setting(_choice("debug", "info", "warning", "error"), "info"),
    "LOG_CONTENT": Setting(_bool, False),
}


def load_settings(
    instance_path: str | os.PathLike, test_config: Mapping[str, Any] | None = None, *, environ=None
) -> dict[str, Any]:
    """Return validated settings: defaults, overridden by the environment (+ `.env`), then by `test_config`."""
    if environ is None:
        load_dotenv(override=False)
        environ = os.environ
    settings: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}
    for name, setting in SETTINGS.items():
        if name in environ:
            settings[name] = _parse(name, setting, environ[name])
    for name, value in (test_config or {}).items():
        setting = SETTINGS.get(name)
        settings[name] = _parse(name, setting, value) if setting and isinstance(value, str) else value

    instance = Path(instance_path)
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'chatbot.db'}"
    if settings["CHATBOT_ENV"] == "production":
        if not settings["SECRET_KEY"]:
            raise ConfigError("SECRET_KEY must be set in production (CHATBOT_ENV=production): a long random string")
        if "*" in settings["ALLOWED_ORIGINS"]:
            raise ConfigError("ALLOWED_ORIGINS may not be '*' in production: list exact origins")
        if settings["AUTH_MODE"] is None:
            raise ConfigError("AUTH_MODE must be set in production (CHATBOT_ENV=production): open, accounts or proxy")
    settings["AUTH_MODE"] = settings["AUTH_MODE"] or "open"
    _check_oidc(settings)
    _check_share_links(settings)
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(instance)
    if len(settings["SECRET_KEY"]) < 16:
        raise ConfigError("SECRET_KEY is too short: use at least 16 random characters")
    if settings["SECRET_KEY"] in (settings["GROQ_API_KEY"], settings["OPENAI_API_KEY"]):
        raise ConfigError("SECRET_KEY must not be an API key (Groq or OpenAI): generate a separate random secret")
    _check_reasoning_effort(settings["GROQ_REASONING_EFFORT"], settings["GROQ_MODEL"])
    _check_provider(settings)
    return settings


def _check_oidc(settings: dict[str, Any]) -> None:
    """Single sign-on needs its issuer, client id and secret together, and accounts mode to mean anything."""
    names = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
    given = [name for name in names if settings[name]]
    if given and len(given) < len(names):
        missing = next(name for name in names if not settings[name])
        raise ConfigError(f"{missing} must be set too: single sign-on needs {', '.join(names)}")
    if given and settings["AUTH_MODE"] != "accounts":
        raise ConfigError("OIDC_ISSUER is set but AUTH_MODE is not accounts: single sign-on needs AUTH_MODE=accounts")
    if settings["ARGON2_MEMORY_KIB"] < 8 * settings["ARGON2_PARALLELISM"]:
        raise ConfigError("ARGON2_MEMORY_KIB is invalid: it must be at least 8 × ARGON2_PARALLELISM")


def _check_share_links(settings: dict[str, Any]) -> None:
    """Default SHARE_LINKS to what the sign-in mode suggests (accounts and proxy: signed-in readers only), and
    refuse signed_in where nobody signs in."""
    if settings["SHARE_LINKS"] is None:
        settings["SHARE_LINKS"] = "public" if settings["AUTH_MODE"] == "open" else "signed_in"
    elif settings["SHARE_LINKS"] == "signed_in" and settings["AUTH_MODE"] == "open":
        raise ConfigError("SHARE_LINKS=signed_in needs AUTH_MODE=accounts or proxy (nobody signs in when it is open)")


def _check_reasoning_effort(effort: str | None, model: str) -> None:
    """Refuse a GROQ_REASONING_EFFORT that GROQ_MODEL's family does not take."""
    if effort is None:
        return
    allowed = REASONING_EFFORTS.get(model_family(model) or "")
    if allowed is None:
        raise ConfigError(f"GROQ_REASONING_EFFORT is invalid: GROQ_MODEL {model!r} takes no reasoning effort; "
                          f"leave it unset (got {effort!r})")
    if effort not in allowed:
        raise ConfigError(f"GROQ_REASONING_EFFORT is invalid: GROQ_MODEL {model!r} takes one of "
                          f"{', '.join(allowed)} (got {effort!r})")


def _check_provider(settings: dict[str, Any]) -> None:
    """An explicitly chosen provider must have what it needs; `auto` falls back instead."""
    choice = settings["LLM_PROVIDER"]
    if choice == "groq" and not (settings["GROQ_API_KEY"] or "").strip():
        raise ConfigError("LLM_PROVIDER=groq needs GROQ_API_KEY: set it, or use LLM_PROVIDER=auto")
    if choice == "openai" and not settings["OPENAI_BASE_URL"]:
        raise ConfigError("LLM_PROVIDER=openai needs OPENAI_BASE_URL, e.g. http://localhost:11434/v1 for Ollama")
    path = settings["LOCAL_MODEL_PATH"]
    if choice == "local" and path and not Path(path).expanduser().is_file():
        # Whether llama.cpp itself can run is asked of the provider when the app is built.
        raise ConfigError(f"LLM_PROVIDER=local cannot run: LOCAL_MODEL_PATH={path} is not a file "
                          "(expected a .gguf model)")


def _parse(name: str, setting: Setting, raw: str) -> Any:
    """Parse one raw value, turning any failure into a ConfigError that names the variable."""
    try:
        return setting.parse(raw)
    except (ValueError, TypeError) as exc:
        shown = "(hidden)" if setting.secret else repr(raw)
        raise ConfigError(f"{name} is invalid: {exc} (got {shown})") from None


def _instance_secret(instance: Path) -> str:
    """Return the development secret kept in instance/, generating it on first use."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # O_EXCL: when two processes start at once, one writes and the other reads the winner's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        return secret
