"""Files benchmark: tus upload throughput (one PATCH vs 5 MB PATCHes, against the real server), extraction time of a
100-page PDF (in-process and in the bounded worker), and retrieval time per question with 1,000 and 100,000 chunks
indexed (SQLite, and Postgres when TEST_DATABASE_URL is set).

    .venv/bin/python bench/files_bench.py [--quick]
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/files_bench.py

Prints markdown tables of wall-clock times. The PDF and the chunks are made here (fpdf2, random words).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

import requests
from common import ROOT, free_port, markdown_table, median, percentile

from chatbot.files.analyze import analyze
from chatbot.files.chunking import Chunk
from chatbot.files.process import analyze_bounded
from chatbot.store import Store, isolated_database

WORDS = [f"w{index:05d}" for index in range(20000)]
TUS = {"Tus-Resumable": "1.0.0"}


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


def upload(mb: int) -> list[list[object]]:
    """Rows: MB/s of a tus upload of `mb` MB in one PATCH and in 5 MB PATCHes, to the real server (gevent, SQLite)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "ASYNC_MODE": "gevent", "LLM_PROVIDER": "demo",
               "DATABASE_URL": f"sqlite:///{workdir}/bench.db", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
               "LOG_LEVEL": "warning", "MAX_UPLOAD_MB": str(mb + 1), "USER_STORAGE_MB": str(10 * mb),
               "RATE_LIMIT_UPLOADS": "1000/minute"}
        server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if requests.get(base + "/healthz", timeout=1).ok:
                        break
                except (requests.ConnectionError, requests.Timeout):  # the socket listens before start-up ends
                    time.sleep(0.1)
            import socketio

            client = socketio.Client()
            tokens = []
            client.on("session_id", lambda data: tokens.append(data["token"]))
            client.connect(base, transports=["websocket"])
            while not tokens:
                time.sleep(0.01)
            auth = {**TUS, "Authorization": f"Bearer {tokens[0]}"}
            data = os.urandom(mb * 2**20)
            rows = []
            for label, piece in ((f"one PATCH of {mb} MB", len(data)), ("5 MB PATCHes", 5 * 2**20)):
                start = time.perf_counter()
                location = requests.post(base + "/files", headers={**auth, "Upload-Length": str(len(data))}).headers[
                    "Location"]
                for offset in range(0, len(data), piece):
                    answer = requests.patch(base + location, data=data[offset:offset + piece], headers={
                        **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
                    assert answer.status_code == 204, answer.text
                seconds = time.perf_counter() - start
                rows.append([label, f"{mb}", f"{seconds:.2f}", f"{mb / seconds:.1f}"])
                # The finished upload is read next (hash, worker): let that end before the next measurement.
                while requests.get(f"{base}{location}/info", headers=auth).json()["status"] == "processing":
                    time.sleep(0.1)
            client.disconnect()
            return rows
        finally:
            server.terminate()
            server.wait(10)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--only", choices=("upload", "extraction", "retrieval"), help="run one measurement")
    args = parser.parse_args(argv)
    runs, sizes, questions, mb = (1, [1000, 10000], 20, 5) if args.quick else (3, [1000, 100000], 100, 20)
    if args.only in (None, "upload"):
        print("### Upload (tus, real server, gevent, SQLite)\n")
        print(markdown_table(["upload", "MB", "seconds", "MB/s"], upload(mb)))
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
