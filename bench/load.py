"""Load: simulated users chatting with the embedded model and rating, over HTTP, for minutes.

    python -m bench.load                                 # 50 users, 5 minutes, writes
                                                         #   docs/benchmarks/load.json
    python -m bench.load --users 10 --duration-s 30 --out /tmp/load.json

Starts a real `tandem serve` (SQLite in a fresh TANDEM_HOME; the embedded ONNX model answers)
on loopback. Each simulated user is an asyncio task with its own cookie jar, like a browser
tab: it signs up (session cookie + CSRF header, as the web app does), then until the end
picks actions with the weights in ACTIONS: send a message to one of its chats (`max_tokens`
32 by default; a third of them streamed), rate the last answer, open a new chat, list and open
chats, rename one, read its settings, profiles and ratings. Between actions it waits
`--think-s` (uniform from 0 to twice that), as a person reading would. Every request's latency
is measured client-side, from sending to the last byte of the body.

Users arrive spread over the first `--ramp-s` seconds. Routes are grouped as `generation`
(sending a message: the model answers within the request), `password` (sign-up: a
deliberately slow argon2 hash) and `other` (everything a user clicks that the database
answers); the target is no errors and p95 of `other` ≤ 50 ms over the whole run
(`meets_target`). The same figures from the last sign-up on are reported as
`groups_steady_state`.
The server's CPU time and peak RSS (VmHWM) come from /proc. Sign-up and log-in rate limits
per client address are off for the run, as all users share 127.0.0.1 (the per-account and
generation limits stay at their defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import PREPARED_MODELS, ROOT, TandemProcess, cpu_seconds, load_average
from tandem.core.memory import status_kib

NON_GENERATION_P95_TARGET_MS = 50.0
GENERATION = "generation"
PASSWORD = "password"
OTHER = "other"
QUESTIONS = (
    "What is the capital of France?",
    "Give me one tip for sleeping better.",
    "Write a haiku about autumn.",
    "How do I reverse a list in Python?",
    "Name three primary colours.",
    "What does HTTP stand for?",
    "Suggest a name for a cat.",
    "Explain photosynthesis in one sentence.",
)


@dataclass
class Stats:
    # route -> [(seconds since the run began when the request was sent, latency in s)]
    latencies: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    errors: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    group: dict[str, str] = field(default_factory=dict)
    began: float = field(default_factory=time.perf_counter)
    last_signup_done: float = 0.0


class User:
    def __init__(self, n: int, base: str, stats: Stats, max_tokens: int, rng: random.Random):
        self.n = n
        # Idle connections are dropped after 4 s, before uvicorn's 5 s keep-alive closes them:
        # reusing one the server is closing is a client race (a browser retries), not an error.
        limits = httpx.Limits(keepalive_expiry=4.0)
        self.client = httpx.AsyncClient(base_url=base, timeout=300, limits=limits)
        self.stats = stats
        self.max_tokens = max_tokens
        self.rng = rng
        self.chats: list[str] = []
        self.last_answer: str | None = None

    async def call(
        self, route: str, group: str, method: str, path: str, **kwargs: object
    ) -> httpx.Response | None:
        headers = {}
        if method != "GET":  # the web app echoes its CSRF cookie on every write
            headers["X-CSRF-Token"] = self.client.cookies.get("tandem_csrf", "")
        self.stats.group[route] = group
        start = time.perf_counter()
        try:
            r = await self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.stats.errors[route][type(exc).__name__] += 1
            return None
        done = time.perf_counter()
        self.stats.latencies[route].append((start - self.stats.began, done - start))
        if group == PASSWORD:
            self.stats.last_signup_done = max(self.stats.last_signup_done, done - self.stats.began)
        if r.status_code >= 400:
            self.stats.errors[route][str(r.status_code)] += 1
            return None
        return r

    async def sign_up(self) -> bool:
        body = {"email": f"user{self.n}@load.example", "password": f"load-pass-{self.n}-x7Q"}
        return (
            await self.call(
                "POST /api/auth/signup", PASSWORD, "POST", "/api/auth/signup", json=body
            )
            is not None
        )

    async def new_chat(self) -> None:
        r = await self.call(
            "POST /api/conversations",
            OTHER,
            "POST",
            "/api/conversations",
            json={"title": f"chat {len(self.chats) + 1}"},
        )
        if r is not None:
            self.chats.append(r.json()["id"])

    async def send(self) -> None:
        if not self.chats:
            await self.new_chat()
            return
        chat = self.rng.choice(self.chats)
        stream = self.rng.random() < 1 / 3
        body = {
            "content": self.rng.choice(QUESTIONS),
            "sampling": {"max_tokens": self.max_tokens},
            "stream": stream,
        }
        route = "POST /api/conversations/{id}/messages" + (" (stream)" if stream else "")
        r = await self.call(
            route, GENERATION, "POST", f"/api/conversations/{chat}/messages", json=body
        )
        if r is None:
            return
        if not stream:
            self.last_answer = r.json()["assistant_message"]["id"]
            return
        for line in r.text.splitlines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") == "done":
                    self.last_answer = event["message"]["id"]
                elif event.get("type") == "error":
                    self.stats.errors[route]["stream_error_event"] += 1

    async def rate(self) -> None:
        if self.last_answer is None:
            return await self.send()
        body = {"rating": self.rng.choice(["up", "down"]), "comment": "load test"}
        await self.call(
            "POST /api/messages/{id}/feedback",
            OTHER,
            "POST",
            f"/api/messages/{self.last_answer}/feedback",
            json=body,
        )

    async def list_chats(self) -> None:
        await self.call("GET /api/conversations", OTHER, "GET", "/api/conversations")

    async def open_chat(self) -> None:
        if self.chats:
            chat = self.rng.choice(self.chats)
            await self.call(
                "GET /api/conversations/{id}", OTHER, "GET", f"/api/conversations/{chat}"
            )

    async def rename_chat(self) -> None:
        if self.chats:
            chat = self.rng.choice(self.chats)
            await self.call(
                "PATCH /api/conversations/{id}",
                OTHER,
                "PATCH",
                f"/api/conversations/{chat}",
                json={"title": f"renamed {self.rng.randint(1, 999)}"},
            )

    async def settings(self) -> None:
        await self.call("GET /api/auth/me", OTHER, "GET", "/api/auth/me")
        await self.call("GET /api/custom-instructions", OTHER, "GET", "/api/custom-instructions")

    async def profiles(self) -> None:
        await self.call("GET /api/profiles", OTHER, "GET", "/api/profiles")

    async def my_ratings(self) -> None:
        await self.call("GET /api/feedback", OTHER, "GET", "/api/feedback")

    async def live(self, until: float, think_s: float, ramp_s: float) -> None:
        # People arrive spread over the first `ramp_s` seconds, not all in one instant.
        await asyncio.sleep(self.rng.uniform(0, ramp_s))
        if not await self.sign_up():
            return
        await self.new_chat()
        actions = [getattr(self, name) for name in ACTIONS]
        weights = list(ACTIONS.values())
        while time.monotonic() < until:
            await self.rng.choices(actions, weights)[0]()
            await asyncio.sleep(self.rng.uniform(0, 2 * think_s))
        await self.client.aclose()


# What a person does, and how often relative to the rest.
ACTIONS = {
    "send": 3,
    "rate": 2,
    "new_chat": 1,
    "list_chats": 2,
    "open_chat": 2,
    "rename_chat": 0.5,
    "settings": 1,
    "profiles": 0.5,
    "my_ratings": 0.5,
}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def _summary(latencies: list[float], errors: int, seconds: float) -> dict:
    values = sorted(latencies)
    return {
        "count": len(values),
        "errors": errors,
        "per_s": round(len(values) / seconds, 2),
        "p50_ms": round(_percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(_percentile(values, 0.95) * 1000, 1),
        "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
        "max_ms": round((values[-1] if values else 0.0) * 1000, 1),
    }


async def _sample(pid: int, until: float, samples: list[tuple[float, float, int]]) -> None:
    """Every second: (elapsed, server CPU seconds so far, RSS KiB), for the CPU curve."""
    start = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - start, cpu_seconds(pid), status_kib(pid, "VmRSS")))
        await asyncio.sleep(1.0)


async def _drive(
    base: str,
    pid: int,
    users: int,
    seconds: float,
    think_s: float,
    ramp_s: float,
    max_tokens: int,
    seed: int,
) -> tuple[Stats, list]:
    stats = Stats()
    rng = random.Random(seed)
    until = time.monotonic() + seconds
    crowd = [User(i, base, stats, max_tokens, random.Random(rng.random())) for i in range(users)]
    samples: list[tuple[float, float, int]] = []
    await asyncio.gather(
        _sample(pid, until, samples), *(u.live(until, think_s, ramp_s) for u in crowd)
    )
    return stats, samples


def run(
    users: int,
    seconds: float,
    think_s: float,
    ramp_s: float,
    max_tokens: int,
    seed: int = 1,
    models_from: Path | None = PREPARED_MODELS,
) -> dict:
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-load-") as tmp:
        env = {"TANDEM_RATE_LOGIN_PER_IP": "off"}
        server = TandemProcess(Path(tmp) / "home", extra_env=env, models_from=models_from)
        start_s = server.start()
        try:
            # One answer before the clock starts, so the model's first-run costs do not count.
            headers = {"Authorization": f"Bearer {server.admin_key}"}
            with httpx.Client(base_url=server.base, headers=headers, timeout=300) as c:
                conv = c.post("/api/conversations", json={}).json()["id"]
                c.post(
                    f"/api/conversations/{conv}/messages",
                    json={"content": "Hi", "sampling": {"max_tokens": 4}},
                )
            cpu_before = cpu_seconds(server.pid)
            began = time.perf_counter()
            stats, samples = asyncio.run(
                _drive(server.base, server.pid, users, seconds, think_s, ramp_s, max_tokens, seed)
            )
            wall = time.perf_counter() - began
            cpu_used = cpu_seconds(server.pid) - cpu_before
            peak_rss_kib = status_kib(server.pid, "VmHWM")
        finally:
            server.stop()
    steady_from = stats.last_signup_done
    routes = {}
    groups: dict[str, tuple[list[float], int]] = defaultdict(lambda: ([], 0))
    steady: dict[str, list[float]] = defaultdict(list)
    for route in sorted(set(stats.latencies) | set(stats.errors)):
        errs = sum(stats.errors[route].values())
        group = stats.group.get(route, OTHER)
        latencies = [lat for _, lat in stats.latencies[route]]
        routes[route] = {
            "group": group,
            **_summary(latencies, errs, wall),
            "error_kinds": dict(stats.errors[route]),
        }
        values, count = groups[group]
        groups[group] = (values + latencies, count + errs)
        steady[group] += [lat for t, lat in stats.latencies[route] if t >= steady_from]
    by_group = {g: _summary(v, e, wall) for g, (v, e) in sorted(groups.items())}
    # After the last sign-up: 50 password hashes in the first seconds are an arrival storm
    # a real server sees once, so the steady state is reported apart (errors: all of them).
    steady_window = max(wall - steady_from, 1e-9)
    by_group_steady = {g: _summary(v, 0, steady_window) for g, v in sorted(steady.items())}
    other_p95 = by_group.get(OTHER, {}).get("p95_ms", 0.0)
    total_errors = sum(r["errors"] for r in routes.values())
    cpu_curve = [
        (round(t1, 1), round((c1 - c0) / max(t1 - t0, 1e-9), 2))
        for (t0, c0, _), (t1, c1, _) in itertools.pairwise(samples)
    ]
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "config": {
            "users": users,
            "duration_s": seconds,
            "think_s": think_s,
            "ramp_s": ramp_s,
            "max_tokens": max_tokens,
            "actions": ACTIONS,
            "database": "SQLite (WAL, synchronous=FULL)",
        },
        "errors": total_errors,
        "non_generation_p95_ms": other_p95,
        "non_generation_p95_ms_steady_state": by_group_steady.get(OTHER, {}).get("p95_ms", 0.0),
        "meets_target": total_errors == 0 and other_p95 <= NON_GENERATION_P95_TARGET_MS,
        "target": f"no errors; p95 of non-generation routes <= {NON_GENERATION_P95_TARGET_MS} ms",
        "groups": by_group,
        "steady_state_from_s": round(steady_from, 1),
        "groups_steady_state": by_group_steady,
        "routes": routes,
        "server": {
            "start_s": round(start_s, 1),
            "peak_rss_mib": round(peak_rss_kib / 1024, 1),
            "cpu_s": round(cpu_used, 1),
            "mean_cpu_cores": round(cpu_used / wall, 2),
            "peak_cpu_cores_1s": max((c for _, c in cpu_curve), default=0.0),
        },
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration-s", type=float, default=300.0)
    parser.add_argument("--think-s", type=float, default=3.0, help="mean pause between actions")
    parser.add_argument(
        "--ramp-s", type=float, default=30.0, help="users arrive (sign up) over this long"
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/load.json")
    args = parser.parse_args(argv)
    report = run(args.users, args.duration_s, args.think_s, args.ramp_s, args.max_tokens, args.seed)
    report["command"] = " ".join(["python -m bench.load", *(argv or sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    keys = ("errors", "non_generation_p95_ms", "non_generation_p95_ms_steady_state", "meets_target")
    summary = {k: report[k] for k in keys}
    shown = ("groups", "groups_steady_state", "server", "machine")
    print(json.dumps({**summary, **{k: report[k] for k in shown}}, indent=2))
    return 0 if report["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
