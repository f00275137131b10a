"""Files benchmark: tus upload throughput (one PATCH vs 5 MB PATCHes, against the real server) beside a plain HTTP
upload of the same bytes (bench/plain_upload.py: same stack, a route that reads and discards the body), the real
server's CPU per turn with and without an attached document (fake Groq), extraction time of a 100-page PDF
(in-process and in the bounded worker), and retrieval time per question with 1,000 and 100,000 chunks indexed
(SQLite, and Postgres when TEST_DATABASE_URL is set).

    .venv/bin/python bench/files_bench.py [--quick] [--only upload|turns|extraction|retrieval] [--turns 40]
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/files_bench.py

Prints markdown tables of wall-clock times. The PDF and the chunks are made here (fpdf2, random words).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from common import ROOT, Child, cpu_seconds, free_port, markdown_table, median, percentile

from chatbot.files.analyze import analyze
from chatbot.files.chunking import Chunk
from chatbot.files.process import analyze_bounded
from chatbot.store import Store, isolated_database

WORDS = [f"w{index:05d}" for index in range(20000)]
TUS = {"Tus-Resumable": "1.0.0"}
HIGH_LIMIT = "100000/minute"


def pdf(pages: int) -> bytes:
    """A PDF of `pages` pages of about 1,800 characters of words each."""
    from fpdf import FPDF

    rng = random.Random(7)
    document = FPDF()
    document.set_font("helvetica", size=10)
    for _ in range(pages):
        document.add_page()
        document.multi_cell(0, 5, " ".join(rng.choice(WORDS) for _ in range(300)))
    return bytes(document.output())


def extraction(pages: int, runs: int) -> list[list[object]]:
    """Rows: median milliseconds to read a `pages`-page PDF in-process and in the worker process."""
    data = pdf(pages)
    rows = []
    for name, call in (("in-process (analyze)", analyze), ("bounded worker (analyze_bounded)", analyze_bounded)):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = call(data)
            times.append((time.perf_counter() - start) * 1000)
        rows.append([name, f"{len(data) / 1e6:.2f} MB", result.pages, len(result.chunks), f"{median(times):.0f}"])
    return rows


def retrieval(url: str, sizes: list[int], questions: int) -> list[list[object]]:
    """Rows: milliseconds per best_chunks() call with `size` chunks indexed for the owner (100 documents)."""
    rng = random.Random(11)
    rows = []
    with isolated_database(url) as isolated:
        store = Store(isolated)
        store.migrate()
        owner = store.create_session()[0]
        blob_ids: list[int] = []
        indexed = 0
        for size in sizes:
            per_document = max(1, (size - indexed) // 100)
            while indexed < size:
                info = store.create_upload(owner, "doc.pdf", 1, quota=10**12)
                store.append_upload(owner, info["id"], 0, b"x")
                store.complete_upload(owner, info["id"], os.urandom(32).hex())
                chunks = [Chunk(n, " ".join(rng.choice(WORDS) for _ in range(160)), n + 1, None)
                          for n in range(min(per_document, size - indexed))]
                store.finish_document(info["blob_id"], "application/pdf", len(chunks), chunks)
                blob_ids.append(info["blob_id"])
                indexed += len(chunks)
            # Fresh statistics, as autovacuum (Postgres) would have them after a bulk load; without them the planner
            # may scan every chunk instead of using the GIN index.
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            times = []
            for _ in range(questions):
                question = "What does it say about " + " and ".join(rng.choice(WORDS) for _ in range(3)) + "?"
                start = time.perf_counter()
                store.best_chunks(owner, blob_ids, question, limit=16)
                times.append((time.perf_counter() - start) * 1000)
            rows.append([store.dialect, f"{indexed:,}", len(blob_ids), f"{median(times):.1f}",
                         f"{percentile(times, 95):.1f}"])
        store.close()
    return rows


def start_app(workdir: Path, env: dict[str, str], children: list[Child]) -> tuple[Child, str]:
    """Start `python app.py` (gevent, a fresh SQLite file) on a free port; returns it and its base URL."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": "gevent", "REDIS_URL": "",
           "DATABASE_URL": f"sqlite:///{workdir}/bench-{port}.db", "SECRET_KEY": secrets.token_urlsafe(32),
           "LOG_LEVEL": "warning", "RATE_LIMIT_UPLOADS": HIGH_LIMIT, "RATE_LIMIT_MESSAGES": HIGH_LIMIT,
           "RATE_LIMIT_MESSAGES_PER_IP": HIGH_LIMIT, "RATE_LIMIT_CONNECTIONS": HIGH_LIMIT,
           "RATE_LIMIT_ACTIONS": HIGH_LIMIT, **env}
    server = Child("server (gevent)", [sys.executable, str(ROOT / "app.py")], env, workdir / f"server-{port}.log",
                   cwd=ROOT)
    children.append(server)
    base = f"http://127.0.0.1:{port}"
    server.wait_http_ok(base + "/healthz", 60)
    return server, base


class Session:
    """One python-socketio connection to the real server: its bearer token, one turn at a time."""

    def __init__(self, base: str):
        """Connect and wait for `session_id`."""
        import socketio

        self.sio = socketio.Client()
        self._changed = threading.Condition()
        self._finals: dict[int, dict] = {}
        self._errors: list[dict] = []
        self.token: str | None = None
        self.sio.on("session_id", self._on_session)
        self.sio.on("bot_message", self._on_final)
        self.sio.on("error", self._on_error)
        self.sio.connect(base, transports=["websocket"], wait_timeout=30)
        with self._changed:
            if not self._changed.wait_for(lambda: self.token, 30):
                raise RuntimeError("no session_id within 30 s")

    def _on_session(self, data) -> None:
        """Keep the token (the Bearer of the tus requests)."""
        with self._changed:
            self.token = data["token"]
            self._changed.notify_all()

    def _on_final(self, data) -> None:
        """Keep a reply's final message (the welcome message has no reply_id)."""
        if data.get("reply_id") is not None:
            with self._changed:
                self._finals[data["reply_id"]] = data
                self._changed.notify_all()

    def _on_error(self, data) -> None:
        """Keep an error event."""
        with self._changed:
            self._errors.append(data)
            self._changed.notify_all()

    def call(self, event: str, data: dict) -> dict:
        """Emit with an ack; raise unless it is ok."""
        ack = self.sio.call(event, data, timeout=60)
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise RuntimeError(f"{event} refused: {ack!r}")
        return ack

    def turn(self, text: str, attachments: list[str]) -> dict:
        """Send one message and wait for its reply's final bot_message."""
        reply_id = self.call("user_message", {"message": text, "attachments": attachments})["reply_id"]
        with self._changed:
            if not self._changed.wait_for(lambda: reply_id in self._finals or self._errors, 60):
                raise RuntimeError(f"reply {reply_id}: no final bot_message within 60 s")
            if self._errors:
                raise RuntimeError(f"error event {self._errors[0]!r}")
            final = self._finals.pop(reply_id)
        if final.get("finish_reason") != "stop":
            raise RuntimeError(f"reply {reply_id} ended with {final.get('finish_reason')!r}")
        return final


def tus_upload(base: str, token: str, data: bytes, piece: int) -> str:
    """Upload `data` with tus in PATCHes of `piece` bytes; returns the upload's path (/files/<id>)."""
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    location = requests.post(base + "/files", headers={**auth, "Upload-Length": str(len(data))}).headers["Location"]
    for offset in range(0, len(data), piece):
        answer = requests.patch(base + location, data=data[offset:offset + piece], headers={
            **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert answer.status_code == 204, answer.text
    return location


def wait_processed(base: str, token: str, location: str) -> dict:
    """Poll the upload's info until the server has hashed and read it (the service has no push for HTTP clients)."""
    while True:
        info = requests.get(f"{base}{location}/info", headers={"Authorization": f"Bearer {token}"}).json()
        if info["status"] != "processing":
            return info
        time.sleep(0.1)


def upload(mb: int, runs: int) -> list[list[object]]:
    """Rows: MB/s of a tus upload of `mb` MB (one PATCH, 5 MB PATCHes) to the real server (gevent, SQLite), and of
    the same bytes as one plain POST body to a route that only reads and discards it (bench/plain_upload.py, same
    stack); the three take turns, `runs` times each, and the median counts."""
    children: list[Child] = []
    with tempfile.TemporaryDirectory() as name:
        workdir = Path(name)
        try:
            server, base = start_app(workdir, {"LLM_PROVIDER": "demo", "MAX_UPLOAD_MB": str(mb + 1),
                                               "USER_STORAGE_MB": str(10 * mb)}, children)
            port = free_port()
            plain = Child("plain upload (gevent)", [sys.executable, str(ROOT / "bench" / "plain_upload.py")],
                          {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": "gevent"},
                          workdir / "plain.log", cwd=ROOT)
            children.append(plain)
            plain_base = f"http://127.0.0.1:{port}"
            plain.wait_http_ok(plain_base + "/healthz", 60)
            session = Session(base)
            data = os.urandom(mb * 2**20)
            times: dict[str, list[float]] = {"plain": [], "one": [], "pieces": []}
            for _ in range(runs):
                start = time.perf_counter()
                answer = requests.post(plain_base + "/upload", data=data,
                                       headers={"Content-Type": "application/octet-stream"})
                assert answer.json()["received"] == len(data), answer.text
                times["plain"].append(time.perf_counter() - start)
                for label, piece in (("one", len(data)), ("pieces", 5 * 2**20)):
                    start = time.perf_counter()
                    location = tus_upload(base, session.token, data, piece)
                    times[label].append(time.perf_counter() - start)
                    # The finished upload is read next (hash, worker): let that end before the next measurement.
                    wait_processed(base, session.token, location)
                    requests.delete(base + location, headers={**TUS, "Authorization": f"Bearer {session.token}"})
            session.sio.disconnect()
        finally:
            for child in children:
                child.stop()
    plain_rate = mb / median(times["plain"])
    rows = []
    for label, key in ((f"plain POST of {mb} MB, read and discarded (baseline)", "plain"),
                       (f"tus, one PATCH of {mb} MB", "one"), ("tus, 5 MB PATCHes", "pieces")):
        rate = mb / median(times[key])
        rows.append([label, f"{mb}", f"{median(times[key]):.3f}", f"{rate:.1f}", f"{rate / plain_rate:.2f}"])
    return rows


def turn_cpu(turns: int, pages: int, rounds: int) -> list[list[object]]:
    """Rows: the real server's CPU ms per turn (gevent, SQLite, fake Groq) for a plain message and for the same
    message carrying one ready `pages`-page PDF; batches of `turns` alternate `rounds` times, each in a new
    conversation, and CPU is /proc utime+stime of the server process around each batch."""
    children: list[Child] = []
    key = "gsk_bench_" + secrets.token_hex(8)
    cpu = {"plain": 0.0, "attached": 0.0}
    with tempfile.TemporaryDirectory() as name:
        workdir = Path(name)
        try:
            fake = Child("fake Groq", [sys.executable, "-m", "fakes.groq", "--port", "0", "--key", key,
                                       "--tokens", "40"], {**os.environ, "PYTHONUNBUFFERED": "1"},
                         workdir / "fake.log", cwd=ROOT)
            children.append(fake)
            fake_url = fake.wait_for_log(r"listening on (http://\S+)", 60).group(1)
            server, base = start_app(workdir, {"GROQ_API_KEY": key, "GROQ_BASE_URL": fake_url}, children)
            session = Session(base)
            location = tus_upload(base, session.token, pdf(pages), 5 * 2**20)
            info = wait_processed(base, session.token, location)
            assert info["status"] == "ready", info
            file_id = location.rsplit("/", 1)[1]
            question = "What does the document say about w00042 and w01234?"
            kinds = {"plain": [], "attached": [file_id]}
            for attachments in kinds.values():  # warm-up: first-use imports, caches, the worker
                session.call("new_conversation", {})
                for _ in range(3):
                    session.turn(question, attachments)
            for _ in range(rounds):
                for kind, attachments in kinds.items():
                    session.call("new_conversation", {})
                    before = cpu_seconds(server.pid)
                    for _ in range(turns):
                        final = session.turn(question, attachments)
                        assert bool(final.get("sources")) == bool(attachments), final.get("sources")
                    cpu[kind] += cpu_seconds(server.pid) - before
            session.sio.disconnect()
        finally:
            for child in children:
                child.stop()
    plain, attached = (cpu[kind] * 1000 / (turns * rounds) for kind in ("plain", "attached"))
    return [["plain message (baseline)", turns * rounds, f"{plain:.1f}", "+0.0", "1.00"],
            [f"with one ready {pages}-page PDF", turns * rounds, f"{attached:.1f}", f"{attached - plain:+.1f}",
             f"{attached / plain:.2f}"]]


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--only", choices=("upload", "extraction", "retrieval", "turns"), help="run one measurement")
    parser.add_argument("--turns", type=int, default=40, help="turns per batch in the CPU-per-turn measurement")
    args = parser.parse_args(argv)
    runs, sizes, questions, mb = (1, [1000, 10000], 20, 5) if args.quick else (3, [1000, 100000], 100, 20)
    if args.only in (None, "upload"):
        print("### Upload: tus to the real server vs a plain POST to a discard route (gevent, SQLite)\n")
        rows = upload(mb, 1 if args.quick else 5)
        print(markdown_table(["upload", "MB", "median seconds", "MB/s", "× plain"], rows))
    if args.only in (None, "turns"):
        print("\n### Server CPU per turn, plain vs with an attachment (real server, fake Groq, gevent, SQLite)\n")
        rows = turn_cpu(args.turns if not args.quick else 10, 10, 1 if args.quick else 2)
        print(markdown_table(["message", "turns", "server CPU ms/turn", "extra ms", "× plain"], rows))
    if args.only in (None, "extraction"):
        print("\n### Extraction of a 100-page PDF\n")
        print(markdown_table(["where", "size", "pages", "chunks", "median ms"], extraction(100, runs)))
    if args.only not in (None, "retrieval"):
        return 0
    urls = [f"sqlite:///{tempfile.mkdtemp()}/bench.db"]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append(os.environ["TEST_DATABASE_URL"])
    rows = []
    for url in urls:
        rows += retrieval(url, sizes, questions)
    print("\n### Retrieval per question (best_chunks, 16 best of the owner's documents)\n")
    print(markdown_table(["database", "chunks indexed", "documents", "median ms", "p95 ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
