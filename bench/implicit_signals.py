"""Implicit signals from simulated users, and how well they agree with the thumbs those users
give the same answers.

    .venv/bin/python -m bench.implicit_signals            # ~1 minute on 2 cores

Starts a tandem server in this process (uvicorn on loopback, a temporary home and database)
whose model is a scripted engine: each answer is one of a few canned texts, the one the
instruction suite's grader likes best for the prompt about two times in three and another one
otherwise (chosen by the request's seed), streamed a word at a time so a user can stop it.
`tandem.simulate` users (`implicit=True`) then chat with it over HTTP: they rate every answer
(thumbs by the grader, 10% noise), vote on some blind comparisons, and copy, stop, edit and
resend, or correct answers with the odds in tandem.simulate.implicit, which depend on the
grader's judgement. The server records the implicit signals as it would for people (the
corrective follow-ups through its classifier), and `tandem.evals.implicit_agreement` measures
them against the thumbs and votes. Writes docs/benchmarks/implicit_signals.json and the table
between the markers in docs/evals.md.

What this measures is the pipeline (recording, consent, the classifier on the simulator's
phrasings, the agreement math) under the simulator's assumptions; it says nothing about how
people behave. A real deployment runs the same report on its own users
(`tandem eval implicit-agreement`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the scripted engine the tests use

from sqlalchemy import func, select  # noqa: E402

from fake_engine import FakeEngine  # noqa: E402
from tandem.core.messages import Message  # noqa: E402
from tandem.core.settings import Settings  # noqa: E402
from tandem.engines import ModelCatalog  # noqa: E402
from tandem.evals import get_task  # noqa: E402
from tandem.evals.implicit_agreement import implicit_agreement  # noqa: E402
from tandem.simulate import SimulationConfig, run_simulation  # noqa: E402
from tandem.simulate import implicit as assumptions  # noqa: E402
from tandem.store.implicit import ImplicitSignal  # noqa: E402

OUTPUT = REPO / "docs" / "benchmarks" / "implicit_signals.json"
DOC = REPO / "docs" / "evals.md"
START, END = "<!-- implicit-signals-table:start -->", "<!-- implicit-signals-table:end -->"
FILLER = " it keeps going for a few more words so there is something to read before the end."
CANDIDATES = (
    "here is a short answer in plain lowercase words." + FILLER,
    ("HERE IS A SHORT ANSWER IN CAPITALS." + FILLER).upper(),
    '"here is a short answer.' + FILLER + '"',
    '{"answer": "here is a short answer that keeps going for a few more words"}',
    "Here is a short answer." + FILLER.replace(" it ", " It "),
)
BEST_SHARE = 0.65  # how often the engine gives the grader's favourite answer
TASK = get_task("instructions", split="train")
BY_PROMPT = {e.messages[-1].content: e for e in TASK.examples()}


class VaryingEngine(FakeEngine):
    """The grader's favourite canned answer (BEST_SHARE of the time), another one otherwise."""

    def _answer(self, messages: Sequence[Message]) -> str:
        params = self.calls[-1][1]
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        example = BY_PROMPT.get(prompt.removesuffix(assumptions.EDIT_SUFFIX))
        ranked = list(CANDIDATES)
        if example is not None:
            ranked.sort(key=lambda c: -TASK.reward(example, c))
        rng = random.Random(params.seed)
        return ranked[0] if rng.random() < BEST_SHARE else rng.choice(ranked[1:])


def serve(settings: Settings, catalog: ModelCatalog) -> tuple[str, Any, Any]:
    import socket

    import uvicorn

    from tandem.web.app import create_app

    app = create_app(settings, catalog)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, app


def table(report: dict[str, Any]) -> str:
    def f(value: Any) -> str:
        return "–" if value is None else f"{value:.2f}"

    def ci(pair: Any) -> str:
        return "" if not pair else f" [{pair[0]:.2f}, {pair[1]:.2f}]"

    rows = [
        "| implicit kind | answers with it (rated) | P(down \\| signal) | P(down \\| none) "
        "| lift | MCC [95% CI] | κ [95% CI] | voted-against share (pairs) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    agreement = report["agreement"]
    for kind, row in agreement["kinds"].items():
        t, v = row["thumbs"], row["votes"]
        share = (
            "–"
            if v["loser_share"] is None
            else (f"{v['loser_share']:.2f}{ci(v['loser_share_ci95'])} ({v['discordant']})")
        )
        rows.append(
            f"| {kind} | {t['with_signal']} | {f(t['p_down_given_signal'])} | "
            f"{f(t['p_down_given_no_signal'])} | {f(t['lift'])} | {f(t['mcc'])}{ci(t['mcc_ci95'])}"
            f" | {f(t['kappa'])}{ci(t['kappa_ci95'])} | {share} |"
        )
    s = report["simulation"]
    rows.append("")
    rows.append(
        f"Simulated {report['measured']} by `python -m bench.implicit_signals`: "
        f"{s['accounts']} users ({s['opted_out_accounts']} opted out, never read), "
        f"{s['turns']} turns, {agreement['rated_answers']} answers with a thumbs (base "
        f"rate of thumbs-down {f(report['base_rate_down'])}), {agreement['voted_pairs']} "
        f"decisive votes; implicit actions {json.dumps(s['implicit'])}; signals recorded "
        f"(all users) {json.dumps(report['recorded'])}. The odds are the simulator's "
        "(tandem.simulate.implicit), so these figures check the pipeline, not people."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=96)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-doc", action="store_true", help="leave docs/evals.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/tandem.db",
            chat_titles=False,
            job_worker=False,
            rate_generation=None,
            rate_generation_per_key=None,
        )
        catalog = ModelCatalog(default_model="varying")
        catalog.add(VaryingEngine("varying", delay_s=0.004))
        base, server, app = serve(settings, catalog)
        import httpx

        # The first account administers the server; the simulated users come after it.
        httpx.post(f"{base}/api/auth/signup", json={"email": "root@x.io", "password": "a b c d e"})
        config = SimulationConfig(
            base_url=base,
            users=args.users,
            turns=args.turns,
            seed=args.seed,
            noise=0.1,
            opted_out=0.1,
            rate_compare=0.3,
            regenerate_rate=0.1,
            pass_threshold=0.5,
            implicit=True,
            concurrency=8,
            account_prefix="bench",
        )
        started = time.monotonic()
        summary = run_simulation(config).to_dict()
        with app.state.session_factory() as session:
            agreement = implicit_agreement(session, seed=args.seed).to_dict()
            recorded = dict(
                session.execute(
                    select(ImplicitSignal.kind, func.count()).group_by(ImplicitSignal.kind)
                ).all()
            )
        server.should_exit = True
    regenerate = agreement["kinds"]["regenerate"]["thumbs"]
    report = {
        "what": "implicit signals from simulated users vs their thumbs and votes",
        "measured": datetime.date.today().isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "assumptions": {
            name: dataclasses.asdict(getattr(assumptions, name))
            for name in ("COPY", "STOP", "EDIT_RESEND", "CORRECT")
        }
        | {
            "regenerate": "random (regenerate_rate 0.1), independent of the grader",
            "chat_on_after_good": assumptions.CHAT_ON,
            "peek_words": assumptions.PEEK_WORDS,
        },
        "simulation": summary,
        "recorded": dict(sorted(recorded.items())),
        "base_rate_down": regenerate["base_rate_down"],
        "agreement": agreement,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    print(text)
    if not args.no_doc:
        doc = DOC.read_text()
        if START in doc and END in doc:
            head, rest = doc.split(START, 1)
            DOC.write_text(f"{head}{START}\n{text}\n{END}{rest.split(END, 1)[1]}")


if __name__ == "__main__":
    main()
