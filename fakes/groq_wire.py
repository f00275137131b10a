"""The fake Groq's wire format: paths, the default model list, scripted responses, bodies and headers.

Two dialects are spoken: Groq's (`/openai/v1/...`: `x_groq` with usage and timings) and the plain OpenAI one
(`/v1/...`, what the `openai` SDK calls with `base_url=http://host:port/v1`: usage only in a final chunk, and only
with `stream_options.include_usage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENDPOINT = "/openai/v1/chat/completions"
OPENAI_ENDPOINT = "/v1/chat/completions"
MODELS_ENDPOINT = "/openai/v1/models"
OPENAI_MODELS_ENDPOINT = "/v1/models"
CHAT_PATHS = {ENDPOINT, OPENAI_ENDPOINT}
MODEL_PATHS = {MODELS_ENDPOINT, OPENAI_MODELS_ENDPOINT}
ROLES = {"system", "user", "assistant", "tool"}
# Groq's server-side tools, offered only with the gpt-oss models.
BUILTIN_TOOLS = {"browser_search", "code_interpreter"}
# What Groq accepts as reasoning_effort, by model family; other models refuse the field.
EFFORTS = {"gpt-oss": ("low", "medium", "high"), "qwen3": ("none", "default")}
# Groq's limits for a free-tier key; the remaining counts are scriptable, these stay fixed.
RATELIMIT_LIMITS = {"requests": 14400, "tokens": 6000}
RATELIMIT_RESETS = {"requests": "2m59.56s", "tokens": "7.66s"}
TOKENS_PER_SECOND = 500  # the speed the fake's completion_time implies: completion_tokens / completion_time


def model_entry(
    model_id: str, owner: str = "Groq", context: int = 131072, max_completion: int = 8192, created: int = 1754000000
) -> dict:
    """One entry of Groq's model list."""
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": owner,
        "active": True,
        "context_window": context,
        "public_apps": None,
        "max_completion_tokens": max_completion,
    }


# Groq-like in late 2026: the chat models, plus speech, TTS and guard models that must not be offered for chat.
DEFAULT_MODELS = [
    model_entry("openai/gpt-oss-120b", "OpenAI", 131072, 65536),
    model_entry("whisper-large-v3", "OpenAI", 448, 448),
    model_entry("openai/gpt-oss-20b", "OpenAI", 131072, 65536),
    model_entry("groq/compound", "Groq", 131072, 8192),
    model_entry("playai-tts", "PlayAI", 8192, 8192),
    model_entry("qwen/qwen3.6-27b", "Alibaba Cloud", 131072, 40960),
    model_entry("meta-llama/llama-guard-4-12b", "Meta", 131072, 1024),
    model_entry("groq/compound-mini", "Groq", 131072, 8192),
    model_entry("whisper-large-v3-turbo", "OpenAI", 448, 448),
    model_entry("meta-llama/llama-prompt-guard-2-86m", "Meta", 512, 512),
]


@dataclass
class Script:
    """One scripted chat response; `FakeGroq.script` documents the fields."""

    tokens: list[str]
    reasoning: list[str]
    delay: float | None = None
    first_byte_delay: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    cut_after: int | None = None
    hold_after: int | None = None
    error_after: int | None = None
    model_not_found: bool = False
    model_decommissioned: bool = False
    finish_reason: str = "stop"
    repeat: int | None = 1
    reasoning_field: str | None = None
    usage: dict = field(default_factory=dict)
    ratelimit: dict | None = None
    tool_calls: list[dict] = field(default_factory=list)
    executed_tools: list[dict] = field(default_factory=list)
    error_message: str | None = None


@dataclass
class ModelsScript:
    """One scripted answer to the model list; `FakeGroq.script_models` documents the fields."""

    models: list[dict] | None = None
    status: int | None = None
    first_byte_delay: float = 0.0
    repeat: int | None = 1


def split_text(text: str) -> list[str]:
    """Split text into ~4-character pieces (like model tokens) whose concatenation is the text."""
    return [text[i : i + 4] for i in range(0, len(text), 4)]


def as_tokens(value: int | str | list[str] | None) -> list[str]:
    """Normalise a tokens/text/reasoning argument into a list of token strings."""
    if value is None:
        return []
    if isinstance(value, int):
        return [f"tok{i} " for i in range(value)]
    if isinstance(value, str):
        return split_text(value)
    return [str(piece) for piece in value]


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict:
    """Groq's JSON error envelope."""
    error = {"message": message, "type": type_}
    if code is not None:
        error["code"] = code
    return {"error": error}


def model_family(model: str) -> str | None:
    """The reasoning family of a model id as Groq treats it ("gpt-oss", "qwen3"), or None."""
    name = model.rsplit("/", 1)[-1].lower()
    return next((family for family in EFFORTS if name.startswith(family)), None)


def _valid_part(part: object) -> bool:
    """Whether one content part is {type: text, text} or {type: image_url, image_url: {url: data:image/...}}."""
    if not isinstance(part, dict):
        return False
    if part.get("type") == "text":
        return isinstance(part.get("text"), str)
    image = part.get("image_url")
    return (part.get("type") == "image_url" and isinstance(image, dict) and isinstance(image.get("url"), str)
            and image["url"].startswith(("data:image/", "https://")))


def validate_body(body: object) -> str | None:
    """Return why a chat-completions body is invalid (Groq-style wording), or None when it is valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' : property 'model' is missing or not a string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' : minimum number of items is 1"
    called: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"'messages.{i}' : discriminator property 'role' has invalid value"
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):  # OpenAI-style parts: text and pictures
            if not content or not all(_valid_part(part) for part in content):
                return f"'messages.{i}.content' : parts must be text or image_url objects"
            continue
        problem = _message_problem(i, message, called)
        if problem:
            return problem
    problem = _tools_problem(body)
    if problem:
        return problem
    if "reasoning_effort" in body:
        allowed = EFFORTS.get(model_family(body["model"]))
        if allowed is None:
            return "`reasoning_effort` is not supported with this model"
        if body["reasoning_effort"] not in allowed:
            return f"'reasoning_effort' : value must be one of {', '.join(allowed)}"
    return None


def _message_problem(i: int, message: dict, called: set[str]) -> str | None:
    """Why one message is invalid (content, tool calls, tool results answering an earlier call), or None."""
    calls = message.get("tool_calls") if message["role"] == "assistant" else None
    if calls is not None:
        if not isinstance(calls, list) or not calls:
            return f"'messages.{i}.tool_calls' : minimum number of items is 1"
        for n, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(call.get("id") if function else None, str) or not isinstance(function.get("name"), str):
                return f"'messages.{i}.tool_calls.{n}' : property 'id' or 'function.name' is missing"
            if not isinstance(function.get("arguments"), str):
                return f"'messages.{i}.tool_calls.{n}.function.arguments' : value must be a string"
            called.add(call["id"])
        if message.get("content") is not None and not isinstance(message["content"], str):
            return f"'messages.{i}.content' : value must be a string"
        return None
    if not isinstance(message.get("content"), str):
        return f"'messages.{i}.content' : value must be a string"
    if message["role"] == "tool" and message.get("tool_call_id") not in called:
        return f"'messages.{i}' : a 'tool' message must answer a preceding message's 'tool_calls' (tool_call_id)"
    return None


def _tools_problem(body: dict) -> str | None:
    """Why the `tools` offered are invalid (function shape, built-ins only on gpt-oss), or None."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "'tools' : value must be an array"
    for n, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in BUILTIN_TOOLS:
            if model_family(body["model"]) != "gpt-oss":
                return f"`{kind}` is not supported with this model"
        elif kind != "function":
            return f"'tools.{n}.type' : value must be one of function, {', '.join(sorted(BUILTIN_TOOLS))}"
        elif not isinstance(tool.get("function"), dict) or not isinstance(tool["function"].get("name"), str):
            return f"'tools.{n}.function.name' : property 'name' is missing"
    return None


def tool_call_pieces(calls: list[dict], size: int = 6) -> list[dict]:
    """Streamed `tool_calls` deltas: per call one with id, type, name and no arguments, then the arguments in pieces."""
    pieces = []
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function"}
        pieces.append({**head, "function": {"name": call["name"], "arguments": ""}})
        arguments = call["arguments"]
        for start in range(0, len(arguments), size):
            pieces.append({"index": index, "function": {"arguments": arguments[start : start + size]}})
    return pieces


def executed_tool_pieces(tools: list[dict]) -> list[dict]:
    """Streamed `executed_tools` deltas: per tool one when it starts (type, arguments) and one when it is done."""
    pieces = []
    for tool in tools:
        pieces.append({key: tool[key] for key in ("index", "type", "arguments")})
        pieces.append(tool)
    return pieces


def full_tool_calls(calls: list[dict]) -> list[dict]:
    """The `tool_calls` of a complete assistant message."""
    return [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
        for call in calls
    ]


def usage_block(body: dict, script: Script, *, groq: bool) -> dict:
    """Usage as Groq reports it (token counts, details, timings), or the plain OpenAI counts; script overrides win."""
    prompt = sum(len((m.get("content") or "").split()) for m in body.get("messages", []) if isinstance(m, dict))
    completion = len(script.tokens) + len(script.reasoning)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if groq:
        completion_time = round(max(completion, 1) / TOKENS_PER_SECOND, 6)
        usage = {
            "queue_time": 0.0125,
            **usage,
            "prompt_time": 0.0031,
            "completion_time": completion_time,
            "total_time": round(0.0031 + completion_time, 6),
        }
    usage["prompt_tokens_details"] = {"cached_tokens": 0}
    usage["completion_tokens_details"] = {"reasoning_tokens": len(script.reasoning)}
    usage.update(script.usage)
    return usage


def header_seconds(value: float) -> str:
    """Format seconds for a retry-after header (integers without a decimal point)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def ratelimit_headers(remaining: dict) -> dict:
    """Groq's x-ratelimit-* headers for the given remaining counts (a kind left out sends no headers for it)."""
    headers = {}
    for kind, value in remaining.items():
        headers[f"x-ratelimit-limit-{kind}"] = str(RATELIMIT_LIMITS.get(kind, value))
        headers[f"x-ratelimit-remaining-{kind}"] = str(value)
        headers[f"x-ratelimit-reset-{kind}"] = RATELIMIT_RESETS.get(kind, "1s")
    return headers
