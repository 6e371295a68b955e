"""Ingestion benchmark: a large upload through a real `tandem serve` process, timing and memory.

    python -m bench.ingest                       # 50 MB, writes docs/benchmarks/ingest.json
    python -m bench.ingest --mb 2 --out /tmp/ingest.json
    python -m bench.ingest --embed-minutes 10    # stop waiting for vectors after 10 minutes

Generates a synthetic but varied text file (sentences from a shuffled vocabulary, numbered
lines, some CSV-ish rows), prepares the models into a fresh TANDEM_HOME (`tandem models
prepare`, its own process, as an operator would: preparation's torch never counts against
the server), starts `tandem serve` on a free port, sends one chat message so the chat engine
is resident as in a real server, uploads the file to that chat over HTTP and polls
`GET /api/files/{id}`. It records the time until the file is `ready` (searchable by
keywords), a files-tool search at that point (a chat message with tools=["files"], the tool's
own duration from the generation record), then the embedding phase: until every chunk has a
vector, or, past `--embed-minutes`, the measured rate and the projected total
(`embedding_complete: false`). Memory is the server's peak RSS (VmHWM from
/proc/<pid>/status, the kernel's high-water mark, so no peak between samples is missed).
The issue's bar: a 50 MB upload ingests with the server under 1 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tandem.core.memory import status_kib

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "bench-ingest-admin-key-0123456789"
_VOCABULARY = (
    "river mountain ledger harbour quantum violet engine garden archive signal copper lantern "
    "meadow falcon circuit bakery glacier compass orchard velvet tunnel summit cobalt prairie "
    "beacon canyon harvest mosaic nebula pioneer quarry saffron timber voyage walnut zephyr "
    "contract invoice budget revenue forecast audit schedule meeting report policy customer"
)
WORDS = _VOCABULARY.split()


def write_corpus(path: Path, megabytes: float, seed: int = 7) -> int:
    """A file of about `megabytes` MB: prose lines with invented names and numbers, and every
    so often a block of comma-separated rows, so chunks differ (no two embeddings alike)."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    size = 0
    with path.open("w", encoding="utf-8") as f:
        line_no = 0
        while size < target:
            line_no += 1
            if line_no % 50 == 0:
                rows = [
                    f"{line_no}-{i},{rng.choice(WORDS)},{rng.randint(1, 99999)},{rng.random():.4f}"
                    for i in range(8)
                ]
                text = "\n".join(rows) + "\n"
            else:
                n = rng.randint(8, 24)
                name = f"{rng.choice(WORDS).title()}{rng.randint(10, 9999)}"
                sentence = " ".join(rng.choice(WORDS) for _ in range(n))
                text = f"Line {line_no}: {name} {sentence} {rng.randint(0, 10**6)}.\n"
            if size + len(text.encode()) > target:  # at most the upload limit, not a byte over
                break
            f.write(text)
            size += len(text.encode())
    return size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(client: httpx.Client, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            if client.get("/api/files").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            err = server.stderr.read().decode(errors="replace")[-2000:] if server.stderr else ""
            raise RuntimeError(f"the server did not start:\n{err}")
        time.sleep(0.5)


def _ask(client: httpx.Client, conv: str, content: str, tools: list[str]) -> dict:
    r = client.post(
        f"/api/conversations/{conv}/messages",
        json={"content": content, "tools": tools, "sampling": {"max_tokens": 16}},
    )
    r.raise_for_status()
    return r.json()


def run(
    megabytes: float,
    out: Path,
    timeout_s: float,
    embed_minutes: float,
    models_from: Path | None = None,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="tandem-bench-ingest-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if models_from is not None:
            # Already prepared models (e.g. .cache/test-models/models): skips the minute of
            # GGUF conversion; `tandem models prepare` below then only checks them.
            shutil.copytree(models_from, home / "models")
        corpus = Path(tmp) / "corpus.txt"
        size = write_corpus(corpus, megabytes)
        port = _free_port()
        env = {
            **os.environ,
            "TANDEM_HOME": str(home),
            "TANDEM_ADMIN_API_KEY": ADMIN_KEY,
            "HF_HUB_OFFLINE": "1",
        }
        env.pop("TANDEM_DATABASE_URL", None)
        tandem = Path(sys.executable).parent / "tandem"
        prep_start = time.perf_counter()
        subprocess.run([str(tandem), "models", "prepare"], env=env, check=True, capture_output=True)
        prepare_s = time.perf_counter() - prep_start
        server = subprocess.Popen(
            [str(tandem), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        timeline: list[tuple[float, float, float, int]] = []
        search: dict = {}
        keyword_ready_s = embedded_s = None
        ready_at = ready_embedded = 0
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
                _wait_for_server(client, server)
                conv = client.post("/api/conversations", json={}).json()["id"]
                _ask(client, conv, "Hello! Say hi.", [])  # the chat engine is now resident
                rss_idle_kib = status_kib(server.pid, "VmRSS")
                torch_loaded = "libtorch" in Path(f"/proc/{server.pid}/maps").read_text()
                start = time.perf_counter()
                with corpus.open("rb") as f:
                    r = client.post(
                        "/api/files",
                        files={"file": ("corpus.txt", f, "text/plain")},
                        data={"conversation_id": conv},
                    )
                r.raise_for_status()
                upload_s = time.perf_counter() - start
                row = r.json()
                file_id = row["id"]
                while True:
                    now = time.perf_counter() - start
                    if row["status"] == "failed" or now > timeout_s:
                        break
                    if row["status"] == "ready" and keyword_ready_s is None:
                        keyword_ready_s, ready_at = now, time.perf_counter()
                        ready_embedded = row["embedded_count"]
                        answer = _ask(client, conv, "copper lantern invoice audit", ["files"])
                        call = answer["generation"]["tool_calls"][0]
                        search = {
                            "at_embedding_progress": row["embedding_progress"],
                            "tool_duration_s": call.get("duration_s"),
                            "citations": len(call.get("citations", [])),
                            "error": call.get("error"),
                        }
                    if row["status"] == "ready" and row["embedding_progress"] >= 1.0:
                        embedded_s = now
                        break
                    if keyword_ready_s is not None and (
                        time.perf_counter() - ready_at > embed_minutes * 60
                    ):
                        break
                    time.sleep(2.0)
                    row = client.get(f"/api/files/{file_id}").json()
                    timeline.append(
                        (
                            round(time.perf_counter() - start, 1),
                            row["progress"],
                            row["embedding_progress"],
                            status_kib(server.pid, "VmRSS") // 1024,
                        )
                    )
                embed_window_s = time.perf_counter() - ready_at if ready_at else 0.0
                if keyword_ready_s is not None:
                    # A search with part of the vectors in: cosine paged over what is embedded.
                    answer = _ask(
                        client, conv, "Which invoice mentions the copper lantern?", ["files"]
                    )
                    call = answer["generation"]["tool_calls"][0]
                    search["later_at_embedding_progress"] = row["embedding_progress"]
                    search["later_tool_duration_s"] = call.get("duration_s")
                    search["later_citations"] = len(call.get("citations", []))
                peak_kib = status_kib(server.pid, "VmHWM")
                wall_s = time.perf_counter() - start
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    chunks = row["chunk_count"]
    embedded = row["embedded_count"]
    rate = (embedded - ready_embedded) / embed_window_s if embed_window_s else None
    complete = embedded_s is not None
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "2 cores shared with other work; chat engine resident in the server",
        },
        "file_bytes": size,
        "status": row["status"],
        "error": row["error"],
        "chunks": chunks,
        "models_prepare_s": round(prepare_s, 1),
        "upload_s": round(upload_s, 2),
        "keyword_ready_s": round(keyword_ready_s, 1) if keyword_ready_s is not None else None,
        "parse_chunks_per_s": round(chunks / keyword_ready_s, 1) if keyword_ready_s else None,
        "embedding_complete": complete,
        "embedded_chunks": embedded,
        "fully_embedded_s": round(embedded_s, 1) if complete else None,
        "embedding_chunks_per_s": round(rate, 1) if rate else None,
        "embedding_projected_total_s": (
            round(embedded_s, 1)
            if complete
            else (round(keyword_ready_s + chunks / rate, 1) if rate and keyword_ready_s else None)
        ),
        "search": search,
        "wall_s": round(wall_s, 1),
        "server_rss_idle_mib": rss_idle_kib // 1024,
        "server_peak_rss_mib": peak_kib // 1024,
        "under_1_gib": peak_kib < 1024 * 1024,
        "torch_in_server": torch_loaded,
        "timeline_s_progress_embedded_rss_mib": timeline[:: max(1, len(timeline) // 40)],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="file size in MB (default 50)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "ingest.json")
    parser.add_argument(
        "--timeout", type=float, default=4 * 3600, help="stop waiting after this many seconds"
    )
    parser.add_argument(
        "--embed-minutes",
        type=float,
        default=240.0,
        help="after the file is ready, wait at most this long for its vectors (then project)",
    )
    parser.add_argument(
        "--models-from", type=Path, default=None, help="copy prepared models from this folder"
    )
    args = parser.parse_args()
    result = run(args.mb, args.out, args.timeout, args.embed_minutes, args.models_from)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("timeline")}, indent=2))


if __name__ == "__main__":
    main()
