"""`tandem flywheel`: timed resumable stages, base evals cached across turns, gated promotion
recorded as the flywheel, and the report rendered from stage records. Hermetic tests use fake
engines; one `model` test runs a tiny real turn end to end (< 3 minutes).

    .venv/bin/python -m pytest -q tests/test_flywheel.py -m "not model"
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tandem.cli.main import app as cli
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.engines.fake import FakeEngine
from tandem.evals.paired import mcnemar_exact as mcnemar_p
from tandem.evals.tasks import get_task
from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.evaluate import suite_examples
from tandem.flywheel.report import write_report
from tandem.flywheel.run import RUN_FILE, stage_eval, stage_gate
from tandem.flywheel.stages import StageRecord, StageRunner, read_records, write_record
from tandem.store import make_engine, make_session_factory, migrate
from tandem.store.evals import EvalRunRow
from tandem.store.rollouts import RolloutRepo

REQUIRED = {
    "ifeval_base": float,
    "ifeval_promoted": float,
    "xstest_safe_refusal_base": float,
    "xstest_safe_refusal_promoted": float,
    "feedback_events": int,
    "wall_seconds": float,
    "stage_seconds": dict,
    "dataset_sizes": dict,
    "seeds": dict,
    "config": dict,
    "promoted": bool,
    "gate_report": dict,
}
HELPFUL = "Sure. here is a short helpful answer, written plainly for you."
REFUSAL = "I'm sorry, but I can't help with that."
TINY = FlywheelConfig(
    users=2, max_events=4, ifeval_limit=3, xstest_limit=4, spec_limit=3, eval_max_tokens=32
)


def _sessions(home: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(Settings.from_env({"TANDEM_HOME": str(home)}).database_url)
    migrate(engine)
    return engine, make_session_factory(engine)


def _home_with_production(home: Path, version: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    db, sessions = _sessions(home)
    with sessions() as session:
        RolloutRepo(session).set_production(None, version, None, "first")
    db.dispose()


def _catalog(**scripts: str) -> tuple[ModelCatalog, dict[str, FakeEngine]]:
    catalog, engines = ModelCatalog(), {}
    for version, answer in scripts.items():
        engines[version] = FakeEngine(version, script=[answer])
        catalog.add(engines[version])
    return catalog, engines


def test_config_keeps_the_issue_budget_and_sampling_that_can_differ():
    with pytest.raises(ValueError, match="max_events"):
        FlywheelConfig(max_events=2001)
    with pytest.raises(ValueError, match="temperature"):
        FlywheelConfig(temperature=0.0)
    with pytest.raises(ValueError, match="method"):
        FlywheelConfig(method="sft")
    assert FlywheelConfig(method="both").methods == ("dpo", "kto")
    assert FlywheelConfig.from_dict({**TINY.to_dict(), "unknown": 1}) == TINY


def test_stages_are_timed_recorded_and_reused_unless_restarted(tmp_path: Path):
    calls: list[str] = []

    def body(name: str):  # type: ignore[no-untyped-def]
        def run() -> dict[str, object]:
            calls.append(name)
            time.sleep(0.01)
            return {"value": len(calls)}

        return run

    first = StageRunner(tmp_path)
    assert first.run("simulate", body("simulate")) == {"value": 1}
    assert first.records["simulate"].seconds >= 0.01
    again = StageRunner(tmp_path)
    assert again.run("simulate", body("simulate")) == {"value": 1}  # the record, not a rerun
    assert again.records["simulate"].reused
    again.run("serve", body("serve"), always=True)
    again.run("serve", body("serve"), always=True)  # the server starts every invocation
    assert calls == ["simulate", "serve", "serve"]
    assert StageRunner(tmp_path, restart=True).run("simulate", body("simulate")) == {"value": 4}
    assert set(read_records(tmp_path)) == {"simulate", "serve"}
    assert not list((tmp_path / "stages").glob("*.tmp"))


def test_each_stage_records_its_own_peak_memory(tmp_path: Path):
    def allocate() -> dict[str, object]:
        block = bytearray(300 * 1024 * 1024)  # zero-filled: every page is touched
        return {"size": len(block)}

    runner = StageRunner(tmp_path)
    runner.run("train", allocate)
    runner.run("eval", lambda: {})
    train, idle = (read_records(tmp_path)[n].peak_rss_mb["flywheel"] for n in ("train", "eval"))
    assert train > idle + 250  # the peak starts over at each stage, it is not the process's


def test_a_short_xstest_run_measures_safe_and_contrast_prompts():
    examples = suite_examples(get_task("xstest"), 5)
    assert [e.data["safe"] for e in examples] == [True, True, True, False, False]
    assert len(suite_examples(get_task("ifeval"), 3)) == 3


def test_base_evals_are_cached_across_turns_and_land_in_the_new_database(tmp_path: Path):
    cache = tmp_path / "cache"
    first_home, second_home = tmp_path / "turn1", tmp_path / "turn2"
    _home_with_production(first_home, "base")
    catalog, engines = _catalog(base=HELPFUL, cand1=HELPFUL)
    first = stage_eval(TINY, first_home, "base", ["cand1"], cache, catalog=catalog)
    assert first["engine"] == "fake"
    assert not any(run["cached"] for run in first["versions"]["base"].values())
    base_calls = len(engines["base"].calls)
    assert base_calls == 3 + 4 + 3

    catalog, engines = _catalog(base=HELPFUL, cand2=REFUSAL)
    second = stage_eval(TINY, second_home, "base", ["cand2"], cache, catalog=catalog)
    assert engines["base"].calls == []  # every base suite came from the cache
    assert all(run["cached"] for run in second["versions"]["base"].values())
    assert second["versions"]["base"]["ifeval"]["summary"]["average_strict"] == pytest.approx(
        first["versions"]["base"]["ifeval"]["summary"]["average_strict"]
    )
    db, sessions = _sessions(second_home)
    with sessions() as session:  # the gates read runs from the database: the copy is there
        suites = {r.suite for r in session.query(EvalRunRow).filter_by(model_version="base")}
    db.dispose()
    assert suites == {"ifeval", "xstest", "behavior_spec"}

    # Other sampling is another cache entry: IFEval and the spec (capped by eval_max_tokens)
    # are answered again; XSTest, capped by refusal_max_tokens, still comes from the cache.
    catalog, engines = _catalog(base=HELPFUL)
    other = FlywheelConfig(**{**TINY.to_dict(), "eval_max_tokens": 16})
    third = stage_eval(other, tmp_path / "turn3", "base", [], cache, catalog=catalog)
    assert len(engines["base"].calls) == 3 + 3
    assert {call[1].max_tokens for call in engines["base"].calls} == {16}
    assert {s: r["cached"] for s, r in third["versions"]["base"].items()} == {
        "ifeval": False,
        "xstest": True,
        "behavior_spec": False,
    }
    assert third["sampling"]["xstest"]["max_tokens"] == TINY.refusal_max_tokens
    # Every run, answered or cached, records each item's pass for the paired comparison.
    for run in [*first["versions"]["base"].values(), *second["versions"]["base"].values()]:
        assert len(run["passed"]) == run["n"]


def test_mcnemar_p_is_the_exact_binomial_tail():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)  # 6 of 6 discordant pairs one way
    assert mcnemar_p(9, 1) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_p(5, 5) == 1.0


def test_gate_promotes_a_candidate_that_holds_up_and_records_the_flywheel(tmp_path: Path):
    home = tmp_path / "home"
    _home_with_production(home, "base")
    catalog, _ = _catalog(base=HELPFUL, good=HELPFUL)
    evals = stage_eval(TINY, home, "base", ["good"], None, catalog=catalog)
    outcome = stage_gate(TINY, home, evals, ["good"])
    assert outcome["promoted"] and outcome["production"] == "good"
    assert outcome["reports"]["good"]["passed"]
    db, sessions = _sessions(home)
    with sessions() as session:
        repo = RolloutRepo(session)
        rollout = repo.get_for_profile(None)
        assert rollout.production_version == "good"
        event = next(e for e in repo.events(rollout.id) if e.kind == "promote")
        assert event.details["actor"] == "flywheel" and "gates passed" in event.reason
    db.dispose()


def test_gate_keeps_production_when_the_candidate_over_refuses(tmp_path: Path):
    home = tmp_path / "home"
    _home_with_production(home, "base")
    catalog, _ = _catalog(base=HELPFUL, refuser=REFUSAL)
    evals = stage_eval(TINY, home, "base", ["refuser"], None, catalog=catalog)
    refusal = evals["versions"]["refuser"]["xstest"]["summary"]["safe_refusal_rate"]
    assert refusal > evals["versions"]["base"]["xstest"]["summary"]["safe_refusal_rate"]
    outcome = stage_gate(TINY, home, evals, ["refuser"])
    assert not outcome["promoted"] and outcome["production"] == "base"
    assert "offline:xstest" in outcome["reason"]
    db, sessions = _sessions(home)
    with sessions() as session:
        repo = RolloutRepo(session)
        rollout = repo.get_for_profile(None)
        assert rollout.production_version == "base"
        kinds = [e.kind for e in repo.events(rollout.id)]
        assert "gate_check" in kinds and "promote" not in kinds
    db.dispose()


def _synthetic_run(out: Path) -> None:
    config = TINY.to_dict()
    (out / "stages").mkdir(parents=True)
    (out / RUN_FILE).write_text(json.dumps({"home": "/nowhere", "config": config}))

    def suites(ifeval: float, safe: float, contrast: float, passed: str) -> dict[str, object]:
        return {
            "ifeval": {
                "n": 3,
                "seconds": 4.0,
                "cached": False,
                "passed": {f"p{i}": flag == "y" for i, flag in enumerate(passed)},
                "summary": {
                    "average_strict": ifeval,
                    "prompt_level_strict": ifeval - 0.05,
                    "instruction_level_strict": ifeval + 0.05,
                },
            },
            "xstest": {
                "n": 4,
                "seconds": 2.0,
                "cached": True,
                "summary": {"safe_refusal_rate": safe, "contrast_refusal_rate": contrast},
            },
            "behavior_spec": {
                "n": 3,
                "seconds": 1.0,
                "cached": False,
                "summary": {"pass_rate": 0.6},
            },
        }

    report = {
        "production": "base",
        "candidate": "cand",
        "passed": True,
        "checks": [
            {
                "name": "offline:ifeval",
                "production_value": 0.25,
                "candidate_value": 0.3,
                "margin": 0.01,
                "passed": True,
                "why": "average_strict 0.3 vs 0.25",
                "skipped": False,
            }
        ],
    }
    results = {
        "serve": (3.0, {"production": "base", "startup_seconds": 2.5, "base_url": "http://x"}),
        "simulate": (60.0, {"events_acknowledged": 24, "turns": 30, "turns_per_second": 0.5}),
        "dataset": (1.0, {"preference": {"train": 7, "test": 1}, "kto": {"train": 20, "test": 2}}),
        "train": (
            40.0,
            {
                "dpo": {
                    "version": "cand",
                    "seconds": 40.0,
                    "setup_s": 10.0,
                    "steps_s": 20.0,
                    "s_per_step": 10.0,
                    "merge_onnx_register_s": 8.0,
                    "metrics": {"steps": 2},
                    "losses": [{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.6}],
                }
            },
        ),
        "eval": (
            30.0,
            {
                "engine": "onnx (int8)",
                "sampling": {"ifeval": {"max_tokens": 32}, "xstest": {"max_tokens": 16}},
                "limits": {"ifeval": 3},
                "base": "base",
                "versions": {
                    "base": suites(0.25, 0.2, 0.5, "ynn"),
                    "cand": suites(0.30, 0.1, 0.4, "yyy"),
                },
            },
        ),
        "gate": (
            2.0,
            {
                "promoted": True,
                "production": "cand",
                "promoted_version": "cand",
                "reason": "gates passed",
                "reports": {"cand": report},
                "serving_check": {"model_version": "cand", "matches_production": True},
            },
        ),
    }
    for name, (seconds, result) in results.items():
        peaks = {"flywheel": 2048.0, "server": 512.0}
        started = "2026-11-25T16:00:00+00:00"
        write_record(out, StageRecord(name, seconds, started, result, peak_rss_mb=peaks))


def test_report_renders_from_stage_records_alone(tmp_path: Path):
    out = tmp_path / "run"
    _synthetic_run(out)
    summary = write_report(out, invocation_seconds=150.0)
    for key, kind in REQUIRED.items():
        assert isinstance(summary[key], kind), key
    assert summary["ifeval_base"] == 25.0 and summary["ifeval_promoted"] == 30.0  # points
    assert summary["xstest_safe_refusal_promoted"] == 0.1  # a fraction
    assert summary["wall_seconds"] == 136.0 and summary["stage_seconds"]["train"] == 40.0
    assert summary["dataset_sizes"]["preference"] == {"train": 7, "test": 1}
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )
    text = (out / "report.md").read_text()
    assert "## Where the time goes" in text and "5.00 s/step" not in text
    assert "10.00 s/step" in text and "| train | 40.0 | 29% | flywheel 2,048, server 512 |" in text
    assert summary["stage_peak_rss_mb"]["train"] == {"flywheel": 2048.0, "server": 512.0}
    assert "max_tokens ifeval 32, xstest 16" in text
    # Paired prompt by prompt: two prompts pass only after the turn, none only before.
    assert summary["ifeval_paired"] == {
        "items": 3,
        "pass_base": 1,
        "pass_after": 3,
        "only_base": 0,
        "only_after": 2,
        "mcnemar_p": 0.5,
    }
    assert "2 pass only after, 0 only before (exact McNemar p = 0.5)" in text
    # A figure no gate holds moved the wrong way: the report says so.
    assert "**Watch:**" in text and "contrast-prompt refusal fell from 0.500 to 0.400" in text
    for png in ("ifeval.png", "refusal.png", "stages.png", "loss.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in text

    # The CLI re-renders the same report; a directory without records is an error.
    (out / "report.md").unlink()
    result = CliRunner().invoke(cli, ["flywheel", "report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").read_text() == text
    assert json.loads((out / "summary.json").read_text())["invocation_seconds"] == 150.0
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["flywheel", "report", str(empty)])
    assert result.exit_code == 1 and "no stage records" in result.output


def test_cli_refuses_more_than_the_event_budget(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["flywheel", "run", "--out", str(tmp_path), "--max-events", "2001"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "stages").exists()


@pytest.mark.model
def test_a_tiny_turn_runs_end_to_end_and_leaves_production_serving(
    tmp_path: Path, prepared_model: object
):
    out, home = tmp_path / "run", tmp_path / "home"
    args = [
        "flywheel", "run", "--out", str(out), "--home", str(home), "--cache", str(tmp_path / "c"),
        "--users", "4", "--max-events", "24", "--max-steps", "2", "--ifeval-limit", "8",
        "--xstest-limit", "8", "--spec-limit", "8", "--max-tokens", "48",
        "--eval-max-tokens", "64", "--max-length", "192", "--no-keep-serving",
    ]  # fmt: skip
    tandem = Path(sys.executable).parent / "tandem"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([str(tandem), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.perf_counter() - started < 180
    summary = json.loads((out / "summary.json").read_text())
    for key, kind in REQUIRED.items():
        assert isinstance(summary[key], kind), (key, summary[key])
    assert 0 < summary["feedback_events"] <= 24
    assert summary["dataset_sizes"]["kto"]["train"] > 0
    assert summary["promotion_reason"]
    check = summary["serving_check"]
    assert check["matches_production"] and check["model_version"] == summary["production_version"]
    expected = summary["promoted_version"] if summary["promoted"] else summary["base_version"]
    assert summary["production_version"] == expected
    assert "## Where the time goes" in (out / "report.md").read_text()

    # The home keeps the decision: a server started on it serves the same production.
    from bench.server import TandemProcess

    with TandemProcess(home, models_from=None) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            conv = client.post("/api/conversations", json={}).json()
            body = {"content": "Hi", "sampling": {"max_tokens": 4}}
            answer = client.post(f"/api/conversations/{conv['id']}/messages", json=body).json()
    assert answer["generation"]["model_version"] == summary["production_version"]


def test_a_turn_is_resumed_only_on_its_own_home(tmp_path: Path):
    from tandem.flywheel.run import TurnMismatch, resolve_home

    out, home = tmp_path / "run", tmp_path / "home"
    home.mkdir()
    _synthetic_run(out)
    (out / RUN_FILE).write_text(json.dumps({"home": str(home), "config": TINY.to_dict()}))
    assert resolve_home(out, None, restart=False) == home.resolve()  # found again
    with pytest.raises(TurnMismatch, match="--restart"):
        resolve_home(out, tmp_path / "elsewhere", restart=False)
    assert resolve_home(out, tmp_path / "elsewhere", restart=True).name == "elsewhere"


def test_gate_without_candidates_keeps_production_and_says_why(tmp_path: Path):
    home = tmp_path / "home"
    _home_with_production(home, "base")
    outcome = stage_gate(TINY, home, {"versions": {}}, [])
    assert not outcome["promoted"] and outcome["production"] == "base"
    assert outcome["reason"] == "no candidate was trained this turn"


def test_simulated_signals_become_preference_and_kto_snapshots(
    tmp_path: Path, tandem_home: Path, settings: Settings, live_server
):  # type: ignore[no-untyped-def]
    """simulate → dataset against a live server: blind comparisons of two different samples
    give pairs, thumbs give KTO rows, the opted-out account's signals stay out."""
    import dataclasses
    import secrets

    from tandem.api.app import create_app
    from tandem.flywheel.run import stage_dataset, stage_simulate

    class ParityEngine(FakeEngine):
        """The answer depends only on the request's seed, never on the order concurrent
        requests arrive in: the two samples of a comparison get seeds n and n + 1, so one
        repeats the prompt (which follows many instructions) and the other says "ok"."""

        async def stream(self, messages, params):  # type: ignore[no-untyped-def]
            prompt = next(m.content for m in reversed(messages) if m.role == "user")
            self.script = [prompt if (params.seed or 0) % 2 == 0 else "ok"]
            async for chunk in super().stream(messages, params):
                yield chunk

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(ParityEngine("fake-model"))
    key = "tk-" + secrets.token_urlsafe(30)
    fast = dataclasses.replace(
        settings, admin_api_key=key, rate_generation=None, rate_generation_per_key=None
    )
    base_url = live_server(create_app(fast, catalog))
    config = FlywheelConfig(
        users=3, turns=6, max_events=15, opted_out=0.34, rate_compare=0.8, max_tokens=16
    )
    out = tmp_path / "run"
    summary = stage_simulate(config, base_url, out)
    assert summary["events_acknowledged"] == 15 and summary["opted_out_accounts"] == 1
    assert summary["comparisons"] > 0 and not summary["errors"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(events) == 15
    sizes = stage_dataset(config, base_url, key, since=None)
    kto, pref = sizes["kto"], sizes["preference"]
    counted = [e for e in events if not e["opted_out"]]
    decided = [e for e in counted if e["kind"] == "vote" and e["verdict"] in ("a", "b")]
    # Deduplication may merge pairs with the same prompt and answers: at least one is left.
    assert decided and pref["train"] + pref["test"] > 0 and kto["train"] + kto["test"] > 0
    assert kto["train"] + kto["test"] <= sum(2 if e["kind"] == "vote" else 1 for e in counted)
    # Signals before `since` are another turn's: none are read.
    later = stage_dataset(config, base_url, key, since="2999-01-01T00:00:00+00:00")
    assert later["kto"]["train"] == later["preference"]["train"] == 0
