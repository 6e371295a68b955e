"""Durability under kill -9: no acknowledged signal write is lost when the server crashes.

    python -m bench.durability                          # SQLite and PostgreSQL, writes
                                                        #   docs/benchmarks/durability.json
    python -m bench.durability --backend sqlite --load-s 5 --out /tmp/durability.json

For each database: start a real `tandem serve` on loopback (SQLite: a file in a fresh
TANDEM_HOME, WAL with synchronous=FULL as tandem.store.db sets it; PostgreSQL: a server
started by tests/pg.py with its durable defaults, fsync and synchronous_commit on), make one
conversation with one answer per writer (the embedded model, max_tokens 1), then `--writers`
threads rate their answer over and over (`POST /api/messages/{id}/feedback`, the thumbs in
the web app; each rating supersedes the previous one and adds a row) on kept-alive HTTP
connections. Every write the server acknowledged (200 with a feedback id) is recorded
client-side. After `--load-s` seconds of load, with the writers still writing, the server is
killed with SIGKILL; it is started again on the same database and
`GET /api/feedback?history=true` must list every acknowledged id. Writes that were in flight
at the kill were never acknowledged: they may or may not be there, and are reported apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import PREPARED_MODELS, ROOT, TandemProcess, cpu_seconds, load_average

TARGET_WRITES_PER_S = 500


@dataclass
class Writer:
    """One client thread: its own connection, its own answer to rate, what it was told."""

    message_id: str
    host: str
    port: int
    key: str
    acknowledged: dict[str, str] = field(default_factory=dict)  # feedback id -> comment
    acked_at: list[float] = field(default_factory=list)
    sent_unacknowledged: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def run(self, name: str, stop: threading.Event) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        path = f"/api/messages/{self.message_id}/feedback"
        n = 0
        while not stop.is_set():
            n += 1
            comment = f"{name}-{n}"
            body = json.dumps({"rating": "up" if n % 2 else "down", "comment": comment})
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                # The server is gone (the kill): this write was never acknowledged.
                self.sent_unacknowledged += 1
                return
            if response.status == 200:
                self.acknowledged[json.loads(data)["id"]] = comment
                self.acked_at.append(time.perf_counter())
            else:
                key = str(response.status)
                self.errors[key] = self.errors.get(key, 0) + 1


def _seed(client: httpx.Client, writers: int) -> list[str]:
    """One conversation with one (one-token) answer per writer: the message each rates."""
    ids = []
    for i in range(writers):
        conv = client.post("/api/conversations", json={"title": f"durability {i}"})
        conv.raise_for_status()
        r = client.post(
            f"/api/conversations/{conv.json()['id']}/messages",
            json={"content": f"Say a number: {i}", "sampling": {"max_tokens": 1}},
        )
        r.raise_for_status()
        ids.append(r.json()["assistant_message"]["id"])
    return ids


def run_one(
    backend: str,
    database_url: str | None,
    home: Path,
    writers: int,
    load_s: float,
    models_from: Path | None = PREPARED_MODELS,
) -> dict:
    """One kill -9 round on one database; the figures as a dict (`lost` must be 0)."""
    server = TandemProcess(
        home,
        database_url=database_url,
        # The seeding asks for one answer per writer at once; the per-user limit is not
        # what this measures.
        extra_env={"TANDEM_RATE_GENERATION": "off", "TANDEM_RATE_GENERATION_PER_KEY": "off"},
        models_from=models_from,
    )
    start_s = server.start()
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    try:
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            message_ids = _seed(client, writers)
        clients = [Writer(mid, "127.0.0.1", server.port, server.admin_key) for mid in message_ids]
        stop = threading.Event()
        threads = [
            threading.Thread(target=w.run, args=(f"w{i}", stop), daemon=True)
            for i, w in enumerate(clients)
        ]
        cpu_before = cpu_seconds(server.pid)
        began = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(load_s)
        cpu_used = cpu_seconds(server.pid) - cpu_before
        killed_at = time.perf_counter()
        server.kill()  # mid-load: every writer has a request on the wire or about to be
        stop.set()
        for t in threads:
            t.join(timeout=60)
        acknowledged = {k: v for w in clients for k, v in w.acknowledged.items()}
        acked_before_kill = sum(1 for w in clients for t_ in w.acked_at if t_ <= killed_at)
        # The steady rate: from the first acknowledgement to the kill (connection set-up and
        # the first requests' warm-up excluded).
        first = min((w.acked_at[0] for w in clients if w.acked_at), default=began)
        restart_s = server.start()
        with httpx.Client(base_url=server.base, headers=headers, timeout=300) as client:
            r = client.get("/api/feedback", params={"history": "true"})
            r.raise_for_status()
            rows = {row["id"]: row["comment"] for row in r.json()}
        server.stop()
    finally:
        server.kill()
    found = [fid for fid in acknowledged if fid in rows]
    wrong = [fid for fid in found if rows[fid] != acknowledged[fid]]
    writes_s = acked_before_kill / max(killed_at - first, 1e-9)
    errors: dict[str, int] = {}
    for w in clients:
        for k, v in w.errors.items():
            errors[k] = errors.get(k, 0) + v
    return {
        "backend": backend,
        "writers": writers,
        "load_s": round(killed_at - began, 2),
        "acknowledged_writes": len(acknowledged),
        "found_after_restart": len(found),
        "lost": len(acknowledged) - len(found),
        "content_mismatches": len(wrong),
        "in_flight_at_kill": sum(w.sent_unacknowledged for w in clients),
        "rows_after_restart": len(rows),
        "unacknowledged_but_present": len(rows) - len(found),
        "error_responses": errors,
        "writes_per_s": round(writes_s, 1),
        "meets_500_per_s": writes_s >= TARGET_WRITES_PER_S,
        "server_cpu_s_during_load": round(cpu_used, 2),
        "server_start_s": round(start_s, 1),
        "server_restart_s": round(restart_s, 1),
    }


def run(backends: list[str], writers: int, load_s: float) -> dict:
    results: dict[str, dict] = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-durability-") as tmp:
        for backend in backends:
            home = Path(tmp) / backend
            if backend == "sqlite":
                sqlite_url = f"sqlite:///{home / 'tandem.db'}"
                results[backend] = run_one(backend, sqlite_url, home, writers, load_s)
                results[backend]["database"] = "SQLite, WAL, synchronous=FULL"
                continue
            sys.path.insert(0, str(ROOT / "tests"))
            from pg import PostgresServer, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed (scripts/install-test-deps.sh)")
            pg = PostgresServer(bindir).start(durable=True)
            try:
                url = pg.create_database()
                results[backend] = run_one(backend, url, home, writers, load_s)
                results[backend]["database"] = (
                    f"PostgreSQL {bindir.parent.name} on loopback, fsync=on, synchronous_commit=on"
                )
            finally:
                pg.stop()
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "target_writes_per_s": TARGET_WRITES_PER_S,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--load-s", type=float, default=20.0, help="load before the kill")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/durability.json")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    report = run(backends, args.writers, args.load_s)
    report["command"] = " ".join(["python -m bench.durability", *(argv or sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["results"], indent=2))
    lost = sum(r["lost"] + r["content_mismatches"] for r in report["results"].values())
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
