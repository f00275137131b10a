"""The local model's first impression: a fixed set of simple prompts, each with a simple scoring rule, sent to the
local model exactly as the server sends a new conversation's first message (the provider it uses, the configured
system prompt, sampling and template), over a few fixed seeds.

    .venv/bin/python bench/local_prompts.py                  # the server's defaults, seeds 1 2 3
    .venv/bin/python bench/local_prompts.py --show           # and every reply
    .venv/bin/python bench/local_prompts.py --local-system "You are a helpful assistant." --temperature 0.7
    .venv/bin/python bench/local_prompts.py --local-system ""      # the server's SYSTEM_PROMPT instead

A reply scores when it passes its prompt's rule and does not open with a role-play line ("Liam: ..."). Prints one
line per prompt (passes / seeds) and the total; the score is a number to compare settings with, not a test.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import common  # noqa: F401  (puts the project on sys.path)

from chatbot.config import DEFAULT_LOCAL_SYSTEM_PROMPT, DEFAULT_SYSTEM_PROMPT, SETTINGS
from chatbot.providers.local import LocalProvider, runtime_problem
from chatbot.turns.context import build_context

COLORS = ("red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "brown", "gray", "grey",
          "violet", "indigo")
# A first line like "Liam: A friendly and helpful AI assistant." or "Sender: Alex": the model writing a transcript.
ROLE_PLAY = re.compile(r"^\s*[A-Z][A-Za-z]{1,20}(?: [A-Z][A-Za-z]{1,20})?:[ \t]+\S")


def words(text: str) -> int:
    """How many words `text` has."""
    return len(re.findall(r"[\w']+", text))


def has(pattern: str):
    """A rule: the reply matches `pattern` (case-insensitive)."""
    return lambda reply: re.search(pattern, reply, re.IGNORECASE) is not None


PROMPTS: list[tuple[str, str, object]] = [
    ("Say hello in five words.", "says hello, in at most 12 words",
     lambda r: has(r"\b(hello|hi)\b")(r) and words(r) <= 12),
    ("What is 2 + 2?", "4", has(r"\b(4|four)\b")),
    ("Name three colors.", "three colour names", lambda r: sum(c in r.lower() for c in COLORS) >= 3),
    ("What is the capital of France?", "Paris", has(r"\bparis\b")),
    ("How many days are in a week?", "7", has(r"\b(7|seven)\b")),
    ("What color is the sky on a clear day?", "blue", has(r"\bblue\b")),
    ("Translate 'thank you' into Spanish.", "gracias", has(r"\bgracias\b")),
    ("What is your name?", "ChatbotWS (the app's name)", has(r"chatbot ?ws")),
    ("Count from 1 to 5.", "1 2 3 4 5 (a repeated number, as in a numbered list, counts once)",
     lambda r: [n for i, n in enumerate(re.findall(r"\d+", r)) if i == 0 or n != re.findall(r"\d+", r)[i - 1]][:5]
     == list("12345")),
    ("Reply with just the word yes.", "only 'yes'", lambda r: re.fullmatch(r"\W*yes\W*", r, re.I) is not None),
    ("Write one sentence about cats.", "about cats, at most 2 sentences",
     lambda r: has(r"\bcats?\b")(r) and len(re.findall(r"[.!?](\s|$)", r.strip())) <= 2),
]


def passes(rule, reply: str) -> bool:
    """Whether a reply scores: its rule holds and it does not open with a role-play line."""
    return not ROLE_PLAY.match(reply) and bool(rule(reply))


def main(argv: list[str] | None = None) -> int:
    """Run every prompt once per seed and print the score."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--system", default=DEFAULT_SYSTEM_PROMPT, help="system prompt (default: the server's)")
    p.add_argument("--local-system", default=DEFAULT_LOCAL_SYSTEM_PROMPT,
                   help="what the local model is told instead (LOCAL_SYSTEM_PROMPT; '' sends --system)")
    p.add_argument("--temperature", type=float, default=SETTINGS["LOCAL_TEMPERATURE"].default)
    p.add_argument("--max-tokens", type=int, default=96, help="per reply (the server's default is 512)")
    p.add_argument("--model-path", help="a GGUF file (default: the packaged SmolLM2-135M)")
    p.add_argument("--show", action="store_true", help="print every reply")
    args = p.parse_args(argv)
    problem = runtime_problem(args.model_path)
    if problem:
        print(f"local model unavailable: {problem}", file=sys.stderr)
        return 2
    total = 0
    started = time.perf_counter()
    for prompt, expected, rule in PROMPTS:
        scored = 0
        for seed in args.seeds:
            provider = LocalProvider(args.model_path, max_tokens=args.max_tokens, temperature=args.temperature,
                                     seed=seed, system_prompt=args.local_system)
            history = [{"role": "user", "content": prompt, "status": "complete"}]
            reply = "".join(delta.text for delta in provider.stream(build_context(args.system, history, 10_000)))
            ok = passes(rule, reply)
            scored += ok
            if args.show:
                print(f"    seed {seed} {'ok ' if ok else 'BAD'} {reply!r}"[:300])
        total += scored
        print(f"{scored}/{len(args.seeds)}  {prompt}  (expects {expected})")
    print(f"score {total}/{len(PROMPTS) * len(args.seeds)} (temperature {args.temperature:g}, seeds "
          f"{' '.join(map(str, args.seeds))}, {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
