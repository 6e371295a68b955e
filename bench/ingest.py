"""Ingestion benchmark: a large upload through a real `tandem serve` process, timing and memory.

    python -m bench.ingest                 # 50 MB, writes docs/benchmarks/ingest.json
    python -m bench.ingest --mb 2 --out /tmp/ingest.json

Generates a synthetic but varied text file (sentences from a shuffled vocabulary, numbered
lines, some CSV-ish rows), starts `tandem serve` on a free port with a fresh TANDEM_HOME,
uploads the file over HTTP, polls `GET /api/files/{id}` until it is ready and records the
ingestion wall time, chunks per second and the server's peak RSS (VmHWM from
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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

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
            f.write(text)
            size += len(text.encode())
    return size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run(megabytes: float, out: Path, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="tandem-bench-ingest-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
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
        server = subprocess.Popen(
            [str(tandem), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                deadline = time.monotonic() + 180
                while True:
                    try:
                        if client.get("/api/files").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        server.kill()
                        err = server.stderr.read().decode(errors="replace")[-2000:]
                        raise RuntimeError(f"the server did not start:\n{err}")
                    time.sleep(0.2)
                rss_idle_kib = _status_kib(server.pid, "VmRSS")
                start = time.perf_counter()
                with corpus.open("rb") as f:
                    r = client.post("/api/files", files={"file": ("corpus.txt", f, "text/plain")})
                r.raise_for_status()
                upload_s = time.perf_counter() - start
                file_id = r.json()["id"]
                row = r.json()
                timeline = []
                while row["status"] not in ("ready", "failed"):
                    if time.perf_counter() - start > timeout_s:
                        break
                    time.sleep(2.0)
                    row = client.get(f"/api/files/{file_id}").json()
                    timeline.append(
                        (
                            round(time.perf_counter() - start, 1),
                            row["progress"],
                            _status_kib(server.pid, "VmRSS") // 1024,
                        )
                    )
                wall_s = time.perf_counter() - start
                peak_kib = _status_kib(server.pid, "VmHWM")
                chunks = row["chunk_count"]
                if row["status"] != "ready":
                    # Chunks written so far, for a rate when the run stopped at the timeout.
                    import sqlite3

                    db = sqlite3.connect(home / "tandem.db")
                    chunks = db.execute(
                        "select count(*) from file_chunks where file_id = ?", (file_id,)
                    ).fetchone()[0]
                    db.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "file_bytes": size,
        "status": row["status"],
        "error": row["error"],
        "progress": row["progress"],
        "chunks": chunks,
        "upload_s": round(upload_s, 2),
        "ingest_wall_s": round(wall_s, 1),
        "chunks_per_s": round(chunks / wall_s, 1) if wall_s else None,
        "server_rss_idle_mib": rss_idle_kib // 1024,
        "server_peak_rss_mib": peak_kib // 1024,
        "under_1_gib": peak_kib < 1024 * 1024,
        "timed_out": row["status"] not in ("ready", "failed"),
        "timeline_s_progress_rss_mib": timeline[:: max(1, len(timeline) // 40)],
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
    args = parser.parse_args()
    result = run(args.mb, args.out, args.timeout)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("timeline")}, indent=2))


if __name__ == "__main__":
    main()
