"""Tests for chatbot.providers.local: the real SmolLM2-135M model run in-process by llama-cpp-python.

Greedy decoding (temperature 0) makes the model's answers repeatable; LONG_PROMPT makes this model repeat itself
until the token limit, so a generation is still running whenever a test needs one that is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from chatbot.providers import StreamOptions, UpstreamError
from chatbot.providers.local import LocalModelUnavailable, LocalProvider, find_model, runtime_problem
from tests.conftest import ROOT

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
SHORT = [SYSTEM, {"role": "user", "content": "Say hello in five words."}]
LONG_PROMPT = "Repeat the word 'hello' forever."
LONG = [SYSTEM, {"role": "user", "content": LONG_PROMPT}]
WAIT = 60.0  # upper bound for waits on a busy 2-core machine; tests finish long before it


@pytest.fixture
def provider(local_model):
    """Factory: a LocalProvider with greedy decoding (options as keywords)."""

    def build(**options):
        options.setdefault("temperature", 0.0)
        return LocalProvider(**options)

    return build


def test_local_provider_streams_deltas(provider):
    stream = provider(max_tokens=40).stream(SHORT)
    deltas = list(stream)
    assert len(deltas) >= 2
    assert all(d.text and d.reasoning == "" for d in deltas)
    assert stream.finish_reason in ("stop", "length")
    assert stream.usage["completion_tokens"] >= len(deltas)
    assert stream.usage["total_tokens"] == stream.usage["prompt_tokens"] + stream.usage["completion_tokens"]


def test_local_provider_takes_a_conversations_reply_length_cap(provider):
    stream = provider(max_tokens=400).stream(LONG, options=StreamOptions(max_tokens=5))
    list(stream)
    assert stream.finish_reason == "length" and stream.usage["completion_tokens"] <= 5


def test_local_provider_stops_at_the_next_token(provider):
    stream = provider(max_tokens=400).stream(LONG)
    deltas = iter(stream)
    assert next(deltas).text
    decoded = stream._decoded
    stream.close()
    assert list(deltas) == []
    assert stream.finish_reason == "stopped"
    assert stream.usage["completion_tokens"] <= decoded + 1  # at most the token being decoded at close()


def test_local_provider_close_from_another_thread(provider):
    stream = provider(max_tokens=400).stream(LONG)
    first = threading.Event()
    texts: list[str] = []

    def consume():
        for delta in stream:
            texts.append(delta.text)
            first.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert first.wait(WAIT)
    stream.close()
    consumer.join(WAIT)
    assert not consumer.is_alive()
    assert stream.finish_reason == "stopped" and stream.usage["completion_tokens"] < 400


def test_local_provider_queues_beyond_concurrency(provider):
    local = provider(max_tokens=2000, concurrency=1)
    running, events = local.stream(LONG), []
    changed = threading.Condition()

    def record(name):
        def on_status(fields):
            with changed:
                events.append((name, fields))
                changed.notify_all()
        return on_status

    def consume(name, stream):
        for _delta in stream:
            with changed:
                events.append((name, "delta"))
                changed.notify_all()

    def wait_for(entry):
        with changed:
            assert changed.wait_for(lambda: entry in events, WAIT), events

    first = threading.Thread(target=consume, args=("a", running))
    first.start()
    wait_for(("a", "delta"))
    second = local.stream(LONG, on_status=record("b"))
    third = local.stream(LONG, on_status=record("c"))
    threads = [threading.Thread(target=consume, args=("b", second))]
    threads[0].start()
    wait_for(("b", {"status": "queued", "position": 1}))
    threads.append(threading.Thread(target=consume, args=("c", third)))
    threads[1].start()
    wait_for(("c", {"status": "queued", "position": 2}))
    running.close()  # the slot goes to b, and c moves up
    wait_for(("b", "delta"))
    wait_for(("c", {"status": "queued", "position": 1}))
    assert ("c", "delta") not in events
    second.close()
    wait_for(("c", "delta"))
    third.close()
    for thread in [first, *threads]:
        thread.join(WAIT)
    assert running.finish_reason == second.finish_reason == third.finish_reason == "stopped"


def test_local_provider_close_while_queued_leaves_the_line(provider):
    local = provider(max_tokens=2000, concurrency=1)
    running = local.stream(LONG)
    deltas = iter(running)
    next(deltas)
    in_line = threading.Event()
    queued = local.stream(LONG, on_status=lambda fields: in_line.set())
    waiter = threading.Thread(target=lambda: list(queued))
    waiter.start()
    assert in_line.wait(WAIT)
    queued.close()
    waiter.join(WAIT)
    assert not waiter.is_alive() and queued.finish_reason == "stopped"
    running.close()
    assert list(deltas) == []  # the consumer sees the end, and the slot comes back
    assert list(local.stream(SHORT))


def test_local_provider_trims_history_to_the_window(provider):
    local = provider(context=256, max_tokens=64)
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn{i} " + "word " * 60}
               for i in range(20)]
    messages = [SYSTEM, *history, {"role": "user", "content": "What is 2+2?"}]
    llama = local._engine.instance(0)
    tokens, room, _, _ = local._engine.prompt(llama, messages, 64)
    prompt = llama.detokenize(tokens, special=True).decode()
    assert len(tokens) + room <= local.window == 256
    assert room == 64
    assert SYSTEM["content"] in prompt and "What is 2+2?" in prompt and "turn0 " not in prompt
    stream = local.stream(messages)
    assert "".join(d.text for d in stream)
    assert stream.usage["prompt_tokens"] == len(tokens)


def test_local_provider_cuts_an_overlong_last_message(provider):
    local = provider(context=256, max_tokens=64)
    messages = [SYSTEM, {"role": "user", "content": "start " + "word " * 600 + "the end?"}]
    llama = local._engine.instance(0)
    tokens, room, _, _ = local._engine.prompt(llama, messages, 64)
    prompt = llama.detokenize(tokens, special=True).decode()
    assert len(tokens) + room <= 256 and room >= 1
    assert "the end?" in prompt and "start " not in prompt


def test_local_provider_holds_the_model_once_per_process(provider):
    first, second = provider(), provider()
    assert first._engine is second._engine
    assert provider(concurrency=2)._engine is not first._engine  # another configuration, its own slots
    assert first.models() == [{"id": "SmolLM2-135M-Instruct.Q4_1", "label": "SmolLM2-135M-Instruct.Q4_1 (local)",
                               "reasoning": False, "context_window": 4096}]
    assert "facts wrong" in first.notice


@pytest.mark.parametrize("path", ["missing.gguf", "."])
def test_local_find_model_refuses_bad_path(tmp_path, path):
    with pytest.raises(LocalModelUnavailable, match="LOCAL_MODEL_PATH=.* is not a file"):
        find_model(str(tmp_path / path))


def test_local_runtime_problem_without_llama_cpp(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    problem = runtime_problem()
    assert "llama-cpp-python is not installed" in problem and "make local" in problem
    with pytest.raises(LocalModelUnavailable, match="make local"):
        LocalProvider()


def test_local_provider_reports_a_broken_model_file(local_model, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LocalModelUnavailable, match="broken.gguf could not be loaded"):
        LocalProvider(str(broken))


def test_local_provider_failure_mid_generation_is_an_upstream_error(provider, monkeypatch):
    local = provider(max_tokens=20)

    def fail(*args, **kwargs):
        raise RuntimeError("decode failed")

    monkeypatch.setattr(local._engine, "prompt", fail)
    with pytest.raises(UpstreamError) as caught:
        list(local.stream(SHORT))
    assert caught.value.code == "upstream_unavailable" and "decode failed" in caught.value.detail
    monkeypatch.undo()
    assert list(local.stream(SHORT))  # the slot was given back


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_local_provider_leaves_the_loop_free_under_green_threads(local_model, mode):
    """While a reply generates, another green thread keeps running: decoding happens in native threads."""
    patch = ("import eventlet; eventlet.monkey_patch(); from eventlet import sleep, spawn" if mode == "eventlet"
             else "from gevent import monkey; monkey.patch_all(); from gevent import sleep, spawn")
    script = textwrap.dedent(f"""
        {patch}
        from chatbot.providers.local import LocalProvider
        stream = LocalProvider(max_tokens=400, temperature=0.0).stream({LONG!r})
        ticks_during = []
        state = {{"ticks": 0, "generating": True}}
        def ticker():
            while state["generating"]:
                state["ticks"] += 1
                sleep(0)
        spawn(ticker)
        for i, delta in enumerate(stream):
            ticks_during.append(state["ticks"])
            if i == 8:
                stream.close()
        state["generating"] = False
        # The ticker ran between consecutive tokens, not only before or after the generation.
        print(sum(1 for a, b in zip(ticks_during, ticks_during[1:]) if b > a), len(ticks_during), stream.finish_reason)
    """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], cwd=ROOT, capture_output=True,
                            # Generous: the ticker below never yields the GIL, so each token waits for Python's
                            # switch interval; a guard against a hang, not a speed check.
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    advanced, deltas, finish = result.stdout.split()
    assert int(deltas) == 9 and finish == "stopped"
    assert int(advanced) >= 4, result.stdout


class ScriptedModel:
    """Stands in for the loaded model: streams the given pieces of text as llama-cpp-python's chunks."""

    def __init__(self, pieces: list[str]):
        """Stream `pieces`, then finish with "length"."""
        self.pieces = pieces

    def create_completion(self, prompt, **options):
        """The chunks of a streamed completion."""
        for piece in self.pieces:
            yield {"choices": [{"text": piece, "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": "length"}]}


def scripted(local, monkeypatch, pieces: list[str]) -> list[list[dict]]:
    """Make `local` generate `pieces`; returns the list that collects the messages each prompt was built from."""
    prompts: list[list[dict]] = []

    def prompt(llama, messages, max_tokens):
        prompts.append(messages)
        return [1, 2, 3], max_tokens, [], None

    monkeypatch.setattr(local._engine, "instance", lambda slot: ScriptedModel(pieces))
    monkeypatch.setattr(local._engine, "prompt", prompt)
    return prompts


def test_local_provider_ends_a_role_play_transcript(provider, monkeypatch):
    local = provider(max_tokens=50)
    scripted(local, monkeypatch, ["Liam", ":", " Hello", " there", ".", "\n", "Emma", ":", " Hi", " Liam", "!"])
    stream = local.stream(SHORT)
    assert "".join(d.text for d in stream) == "Hello there."
    assert stream.finish_reason == "stop"


def test_local_provider_tells_the_model_its_own_system_prompt(provider, monkeypatch):
    from chatbot.config import DEFAULT_LOCAL_SYSTEM_PROMPT as SYSTEM_PROMPT

    local = provider(max_tokens=50, system_prompt=SYSTEM_PROMPT)
    prompts = scripted(local, monkeypatch, ["Hello", "!"])
    assert "".join(d.text for d in local.stream(SHORT)) == "Hello!"
    assert prompts[-1] == [{"role": "system", "content": SYSTEM_PROMPT}, SHORT[1]]
    assert "ChatbotWS" in SYSTEM_PROMPT
    own = provider(max_tokens=50)  # by default, what the server sends
    prompts = scripted(own, monkeypatch, ["Hi"])
    list(own.stream(SHORT))
    assert prompts[-1] == SHORT
