"""Stored eval runs: batched generation, grading, summaries, compare (McNemar), admin API/page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tandem.cli.eval_runs as cli_eval_runs
from conftest import new_user
from fake_engine import FakeEngine
from tandem.cli.main import app as cli
from tandem.core.messages import Message
from tandem.engines import ModelCatalog
from tandem.evals.ifeval.task import default_input_path
from tandem.evals.paired import compare_outcomes, mcnemar_exact
from tandem.evals.runs import EVAL_SAMPLING, generate_answers, run_suite
from tandem.evals.tasks import TASKS, Example, Grade, Task, get_task
from tandem.store import EvalRepo, GenerationRepo, make_engine, make_session_factory, migrate
from tandem.store.users import UserRepo

runner = CliRunner()


class SaysTask(Task):
    """Item i passes when the answer contains the word "says-i"; FakeEngine echoes prompts."""

    name = "test-says"

    def examples(self) -> Iterable[Example]:
        for i in range(6):
            yield Example(id=f"t{i}", messages=(Message.text("user", f"says-{i}"),))

    def grade(self, example: Example, response: str) -> Grade:
        word = example.messages[-1].content
        return Grade(passed=word in response, scores={"hit": float(word in response)})


@pytest.fixture(autouse=True)
def says_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered per test, so other modules' "known tasks" listings never see it."""
    monkeypatch.setitem(TASKS, "test-says", SaysTask)


def test_mcnemar_exact_matches_binomial_tail_values():
    # Two-sided exact McNemar = 2 * P(Binom(b + c, 1/2) <= min(b, c)), capped at 1.
    assert mcnemar_exact(1, 5) == pytest.approx(0.21875)  # 2 * 7/64
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(8, 2) == pytest.approx(0.109375)  # 2 * 56/1024
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # Exact integer arithmetic: large runs neither overflow nor lose the small tail.
    assert 0 < mcnemar_exact(400, 600) < 1e-9 and mcnemar_exact(1000, 1000) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_compare_counts_flips_on_common_items():
    a = {"x": True, "y": True, "z": False, "w": False, "only-a": True}
    b = {"x": True, "y": False, "z": True, "w": True, "only-b": False}
    out = compare_outcomes(a, b)
    assert out["n_common"] == 4 and out["only_in_a"] == 1 and out["only_in_b"] == 1
    assert (out["pass_to_fail"], out["fail_to_pass"]) == (1, 2)
    assert out["pass_to_fail_ids"] == ["y"] and out["fail_to_pass_ids"] == ["w", "z"]
    assert (out["both_pass"], out["both_fail"]) == (1, 0)
    assert out["p_value"] == pytest.approx(mcnemar_exact(1, 2))


class CountingEngine(FakeEngine):
    """Records the most requests it ever had in flight at once."""

    def __init__(self) -> None:
        super().__init__("counting", delay_s=0.001)
        self.in_flight = self.peak = 0

    async def complete(self, messages, params):  # type: ignore[no-untyped-def]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().complete(messages, params)
        finally:
            self.in_flight -= 1


def test_generation_keeps_the_batch_full_and_answers_in_order():
    engine = CountingEngine()
    examples = [Example(id=str(i), messages=(Message.text("user", f"q{i}"),)) for i in range(40)]
    done: list[int] = []
    answers = asyncio.run(
        generate_answers(
            engine, examples, EVAL_SAMPLING, concurrency=16, on_done=lambda: done.append(1)
        )
    )
    assert engine.peak == 16  # never more, and the engine's 16 slots are kept busy
    assert [a.text for a in answers] == [f"You said: q{i}" for i in range(40)]
    assert len(done) == 40


def test_run_is_stored_with_items_and_generation_records(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        admin = UserRepo(session).create("a@x.io", None, is_admin=True)
        fake = FakeEngine("fake-model", script=["says-0 yes", "no", "says-2"])
        run = run_suite(session, get_task("test-says"), fake, owner_id=admin.id, limit=4)
        assert run.status == "finished" and run.n_items == 4 and run.wall_seconds is not None
        assert run.summary["passed"] == 2 and run.summary["pass_rate"] == 0.5
        assert run.summary["mean_scores"] == {"hit": 0.5}
        items = EvalRepo(session).items(run.id)
        assert [(i.example_id, i.passed) for i in items] == [
            ("t0", True),
            ("t1", False),
            ("t2", True),
            ("t3", False),
        ]
        gen = GenerationRepo(session).get(admin.id, items[0].generation_id)
        assert gen.output_text == "says-0 yes" and gen.model_version == "fake-model"
        assert gen.sampling["temperature"] == 0.0 and gen.sampling["repetition_penalty"] == 1.0
        assert items[0].prompt_messages[0]["parts"][0]["text"] == "says-0"

        class Broken(FakeEngine):
            async def complete(self, messages, params):  # type: ignore[no-untyped-def]
                raise RuntimeError("engine died")

        with pytest.raises(RuntimeError):
            run_suite(session, get_task("test-says"), Broken("fake-model"), owner_id=admin.id)
        failed = EvalRepo(session).list_runs()[0]
        assert failed.status == "failed" and "engine died" in failed.summary["error"]
        assert EvalRepo(session).items(failed.id) == []
    engine.dispose()


@pytest.mark.skipif(not default_input_path().is_file(), reason="shared IFEval data missing")
def test_ifeval_run_reports_the_four_accuracies(sqlite_url):
    engine = make_engine(sqlite_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        admin = UserRepo(session).create("a@x.io", None, is_admin=True)
        fake = FakeEngine("fake-model", script=["A short answer."])
        run = run_suite(session, get_task("ifeval"), fake, owner_id=admin.id, limit=3)
    engine.dispose()
    s = run.summary
    for key in ("prompt_level_strict", "prompt_level_loose", "instruction_level_strict"):
        assert 0.0 <= s[key] <= 1.0
    assert s["average_strict"] == pytest.approx(
        (s["prompt_level_strict"] + s["instruction_level_strict"]) / 2
    )
    assert s["prompt_level_strict"] == s["pass_rate"]


def test_cli_run_list_show_compare(tandem_home, monkeypatch):
    echo, other = FakeEngine("fake-model"), FakeEngine("other-model", script=["nothing"])

    def catalog(settings):  # type: ignore[no-untyped-def]
        # A fresh catalog per command: the command closes its catalog when done.
        c = ModelCatalog(default_model="fake-model")
        c.add(echo)
        c.add(other)
        return c

    monkeypatch.setattr(cli_eval_runs, "prepared_catalog", catalog)
    first = runner.invoke(
        cli, ["eval", "run", "test-says", "--model", "fake-model", "--max-tokens", "64"]
    )
    assert first.exit_code == 0, first.output
    a = json.loads(first.stdout)
    assert a["pass_rate"] == 1.0 and a["n"] == 6
    _, params = echo.calls[0]
    assert (params.temperature, params.repetition_penalty, params.max_tokens) == (0.0, 1.0, 64)
    second = runner.invoke(
        cli, ["eval", "run", "test-says", "--model", "other-model", "--limit", "5"]
    )
    b = json.loads(second.stdout)
    assert b["n"] == 5 and b["pass_rate"] == 0.0

    listed = runner.invoke(cli, ["eval", "runs"]).stdout.splitlines()
    assert [json.loads(line)["id"] for line in listed] == [b["run_id"], a["run_id"]]
    shown = json.loads(runner.invoke(cli, ["eval", "show", a["run_id"], "--items"]).stdout)
    assert len(shown["items"]) == 6 and shown["summary"]["passed"] == 6
    assert runner.invoke(cli, ["eval", "show", "nope"]).exit_code == 3  # not found

    cmp = runner.invoke(cli, ["eval", "compare", a["run_id"], b["run_id"]])
    out = json.loads(cmp.stdout)
    assert out["n_common"] == 5 and out["pass_to_fail"] == 5 and out["fail_to_pass"] == 0
    assert out["p_value"] == pytest.approx(mcnemar_exact(5, 0))
    assert runner.invoke(cli, ["eval", "compare", a["run_id"], "nope"]).exit_code == 3
    engine = make_engine(f"sqlite:///{tandem_home / 'tandem.db'}")
    with make_session_factory(engine)() as session:
        other_suite = EvalRepo(session).start_run("xstest", "fake-model", "fake", {})
        other_id = other_suite.id
    engine.dispose()
    mixed = runner.invoke(cli, ["eval", "compare", a["run_id"], other_id])
    assert mixed.exit_code == 1 and "different suites" in mixed.output
    unknown = runner.invoke(cli, ["eval", "run", "test-says", "--model", "nope"])
    assert unknown.exit_code == 3 and "nope" in unknown.output
    assert runner.invoke(cli, ["eval", "run", "no-suite", "--model", "fake-model"]).exit_code == 1


def _stored_run(tandem_home: Path) -> str:
    engine = make_engine(f"sqlite:///{tandem_home / 'tandem.db'}")
    with make_session_factory(engine)() as session:
        owner = UserRepo(session).get_by_email("admin@x.io")
        run = run_suite(
            session, get_task("test-says"), FakeEngine("fake-model"), owner_id=owner.id, limit=2
        )
    engine.dispose()
    return run.id


def test_api_is_admin_only(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    run_id = _stored_run(tandem_home)
    assert client.get("/api/evals/runs").status_code == 401
    for path in ("/api/evals/runs", f"/api/evals/runs/{run_id}", "/api/evals/runs/nope"):
        assert client.get(path, headers=user).status_code == 403
    runs = client.get("/api/evals/runs", headers=admin).json()
    assert [r["id"] for r in runs] == [run_id] and runs[0]["summary"]["pass_rate"] == 1.0
    assert client.get("/api/evals/runs?suite=ifeval", headers=admin).json() == []
    detail = client.get(f"/api/evals/runs/{run_id}", headers=admin).json()
    assert [i["example_id"] for i in detail["items"]] == ["t0", "t1"]
    missing = client.get("/api/evals/runs/nope", headers=admin)
    assert missing.status_code == 404 and "error" in missing.json()
    assert client.get("/api/evals/runs?limit=0", headers=admin).status_code == 422
    assert client.get("/api/evals/runs/" + "x" * 65, headers=admin).status_code == 422


def test_admin_page_needs_an_admin_session(client):
    r = client.get("/admin/evals", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client.post("/api/auth/signup", json={"email": "admin@x.io", "password": "password-123"})
    page = client.get("/admin/evals")
    assert page.status_code == 200 and '<script src="/static/admin_evals.js?v=' in page.text
    assert "/api/evals/runs" in client.get("/static/admin_evals.js").text  # a file: the CSP
    assert client.get("/api/evals/runs").status_code == 200  # the page's fetch, cookie-authed
    client.post("/api/auth/logout", headers={"X-CSRF-Token": client.cookies.get("tandem_csrf")})
    client.cookies.clear()
    new_user(client, "user@x.io")
    client.post("/api/auth/login", json={"email": "user@x.io", "password": "password-123"})
    assert client.get("/admin/evals").status_code == 403


@pytest.mark.model
def test_eval_run_on_the_real_model(model_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TANDEM_HOME", str(model_home))
    monkeypatch.setenv("TANDEM_DATABASE_URL", f"sqlite:///{tmp_path / 'evals.db'}")
    args = ["eval", "run", "ifeval", "--model", "smollm2-135m-instruct"]
    r = runner.invoke(cli, [*args, "--limit", "4", "--max-tokens", "64"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 4 and out["completion_tokens"] > 0
    assert 0.0 <= out["average_strict"] <= 1.0
    shown = json.loads(runner.invoke(cli, ["eval", "show", out["run_id"], "--items"]).stdout)
    assert all(item["response"].strip() for item in shown["items"])
