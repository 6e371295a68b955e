"""Simulated users (tandem.simulate) against a live server with scripted engines: ratings follow
the grader, noise flips them at its rate, opted-out accounts never reach a snapshot, votes are
recorded, max_events holds, failures are counted. One `model` smoke test with the embedded model.

    .venv/bin/python -m pytest -q tests/test_simulate.py -m "not model"
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import random
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fake_engine import FakeEngine
from tandem.core.messages import Message
from tandem.engines import EngineError, ModelCatalog
from tandem.evals import get_task
from tandem.evals.tasks import Example, Grade, Task
from tandem.simulate import Judge, SimulationConfig, run_simulation
from tandem.store.models import Comparison, Feedback

TASK = get_task("instructions", split="train")
EXAMPLES = {e.id: e for e in TASK.examples()}
BY_PROMPT = {e.messages[-1].content: e for e in EXAMPLES.values()}
# Canned answers that pass some of the suite's prompts (lowercase, capitals, a quotation,
# JSON ...) and fail others.
CANDIDATES = (
    "here is a short answer in plain lowercase words.",
    "HERE IS A SHORT ANSWER IN CAPITALS.",
    '"here is a short answer."',
    '{"answer": "here"}',
    "Here is a short answer.",
)


@functools.cache
def _ranked_for(prompt: str) -> tuple[str, ...]:
    example = BY_PROMPT.get(prompt)
    if example is None:
        return CANDIDATES
    return tuple(sorted(CANDIDATES, key=lambda c: -TASK.reward(example, c)))


def _ranked(messages: Sequence[Message]) -> tuple[str, ...]:
    """The canned answers, best first by the grader's reward for this prompt."""
    return _ranked_for(messages[-1].content)


class GoodEngine(FakeEngine):
    """Answers a suite prompt with the canned text the grader likes best: about a fifth of
    the prompts pass, deterministically."""

    def _answer(self, messages: Sequence[Message]) -> str:
        return _ranked(messages)[0]


class BadEngine(FakeEngine):
    """... and with the one it likes least."""

    def _answer(self, messages: Sequence[Message]) -> str:
        return _ranked(messages)[-1]


class FlakyEngine(GoodEngine):
    """Fails (a backend error, 502) on about a third of the prompts, always the same ones."""

    async def stream(self, prompt, params):  # type: ignore[no-untyped-def]
        if zlib.crc32(prompt.messages[-1].content.encode()) % 3 == 0:
            raise EngineError("the backend fell over")
        async for chunk in super().stream(prompt, params):
            yield chunk


@contextmanager
def store_session(settings) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """The server's database, read directly to check what the API acknowledged."""
    from tandem.store import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@pytest.fixture
def server(settings, live_server):  # type: ignore[no-untyped-def]
    """A live server whose default model is `good`; `bad` answers worse; `flaky` fails."""
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="good")
    catalog.add(GoodEngine("good"))
    catalog.add(BadEngine("bad"))
    catalog.add(FlakyEngine("flaky"))
    # Dozens of turns a second from one test would trip the per-user generation limit.
    quiet = dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None)
    return live_server(create_app(quiet, catalog))


@pytest.fixture
def root(server: str) -> Iterator[httpx.Client]:
    """The server's first account (its admin), holding an API key; the simulated users come
    after it and are ordinary users."""
    with httpx.Client(base_url=server, timeout=30) as http:
        r = http.post(
            "/api/auth/signup", json={"email": "root@example.com", "password": "a b c d e"}
        )
        assert r.status_code == 201, r.text
        csrf = {"X-CSRF-Token": http.cookies["tandem_csrf"]}
        key = http.post("/api/keys", json={"name": "admin"}, headers=csrf).json()["key"]
        http.cookies.clear()
        http.headers["Authorization"] = f"Bearer {key}"
        yield http


def simulate(base: str, tmp_path: Path, **options: object) -> tuple[dict, list[dict]]:
    defaults: dict[str, object] = {
        "users": 4,
        "turns": 4,
        "noise": 0.0,
        "opted_out": 0.0,
        "regenerate_rate": 0.0,
    }
    config = SimulationConfig(base_url=base, **{**defaults, **options})  # type: ignore[arg-type]
    events_path = tmp_path / f"events-{random.random()}.jsonl"
    summary = run_simulation(config, events_path=events_path).to_dict()
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    return summary, events


def deserved(event: dict) -> str:
    return "up" if TASK.grade(EXAMPLES[event["example_id"]], event["answer"]).passed else "down"


def test_thumbs_follow_the_grader_without_noise(server, tmp_path):
    summary, events = simulate(server, tmp_path, users=3, turns=6, regenerate_rate=0.3)
    assert summary["accounts"] == 3 and summary["errors"] == {}
    assert summary["turns"] == 18 + summary["regenerations"] > 18
    thumbs = [e for e in events if e["kind"] == "thumbs"]
    assert len(thumbs) == summary["events_acknowledged"] == summary["turns"]
    assert [e["rating"] for e in thumbs] == [deserved(e) for e in thumbs]
    assert summary["thumbs_flipped"] == 0
    ups, downs = summary["thumbs_up"], summary["thumbs_down"]
    assert ups > 0 and downs > 0 and ups + downs == len(thumbs)
    for event in thumbs:
        if event["rating"] == "down":
            failed = TASK.grade(EXAMPLES[event["example_id"]], event["answer"]).details
            ids = [
                i
                for i, ok in zip(
                    failed["instruction_id_list"],
                    failed["follow_instruction_list_strict"],
                    strict=True,
                )
                if not ok
            ]
            assert event["reasons"] == ["didnt_follow_instructions"]
            assert event["comment"] == "did not follow: " + ", ".join(ids)
    assert any(e.get("regenerated") for e in thumbs)
    assert summary["answers_by_model"]["good"]["answers"] == len(thumbs)


def test_same_seed_same_choices_over_json_and_streams(server, tmp_path):
    """Per-user random streams: the run is reproducible whatever order requests finish in,
    and reading answers streamed changes nothing. Noise reaches the server as flipped
    ratings, each one marked."""

    def choices(events: list[dict]) -> list[tuple]:
        return sorted((e["user"], e["example_id"], e["rating"], e["answer"]) for e in events)

    summary, first = simulate(server, tmp_path, users=2, turns=4, noise=0.5, seed=7)
    _, again = simulate(server, tmp_path, users=2, turns=4, noise=0.5, seed=7, stream=True)
    _, other = simulate(server, tmp_path, users=2, turns=4, noise=0.5, seed=8)
    assert choices(first) == choices(again)
    assert choices(first) != choices(other)

    flips = [e for e in first if e["rating"] != deserved(e)]
    assert [e["flipped"] for e in first] == [e["rating"] != deserved(e) for e in first]
    assert 0 < len(flips) < len(first) and summary["thumbs_flipped"] == len(flips)


class EchoTask(Task):
    """A grader that costs nothing: an answer is good when it says "good"."""

    def examples(self) -> Iterator[Example]:
        yield Example("only", (Message.text("user", "say good"),))

    def grade(self, example: Example, response: str) -> Grade:
        return Grade(passed=response == "good")


def test_noise_flips_ratings_at_its_rate():
    judge, example, rng = Judge(EchoTask(), noise=0.3), Example("x", ()), random.Random(0)
    thumbs = [judge.thumbs(example, answer, rng) for answer in ("good", "bad") * 5000]
    flipped = [t for t in thumbs if t.flipped]
    assert 0.285 < len(flipped) / len(thumbs) < 0.315  # 10,000 draws: 3 standard deviations
    assert all((t.rating == "up") != t.assessment.good for t in flipped)
    assert all((t.rating == "up") == t.assessment.good for t in thumbs if not t.flipped)
    # A noisy thumbs-down on a good answer does not claim the instructions were broken.
    noisy_downs = [t for t in flipped if t.rating == "down"]
    assert noisy_downs and all("didnt_follow_instructions" not in t.reasons for t in noisy_downs)
    # Votes: the deserved verdict (here "a") survives 70% of the time; the rest is spread
    # evenly over the three others.
    votes = Counter(judge.vote(example, "good", "bad", rng).verdict for _ in range(6000))
    assert 0.67 < votes["a"] / 6000 < 0.73
    assert all(0.08 < votes[v] / 6000 < 0.12 for v in ("b", "tie", "both_bad"))


def test_opted_out_users_are_left_out_of_snapshots(server, root, tmp_path):
    r = root.put("/api/admin/settings", json={"comparison_rate": 0.3})
    assert r.status_code == 200, r.text
    summary, events = simulate(server, tmp_path, users=4, turns=3, opted_out=0.5, seed=1)
    assert summary["accounts"] == 4 and summary["opted_out_accounts"] == 2
    ids = {True: set(), False: set()}
    for event in events:
        ids[event["opted_out"]].add(event.get("feedback_id") or event.get("comparison_id"))
    assert ids[True] and ids[False]

    r = root.post("/api/datasets", json={"kind": "kto", "filters": {"test_fraction": 0}})
    assert r.status_code == 201, r.text
    signals = root.get(f"/api/datasets/{r.json()['id']}/signals").json()
    read = {i for kind_ids in signals.values() for i in kind_ids}
    assert read and not read & ids[True]
    assert read & ids[False]


def test_comparison_votes_are_recorded(server, root, settings, tmp_path):
    r = root.put(
        "/api/admin/settings", json={"comparison_rate": 1.0, "comparison_models": ["good", "bad"]}
    )
    assert r.status_code == 200, r.text
    summary, events = simulate(server, tmp_path, users=3, turns=4)
    assert summary["comparisons"] == summary["turns"] == 12
    assert sum(summary["votes"].values()) == summary["events_acknowledged"] == 12
    for event in events:
        assert event["kind"] == "vote" and sorted(event["models"]) == ["bad", "good"]
        example = EXAMPLES[event["example_id"]]
        a, b = TASK.reward(example, event["answer_a"]), TASK.reward(example, event["answer_b"])
        assert (event["reward_a"], event["reward_b"]) == (a, b)
        if a != b:  # the better answer wins, and it was the better model's
            assert event["verdict"] == ("a" if a > b else "b")
            assert event["models"][0 if a > b else 1] == "good"
        else:
            assert event["verdict"] in ("tie", "both_bad")
    assert {e["verdict"] for e in events} & {"a", "b"}
    with store_session(settings) as session:
        rows = session.execute(select(Comparison.id, Comparison.verdict)).tuples()
        stored = {comparison_id: verdict for comparison_id, verdict in rows}
    assert stored == {e["comparison_id"]: e["verdict"] for e in events}

    # The explicit compare endpoint: two samples of the chat's own model.
    root.put("/api/admin/settings", json={"comparison_rate": 0.0})
    summary, events = simulate(server, tmp_path, users=2, turns=2, rate_compare=1.0)
    assert summary["comparisons"] == 4 and all(e["models"] == ["good", "good"] for e in events)
    # Identical answers: a tie when they are good, both bad otherwise.
    for event in events:
        good = TASK.grade(EXAMPLES[event["example_id"]], event["answer_a"]).passed
        assert event["verdict"] == ("tie" if good else "both_bad")


def test_max_events_is_respected(server, root, settings, tmp_path):
    root.put("/api/admin/settings", json={"comparison_rate": 0.5})
    summary, events = simulate(server, tmp_path, users=4, turns=10, max_events=7)
    assert summary["events_acknowledged"] == len(events) == 7
    assert summary["thumbs_up"] + summary["thumbs_down"] + sum(summary["votes"].values()) == 7
    assert summary["turns"] < 40  # it stopped early
    # The server agrees: exactly 7 signals exist.
    with store_session(settings) as session:
        ratings = session.scalar(select(func.count()).select_from(Feedback))
        votes = session.scalar(select(func.count()).where(Comparison.verdict.is_not(None)))
    assert ratings + votes == 7


def test_errors_are_counted_not_raised(server, root, tmp_path):
    r = root.post("/api/profiles", json={"name": "flaky", "model_version": "flaky", "shared": True})
    assert r.status_code == 201, r.text
    profile = r.json()["id"]
    for stream, status in ((False, "502"), (True, "stream:engine_error")):
        summary, events = simulate(
            server, tmp_path, users=3, turns=4, profiles=(profile,), stream=stream
        )
        failures = summary["errors"].get(status, 0)
        assert failures > 0 and summary["errors"] == {status: failures}
        assert summary["turns"] + failures == 12 and len(events) == summary["turns"]

    summary, _ = simulate("http://127.0.0.1:9", tmp_path, users=2, turns=2)
    assert summary["accounts"] == 0 and summary["errors"] == {"ConnectError": 2}


def test_the_driver_only_talks_http():
    """Simulated users may use the eval tasks (their judgement) but none of the server."""
    import tandem.simulate

    forbidden = ("tandem.store", "tandem.api", "tandem.chat", "tandem.engines", "tandem.data")
    for path in Path(tandem.simulate.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.startswith(forbidden)], (path.name, names)


def test_held_out_benchmarks_are_refused():
    with pytest.raises(ValueError, match="held-out"):
        SimulationConfig(task="ifeval")
    with pytest.raises(ValueError, match="noise"):
        Judge(TASK, noise=1.5)


def test_cli_prints_the_summary(server, tmp_path):
    from typer.testing import CliRunner

    from tandem.cli.main import app

    out = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        ["simulate", "run", "--base-url", server, "--users", "2", "--turns", "1",
         "--opted-out", "0.5", "--summary", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert json.loads(result.output) == summary
    assert summary["accounts"] == 2 and summary["opted_out_accounts"] == 1
    assert summary["turns"] >= 2 and summary["turns_per_second"] > 0

    refused = CliRunner().invoke(app, ["simulate", "run", "--base-url", server, "--task", "xstest"])
    assert refused.exit_code == 2 and "held-out" in refused.output


@pytest.mark.model
def test_smoke_with_the_embedded_model(
    settings, onnx_engine, prepared_model, live_server, tmp_path
):
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    base = live_server(create_app(settings, catalog))
    summary, events = simulate(base, tmp_path, users=2, turns=2, max_tokens=32, noise=0.1)
    assert summary["errors"] == {} and summary["accounts"] == 2
    assert summary["turns"] >= 4 and summary["events_acknowledged"] == len(events) >= 4
    assert all(e["model_version"] == prepared_model.version for e in events)
    assert all(e["finish_reason"] in ("stop", "length") for e in events)
