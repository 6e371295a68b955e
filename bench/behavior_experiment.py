"""A behavior experiment run end to end with simulated users → docs/benchmarks/
behavior_experiment.json and the table between the `behavior-experiment` markers in
docs/experiments.md.

    .venv/bin/python -m bench.behavior_experiment [--users 40] [--turns 30] [--seed 0]

A real tandem server (uvicorn on loopback, in this process) serves a stand-in model that
follows one instruction about length (`LengthSteeredEngine`: "Answer in one or two sentences."
gives a short answer, "Explain in detail" a long one), so the experiment's two system-prompt
variants produce answers people can tell apart. Everything else goes through the public HTTP
API: the admin creates two shared profiles ("Quick answers", "Deep dives"), defines the
experiment for the site default and starts it; simulated users (tandem.simulate) sign up, chat
(3 of every 5 in "Quick answers" with a taste for concise answers, the other 2 in "Deep dives"
with a taste for detailed ones), vote in the comparisons the server draws, and the result is
read from GET /api/admin/experiments/{id}/result.

The preferences are the simulator's assumptions (`tandem.simulate.judgement.taste_verdict`),
not a finding about people: this run shows that the loop finds a split that exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks" / "behavior_experiment.json"
DOC = ROOT / "docs" / "experiments.md"
START = "<!-- behavior-experiment:start -->"
END = "<!-- behavior-experiment:end -->"

sys.path.insert(0, str(ROOT / "tests"))  # the stand-in engine builds on the tests' fake
from fake_engine import FakeEngine  # noqa: E402
from tandem.core.messages import Message  # noqa: E402

CONCISE = "Answer in one or two sentences."
DETAILED = "Explain in detail, with an example."
ELABORATION = (
    "To explain in more detail: the request has several parts, and each of them matters. "
    "First, read what is asked and what form the answer should take. Then answer each part in "
    "turn, with an example where one helps, and finally check the answer against the request."
)


class LengthSteeredEngine(FakeEngine):
    """A stand-in model that follows one instruction about length, read from the system
    message: a short answer for `CONCISE`, a long one for `DETAILED`, a middle one otherwise."""

    def _answer(self, messages: Sequence[Message]) -> str:
        system = messages[0].content if messages and messages[0].role == "system" else ""
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        gist = " ".join(question.split()[:8])
        if "one or two sentences" in system:
            return f"In short: {gist}."
        if "in detail" in system:
            return f"Here is a full answer to: {gist}. {ELABORATION} {ELABORATION}"
        return f"Here is an answer to: {gist}. {ELABORATION}"


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _admin(http: httpx.Client) -> dict[str, str]:
    r = http.post("/api/auth/signup", json={"email": "admin@example.com", "password": "a b c d e"})
    r.raise_for_status()
    csrf = {"X-CSRF-Token": http.cookies.get("tandem_csrf") or ""}
    key = http.post("/api/keys", json={"name": "bench"}, headers=csrf).json()["key"]
    http.cookies.clear()
    return {"Authorization": f"Bearer {key}"}


def run(users: int, turns: int, seed: int, rate: float, noise: float, home: Path) -> dict:
    from tandem.core.settings import Settings
    from tandem.engines import ModelCatalog
    from tandem.simulate import Simulation, SimulationConfig
    from tandem.web.app import create_app

    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        home=home,
        database_url=f"sqlite:///{home / 'tandem.db'}",
        chat_titles=False,
        job_worker=False,
        rate_generation=None,
        rate_generation_per_key=None,
    )
    catalog = ModelCatalog(default_model="steered")
    catalog.add(LengthSteeredEngine("steered"))
    base, server, thread = _serve(create_app(settings, catalog))
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            admin = _admin(http)
            profiles = {}
            for name in ("Quick answers", "Deep dives"):
                body = {"name": name, "shared": True}
                profiles[name] = http.post("/api/profiles", json=body, headers=admin).json()["id"]
            experiment = {
                "name": "Answer length",
                "hypothesis": "Most people prefer concise answers; some prefer detailed ones.",
                "profile_id": None,
                "comparison_rate": rate,
                "variants": [
                    {"name": "concise", "kind": "system_prompt", "prompt_addition": CONCISE},
                    {"name": "detailed", "kind": "system_prompt", "prompt_addition": DETAILED},
                ],
            }
            exp = http.post("/api/admin/experiments", json=experiment, headers=admin).json()
            http.post(f"/api/admin/experiments/{exp['id']}/start", headers=admin).raise_for_status()

            events: list[dict[str, Any]] = []
            quick, deep = profiles["Quick answers"], profiles["Deep dives"]
            config = SimulationConfig(
                base_url=base,
                users=users,
                turns=turns,
                seed=seed,
                noise=noise,
                opted_out=0.0,
                concurrency=8,
                tastes=("concise", "detailed", "concise", "detailed", "concise"),
                taste_profiles=(quick, deep, quick, deep, quick),
                account_prefix=f"bench-{seed}",
            )
            started = time.perf_counter()
            import asyncio

            summary = asyncio.run(Simulation(config, events.append).run())
            wall = time.perf_counter() - started
            result = http.get(f"/api/admin/experiments/{exp['id']}/result", headers=admin).json()
    finally:
        server.should_exit = True
        thread.join(timeout=30)

    votes = [e for e in events if e["kind"] == "vote"]
    truth = Counter(e["taste"] for e in votes)
    takers = Counter(e["taste"] for e in {e["user"]: e for e in votes}.values())
    return {
        "date": datetime.date.today().isoformat(),
        "command": f"python -m bench.behavior_experiment --users {users} --turns {turns} "
        f"--seed {seed} --rate {rate} --noise {noise}",
        "assumptions": {
            "engine": "LengthSteeredEngine (bench/behavior_experiment.py): a stand-in model "
            "whose answer length follows the variant's system prompt",
            "tastes": "users dealt concise, detailed, concise, detailed, concise in turn "
            "(60% concise); a concise user votes for the shorter answer, a detailed one for the "
            "longer (tandem.simulate.judgement.taste_verdict), each vote flipped with "
            f"probability {noise}",
            "segments": "concise users chat in the shared profile 'Quick answers', detailed "
            "users in 'Deep dives'",
        },
        "experiment": experiment,
        "simulation": {
            **{k: v for k, v in summary.to_dict().items() if k != "config"},
            "wall_seconds": round(wall, 2),
            "voters_by_taste": dict(takers),
            "votes_by_taste": dict(truth),
        },
        "result": result,
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3g}"


def render(report: dict) -> str:
    r = report["result"]
    rows = [
        "| variant | comparisons | win share (ties half) | 95% Wilson interval |",
        "| --- | ---: | ---: | --- |",
    ]
    for v in r["variants"]:
        rows.append(
            f"| {v['name']} | {v['comparisons']} | {_pct(v['win_share'])} "
            f"| {_pct(v['ci_low'])} – {_pct(v['ci_high'])} |"
        )
    rows += ["", f"| profile | decisive votes | {r['leader']} wins | 95% interval | prefers |"]
    rows.append("| --- | ---: | ---: | --- | --- |")
    for s in r["segments"]["rows"]:
        rows.append(
            f"| {s['name']} | {s['decisive_votes']} | {_pct(s['leader_share'])} "
            f"| {_pct(s['ci_low'])} – {_pct(s['ci_high'])} | {s['prefers'] or '–'} |"
        )
    u, sg, sim = r["users"], r["segments"], report["simulation"]
    tastes = ", ".join(f"{n} {t}" for t, n in sorted(sim["voters_by_taste"].items()))
    rec = r["recommendation"]
    rows += [
        "",
        f"By user: {u['tested']} of {u['voters']} voters had {u['min_votes']}+ decisive votes; "
        f"**{u['opposite']}** significantly prefer a variant other than {r['leader']} "
        f"({_pct(u['opposite_share'])}), {u['with_leader']} prefer it (split: "
        f"{'yes' if u['split'] else 'no'}). By profile: chi-square {sg['chi_square']:.1f}, "
        f"df {sg['df']}, {_p(sg['p_value'])} (split: {'yes' if sg['split'] else 'no'}). "
        f"The simulator dealt the voters these tastes: {tastes}.",
        "",
        f"**Recommendation: {rec['label']}{': ' + rec['variant'] if rec['variant'] else ''}.** "
        f"{rec['why']}",
        "",
        f"Measured {report['date']} by `{report['command']}` ({sim['accounts']} accounts, "
        f"{sim['turns']} turns, {r['comparisons']} comparisons, {r['votes']} votes, "
        f"{sim['wall_seconds']:.0f} s); full figures in "
        "[benchmarks/behavior_experiment.json](benchmarks/behavior_experiment.json). The "
        "preferences are the simulator's assumptions, not people's.",
    ]
    return "\n".join(rows)


def update_doc(table: str, path: Path = DOC) -> None:
    text = path.read_text()
    block = f"{START}\n{table}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if START not in text:
        raise SystemExit(f"{path} has no {START} marker")
    path.write_text(pattern.sub(lambda _: block, text, count=1))


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.5, help="the experiment's comparison rate")
    parser.add_argument("--noise", type=float, default=0.1, help="share of votes flipped")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/experiments.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-experiment-") as tmp:
        report = run(args.users, args.turns, args.seed, args.rate, args.noise, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_doc:
        update_doc(render(report))
    print(render(report))


if __name__ == "__main__":
    main()
