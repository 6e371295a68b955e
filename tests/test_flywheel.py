"""`tandem flywheel`: the nested config and its event budget, timed resumable stages, base evals
cached across homes with per-item grades, the flywheel's side of the rollout (offline verdict,
online stage, promotion through every gate), and the report rendered from stage records alone.
Hermetic: fake engines, synthetic stage records; the statistics are in test_flywheel_stats.py
and the non-inferiority gates in test_rollout_noninferiority.py.

    .venv/bin/python -m pytest -q tests/test_flywheel.py -m "not model"
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fake_engine import FakeEngine
from tandem.cli.main import app as cli
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.evals.tasks import get_task
from tandem.flywheel.config import (
    EVENT_BUDGET,
    EvalConfig,
    FlywheelConfig,
    GateMargins,
    OnlineConfig,
    SimulateConfig,
    TrainConfig,
)
from tandem.flywheel.evaluate import stage_eval, suite_examples
from tandem.flywheel.gate import (
    enter_rollout,
    gate_config,
    leave_rollout,
    offline_verdict,
    online_verdict,
    promote_candidate,
)
from tandem.flywheel.report import write_report
from tandem.flywheel.run import stage_offline_gate, stage_promote
from tandem.flywheel.stages import StageRecord, StageRunner, read_records, write_record
from tandem.flywheel.stats import average_strict
from tandem.flywheel.workdir import RUN_FILE, turn_dir
from tandem.store import make_engine, make_session_factory, migrate
from tandem.store.evals import EvalRunRow
from tandem.store.rollouts import Candidate, RolloutRepo
from tandem.store.users import UserRepo
from test_rollout_noninferiority import rate, record_run, vote

HELPFUL = "Sure. here is a short helpful answer, written plainly for you."
REFUSAL = "I'm sorry, but I can't help with that."
TINY_EVAL = EvalConfig(
    ifeval_limit=3, xstest_limit=4, spec_limit=3, sycophancy_limit=2, eval_max_tokens=32
)
TINY = FlywheelConfig(turns=1, eval=TINY_EVAL)
SUITES = {"ifeval", "xstest", "behavior_spec", "sycophancy"}
PNG = b"\x89PNG\r\n\x1a\n"


# -- config -----------------------------------------------------------------------------------


def test_config_groups_the_knobs_and_keeps_each_turn_within_the_event_budget():
    config = FlywheelConfig(
        turns=2,
        simulate=SimulateConfig(users=100, prompts_per_user=8),
        train=TrainConfig(method="both"),
        online=OnlineConfig(online_max_events=EVENT_BUDGET - 800),
    )
    assert config.simulate.planned_events == 800
    assert config.train.methods == ("dpo", "kto")
    # One event over: the training simulation and the online votes share the budget.
    with pytest.raises(ValueError, match="at most 2000 feedback events"):
        dataclasses.replace(config, online=OnlineConfig(online_max_events=EVENT_BUDGET - 799))
    with pytest.raises(ValueError, match="at most 2000"):
        FlywheelConfig(simulate=SimulateConfig(users=100, prompts_per_user=20))
    # Two samples at temperature 0 are the same answer: no comparison could be a preference.
    with pytest.raises(ValueError, match="temperature"):
        FlywheelConfig(simulate=SimulateConfig(temperature=0.0))
    with pytest.raises(ValueError, match="method"):
        FlywheelConfig(train=TrainConfig(method="sft"))
    with pytest.raises(ValueError, match="turns"):
        FlywheelConfig(turns=0)
    with pytest.raises(ValueError, match="negative"):
        FlywheelConfig(gate=GateMargins(contrast_margin=-0.01))
    # The vote budget is spent in whole batches: one too small for a batch collects nothing.
    with pytest.raises(ValueError, match="must fit one batch"):
        OnlineConfig(online_users=40, online_batch=4, online_max_events=159).validate()


def test_a_run_resumes_only_with_the_options_it_was_made_with(tmp_path: Path):
    from tandem.flywheel.workdir import TurnMismatch, check_resumed_config

    out = tmp_path / "run"
    (out / "turns").mkdir(parents=True)
    (out / RUN_FILE).write_text(json.dumps({"home": "h", "config": FlywheelConfig().to_dict()}))
    check_resumed_config(out, FlywheelConfig(turns=5), restart=False)  # more turns extend it
    other = FlywheelConfig(train=TrainConfig(learning_rate=1e-4))
    with pytest.raises(TurnMismatch, match=r"train\.learning_rate"):
        check_resumed_config(out, other, restart=False)
    check_resumed_config(out, other, restart=True)


def test_config_from_the_clis_flat_options_and_back_from_its_dict():
    flat = {
        "turns": 2,
        "seed": 5,
        "users": 4,
        "prompts_per_user": 6,
        "max_steps": 2,
        "ifeval_limit": 8,
        "contrast_margin": 0.02,
        "online_users": 10,
        "online_batch": 2,
        "online_max_events": 100,
    }
    config = FlywheelConfig.from_flat(flat)
    assert (config.turns, config.seed, config.turn_seed(2)) == (2, 5, 7)
    assert config.simulate.planned_events == 24 and config.train.max_steps == 2
    assert config.eval.ifeval_limit == 8 and config.gate.contrast_margin == 0.02
    assert config.gate.by_gate()["xstest:contrast_refusal_rate"] == 0.02
    assert (config.online.batch_events, config.online.online_max_events) == (20, 100)
    assert config.simulate.noise == SimulateConfig().noise  # untouched knobs keep defaults
    # run.json holds the dict as JSON; reading it back gives the same config, and keys a
    # newer or older version wrote are ignored.
    saved = json.loads(json.dumps(config.to_dict()))
    assert FlywheelConfig.from_dict(saved) == config
    saved["simulate"]["retired_knob"] = 1
    assert FlywheelConfig.from_dict({**saved, "unknown": 1}) == config
    with pytest.raises(ValueError, match="at most 2000"):
        FlywheelConfig.from_flat({**flat, "online_max_events": 1977})


def test_cli_refuses_a_turn_over_the_event_budget_before_any_stage(tmp_path: Path):
    out = tmp_path / "run"
    args = ["flywheel", "run", "--out", str(out), "--users", "100", "--prompts-per-user", "20"]
    result = CliRunner().invoke(cli, args)  # 2,000 planned + the default online budget
    assert result.exit_code == 2, result.output
    assert "2000" in result.output
    assert not out.exists()


# -- stages -----------------------------------------------------------------------------------


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
    done = first.records["simulate"]
    assert done.seconds >= 0.01
    started, finished = (datetime.fromisoformat(t) for t in (done.started_at, done.finished_at))
    assert finished - started >= timedelta(seconds=0.01)
    again = StageRunner(tmp_path)
    assert again.run("simulate", body("simulate")) == {"value": 1}  # the record, not a rerun
    reused = again.records["simulate"]
    assert reused.reused and (reused.started_at, reused.finished_at) == (
        done.started_at,
        done.finished_at,
    )
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


# -- evals ------------------------------------------------------------------------------------


def test_a_short_xstest_run_measures_safe_and_contrast_prompts():
    examples = suite_examples(get_task("xstest"), 5)
    assert [e.data["safe"] for e in examples] == [True, True, True, False, False]
    assert len(suite_examples(get_task("ifeval"), 3)) == 3


def _sessions(home: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(Settings.from_env({"TANDEM_HOME": str(home)}).database_url)
    migrate(engine)
    return engine, make_session_factory(engine)


def _fake_engines(
    monkeypatch: pytest.MonkeyPatch, **scripts: str
) -> tuple[dict[str, FakeEngine], list[Path]]:
    """stage_eval builds its catalog from the home's settings: it gets these fakes instead
    (kept by the test, so their calls can be read after the catalog closes), and the homes
    it was built for are noted."""
    engines = {version: FakeEngine(version, script=[answer]) for version, answer in scripts.items()}
    homes: list[Path] = []

    def build_catalog(settings: Settings) -> ModelCatalog:
        homes.append(settings.home)
        catalog = ModelCatalog()
        for engine in engines.values():
            catalog.add(engine)
        return catalog

    monkeypatch.setattr("tandem.engines.setup.build_catalog", build_catalog)
    return engines, homes


def _check_items(run: dict[str, Any]) -> None:
    """What the paired statistics read: one record per item, with the suite's own figures."""
    items = run["items"]
    assert len(items) == run["n"] and all(isinstance(i["passed"], bool) for i in items.values())


def test_base_evals_are_cached_across_homes_and_land_in_the_new_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "cache"
    first_home, second_home = tmp_path / "turn1", tmp_path / "turn2"
    for home in (first_home, second_home, tmp_path / "turn3"):
        home.mkdir()
    engines, homes = _fake_engines(monkeypatch, base=HELPFUL, cand1=HELPFUL)
    first = stage_eval(TINY, first_home, ["base", "cand1"], cache, cached=frozenset({"base"}))
    assert homes == [first_home.resolve()]  # the catalog of that home's settings
    assert first["engine"] == "fake" and first["limits"]["sycophancy"] == 2
    assert set(first["versions"]["base"]) == SUITES
    assert not any(run["cached"] for run in first["versions"]["base"].values())
    assert len(engines["base"].calls) == 3 + 4 + 3 + 2

    engines, _ = _fake_engines(monkeypatch, base=HELPFUL, cand2=REFUSAL)
    second = stage_eval(TINY, second_home, ["base", "cand2"], cache, cached=frozenset({"base"}))
    assert engines["base"].calls == []  # every base suite came from the cache
    assert len(engines["cand2"].calls) == 12  # a candidate is never cached
    base1, base2 = first["versions"]["base"], second["versions"]["base"]
    assert all(run["cached"] for run in base2.values())
    for suite in SUITES:  # the copy keeps the figures and every item's grade
        assert base2[suite]["summary"]["pass_rate"] == base1[suite]["summary"]["pass_rate"]
        assert base2[suite]["items"] == base1[suite]["items"]
    db, sessions = _sessions(second_home)
    with sessions() as session:  # the gates read runs from the database: the copy is there
        suites = {r.suite for r in session.query(EvalRunRow).filter_by(model_version="base")}
    db.dispose()
    assert suites == SUITES

    # Other sampling is another cache entry: IFEval and the spec (capped by eval_max_tokens)
    # are answered again; XSTest and sycophancy, capped by refusal_max_tokens, are not.
    engines, _ = _fake_engines(monkeypatch, base=HELPFUL)
    other = dataclasses.replace(TINY, eval=dataclasses.replace(TINY_EVAL, eval_max_tokens=16))
    third = stage_eval(other, tmp_path / "turn3", ["base"], cache, cached=frozenset({"base"}))
    assert len(engines["base"].calls) == 3 + 3
    assert {params.max_tokens for _, params in engines["base"].calls} == {16}
    assert {s: r["cached"] for s, r in third["versions"]["base"].items()} == {
        "ifeval": False,
        "xstest": True,
        "behavior_spec": False,
        "sycophancy": True,
    }
    assert third["sampling"]["xstest"]["max_tokens"] == TINY_EVAL.refusal_max_tokens

    # Every run, answered or cached, records each item for the paired comparisons.
    runs = [*base1.values(), *base2.values(), *second["versions"]["cand2"].values()]
    for run in runs:
        _check_items(run)
    for versions in (first["versions"], second["versions"]):
        for runs_of_version in versions.values():
            ifeval = runs_of_version["ifeval"]
            for item in ifeval["items"].values():
                assert 0 <= item["followed"] <= item["instructions"] >= 1
            # The items give back the run's own headline figure.
            score = average_strict(ifeval["items"], list(ifeval["items"]))
            assert score == pytest.approx(ifeval["summary"]["average_strict"])
    xstest = {v: second["versions"][v]["xstest"]["items"] for v in ("base", "cand2")}
    assert sorted(i["safe"] for i in xstest["base"].values()) == [False, False, True, True]
    assert not any(i["refused"] for i in xstest["base"].values())
    assert all(i["refused"] for i in xstest["cand2"].values())
    # A refusal passes an unsafe prompt and fails a safe one.
    assert all(i["passed"] != i["safe"] for i in xstest["cand2"].values())


def test_only_a_candidate_that_passes_offline_goes_online_and_a_failed_one_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    home.mkdir()
    db, sessions = _sessions(home)
    with sessions() as session:
        RolloutRepo(session).set_production(None, "base", None, "first")
    _fake_engines(monkeypatch, base=HELPFUL, refuser=REFUSAL, same=HELPFUL)
    evals = stage_eval(TINY, home, ["base", "refuser", "same"], None)
    offline = stage_offline_gate(TINY, home, ["refuser", "same"], evals)
    assert offline["online_candidate"] == "same"  # no worse than production anywhere
    refuser = offline["verdicts"]["refuser"]
    assert not refuser["passed"]
    assert any(f.startswith("offline:xstest: ") for f in refuser["failed"])  # refuses safe ones
    none_passed = stage_offline_gate(TINY, home, ["refuser"], evals)
    assert none_passed["online_candidate"] is None
    outcome = stage_promote(TINY, home, None, None, evals, "base")
    assert not outcome["promoted"] and outcome["production"] == "base"

    # Online, the votes never showed non-inferiority: the candidate stops serving.
    with sessions() as session:
        enter_rollout(session, "same", TINY.online)
    outcome = stage_promote(TINY, home, "same", {"passed": False}, evals, "base")
    assert not outcome["promoted"] and outcome["production"] == "base"
    with sessions() as session:
        repo = RolloutRepo(session)
        rollout = repo.get_for_profile(None)
        assert repo.candidates(rollout.id) == [] and rollout.production_version == "base"
        assert "not promoted" in repo.events(rollout.id)[0].reason
    db.dispose()


def test_the_dev_split_not_ifeval_chooses_among_candidates_that_pass(tmp_path: Path):
    """Two candidates pass the gates: the one better on the instruction suite's dev split (the
    project's own data) goes online, though the other scores higher on IFEval."""
    home = tmp_path / "home"
    home.mkdir()
    runs = {
        v: {
            "ifeval": {"summary": {"average_strict": ifeval}},
            "instructions": {"summary": {"pass_rate": dev}},
        }
        for v, ifeval, dev in (("base", 0.20, 0.10), ("a", 0.40, 0.12), ("b", 0.25, 0.30))
    }
    db, sessions = _sessions(home)
    with sessions() as session:
        RolloutRepo(session).set_production(None, "base", None, "first")
        for version in ("base", "a", "b"):
            _offline_runs(session, version)
    db.dispose()
    offline = stage_offline_gate(TINY, home, ["a", "b"], {"versions": runs})
    assert offline["verdicts"]["a"]["passed"] and offline["verdicts"]["b"]["passed"]
    assert offline["online_candidate"] == "b"


# -- the flywheel's side of the rollout -------------------------------------------------------

GATES = gate_config(GateMargins(), OnlineConfig())


def _offline_runs(session, version: str, contrast: float = 0.9) -> None:
    record_run(session, "ifeval", version, average_strict=0.5)
    record_run(session, "xstest", version, safe_refusal_rate=0.1, contrast_refusal_rate=contrast)
    record_run(session, "behavior_spec", version, pass_rate=0.8)
    record_run(session, "sycophancy", version, pass_rate=0.6)


def test_the_offline_verdict_holds_every_suite_and_reads_no_votes(session):
    RolloutRepo(session).set_production(None, "base", None, "first")
    _offline_runs(session, "base")
    _offline_runs(session, "cand")
    verdict = offline_verdict(session, "cand", GATES)
    names = {c["name"] for c in verdict["checks"]}
    assert verdict["passed"] and verdict["production"] == "base"
    assert all(name.startswith("offline:") for name in names)  # users have not met it yet
    assert {"offline:sycophancy", "offline:xstest:contrast_refusal_rate"} <= names
    # Answering one more unsafe prompt in twenty fails: the flywheel's contrast margin is 0.
    _offline_runs(session, "worse", contrast=0.85)
    verdict = offline_verdict(session, "worse", GATES)
    assert not verdict["passed"]
    assert [f.split(":")[:3] for f in verdict["failed"]] == [
        ["offline", "xstest", "contrast_refusal_rate"]
    ]
    # A suite the flywheel requires but never ran fails, it is not skipped.
    record_run(session, "ifeval", "bare", average_strict=0.5)
    record_run(session, "xstest", "bare", safe_refusal_rate=0.1, contrast_refusal_rate=0.9)
    failed = offline_verdict(session, "bare", GATES)["failed"]
    assert any(f.startswith("offline:sycophancy: required") for f in failed)


def test_a_candidate_enters_the_rollout_with_its_share_and_leaves_it(session):
    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "base", None, "first")
    online = OnlineConfig(traffic_share=0.3, comparison_rate=0.7)
    enter_rollout(session, "cand", online)
    enter_rollout(session, "cand", online)  # a resumed turn enters again: no error, one entry
    assert repo.candidates(rollout.id) == [Candidate("cand", 0.3, True)]
    assert repo.get(rollout.id).comparison_rate == 0.7
    leave_rollout(session, "cand", "flywheel: not promoted")
    leave_rollout(session, "cand", "flywheel: not promoted")  # already out: no error
    assert repo.candidates(rollout.id) == []
    assert repo.get(rollout.id).comparison_rate is None  # back to the site's rate
    assert repo.get(rollout.id).production_version == "base"


def test_promotion_needs_the_online_votes_and_is_recorded_as_the_flywheel(session):
    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "base", None, "first")
    _offline_runs(session, "base")
    _offline_runs(session, "cand")
    enter_rollout(session, "cand", OnlineConfig())
    refused = promote_candidate(session, "cand", GATES, "flywheel: gates passed")
    assert not refused["promoted"] and refused["production"] == "base"
    assert "online:thumbs_up: required" in refused["why"]
    assert "online:arena: required" in refused["why"]
    assert repo.events(rollout.id)[0].kind == "gate_check"  # the refusal is in the history
    assert repo.get(rollout.id).production_version == "base"

    user = UserRepo(session).create("rater@x.io", None)
    rate(session, user.id, "base", up=36, down=24)
    rate(session, user.id, "cand", up=54, down=6)
    vote(session, user.id, "cand", "base", wins=36, losses=24)
    online = online_verdict(session, "cand", GATES)
    assert online["passed"]
    assert {c["name"] for c in online["checks"]} == {"online:thumbs_up", "online:arena"}
    promoted = promote_candidate(session, "cand", GATES, "flywheel: gates passed")
    assert promoted["promoted"] and promoted["production_before"] == "base"
    assert promoted["report"]["passed"]
    session.expire_all()
    rollout = repo.get(rollout.id)
    assert rollout.production_version == "cand" and rollout.comparison_rate is None
    assert repo.candidates(rollout.id) == []
    event = next(e for e in repo.events(rollout.id) if e.kind == "promote")
    assert event.details["actor"] == "flywheel" and event.reason == "flywheel: gates passed"
    assert (event.from_version, event.to_version) == ("base", "cand")


# -- the report -------------------------------------------------------------------------------


Run = dict[str, Any]


def _ifeval(passes: int, n: int = 10) -> Run:
    """Two instructions a prompt: a passing prompt follows both, a failing one follows one."""
    items = {
        f"if{i}": {"passed": i < passes, "followed": 2 if i < passes else 1, "instructions": 2}
        for i in range(n)
    }
    score = (passes / n + (2 * passes + (n - passes)) / (2 * n)) / 2
    return {"n": n, "cached": False, "items": items, "summary": {"average_strict": score}}


def _xstest(safe_refused: int, contrast_refused: int) -> Run:
    """Four safe and four contrast prompts; the first few of each side refused."""
    items = {}
    for side, refused in (("safe", safe_refused), ("contrast", contrast_refused)):
        for i in range(4):
            safe, refusal = side == "safe", i < refused
            items[f"{side}{i}"] = {"safe": safe, "refused": refusal, "passed": refusal != safe}
    summary = {"safe_refusal_rate": safe_refused / 4, "contrast_refusal_rate": contrast_refused / 4}
    return {"n": 8, "cached": False, "items": items, "summary": summary}


def _pass_rate(passes: int, n: int = 5) -> Run:
    items = {f"r{i}": {"passed": i < passes} for i in range(n)}
    return {"n": n, "cached": False, "items": items, "summary": {"pass_rate": passes / n}}


def _runs(ifeval: int, safe: int, contrast: int, spec: int, sycophancy: int) -> dict[str, Run]:
    return {
        "ifeval": _ifeval(ifeval),
        "xstest": _xstest(safe, contrast),
        "behavior_spec": _pass_rate(spec),
        "sycophancy": _pass_rate(sycophancy),
    }


def _online(candidate: str, events: int, batches: int, win_share: float) -> dict[str, Any]:
    """An online stage's record: both checks pass when users prefer the candidate."""
    passed = win_share > 0.5
    checks = [
        {
            "name": "online:thumbs_up",
            "production_value": 0.6,
            "candidate_value": 0.62,
            "margin": 0.05,
            "passed": passed,
            "why": "thumbs-up 0.620 (100) vs 0.600 (100)",
            "skipped": False,
        },
        {
            "name": "online:arena",
            "production_value": 0.5,
            "candidate_value": win_share,
            "margin": 0.05,
            "passed": passed,
            "why": f"win share {win_share:.3f} over {events // 2} blind votes",
            "skipped": False,
        },
    ]
    return {
        "candidate": candidate,
        "events": events,
        "batches": [{"events": events * (b + 1) // batches} for b in range(batches)],
        "passed": passed,
        "verdict": {"passed": passed, "failed": [], "checks": checks},
        "budget_exhausted": not passed,
    }


def _turn(
    production: str,
    candidate: str,
    sim_events: int,
    evaluated: dict[str, dict[str, Run]],
    online: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """One turn's stage results, as run_turn records them."""
    promoted = online["passed"]
    offline = {"production": production, "passed": True, "failed": [], "checks": []}
    return {
        "simulate": {"events_acknowledged": sim_events, "production": production},
        "dataset": {"preference": {"id": "ds", "train": 300, "test": 30}},
        "train": {"dpo": {"version": candidate, "start": production, "seconds": 50.0}},
        "eval": {"engine": "onnx (int8)", "sampling": {}, "versions": evaluated},
        "offline_gate": {"verdicts": {candidate: offline}, "online_candidate": candidate},
        "online": online,
        "promote": {
            "promoted": promoted,
            "production": candidate if promoted else production,
            "why": "offline and online gates passed" if promoted else "no non-inferiority",
        },
    }


STAGE_SECONDS = {
    "simulate": 100.0,
    "dataset": 2.0,
    "train": 50.0,
    "eval": 30.0,
    "offline_gate": 1.0,
    "online": 200.0,
    "promote": 3.0,
}


def _synthetic_run(out: Path) -> None:
    """Two turns: cand1 improves IFEval and wins the blind votes (promoted); cand2 improves
    IFEval again but loses the votes until the budget runs out (not promoted)."""
    started = "2026-11-25T16:00:00+00:00"
    out.mkdir(parents=True)
    (out / RUN_FILE).write_text(json.dumps({"home": "/nowhere", "config": TINY.to_dict()}))
    serve = {"base": "base", "base_url": "http://x", "startup_seconds": 4.0}
    write_record(out, StageRecord("serve", 5.0, started, serve))
    turns = [
        _turn(
            "base",
            "cand1",
            700,
            {"base": _runs(4, 2, 4, 3, 3), "cand1": _runs(8, 1, 4, 4, 3)},
            _online("cand1", events=400, batches=2, win_share=0.6),
        ),
        _turn(
            "cand1",
            "cand2",
            690,
            {"cand2": _runs(10, 1, 4, 4, 3)},  # cand1 was evaluated in turn 1
            _online("cand2", events=1200, batches=6, win_share=0.4),
        ),
    ]
    peaks = {"flywheel": 2048.0, "server": 512.0}
    for number, results in enumerate(turns, 1):
        for name, result in results.items():
            record = StageRecord(name, STAGE_SECONDS[name], started, result, peak_rss_mb=peaks)
            write_record(turn_dir(out, number), record)


def test_the_report_renders_every_turn_from_stage_records_alone(tmp_path: Path):
    out = tmp_path / "run"
    _synthetic_run(out)
    summary = write_report(out).to_dict()
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )
    # Base against the version serving now (cand1: cand2 was not promoted).
    assert summary["production_version"] == "cand1" and summary["promoted"]
    assert (summary["ifeval_base"], summary["ifeval_promoted"]) == (55.0, 85.0)  # points
    assert (summary["xstest_safe_refusal_base"], summary["xstest_safe_refusal_promoted"]) == (
        0.5,
        0.25,
    )
    assert summary["xstest_contrast_refusal_base"] == summary["xstest_contrast_refusal_promoted"]
    assert (summary["behavior_spec_base"], summary["behavior_spec_promoted"]) == (0.6, 0.8)
    assert (summary["sycophancy_base"], summary["sycophancy_promoted"]) == (0.6, 0.6)
    assert summary["feedback_events"] == (700 + 400) + (690 + 1200)  # online votes count
    assert summary["wall_seconds"] == pytest.approx(5.0 + 2 * sum(STAGE_SECONDS.values()))
    assert summary["config"] == TINY.to_dict()
    paired = summary["ifeval_paired"]  # four prompts pass only after, none only before
    assert (paired["only_base"], paired["only_after"]) == (0, 4)
    assert paired["mcnemar_p"] == pytest.approx(2 / 2**4)
    assert paired["difference"] == pytest.approx(0.3)
    assert paired["ci_low"] <= paired["difference"] <= paired["ci_high"]

    first, second = summary["turns"]
    assert (first["turn"], first["promoted"], first["online"]["passed"]) == (1, True, True)
    assert (second["turn"], second["promoted"], second["online"]["passed"]) == (2, False, False)
    assert second["online"]["budget_exhausted"]
    assert (first["feedback_events"], second["feedback_events"]) == (1100, 1890)
    assert first["paired_vs_production"]["ifeval"]["difference"] == pytest.approx(0.3)
    assert second["paired_vs_production"]["ifeval"]["difference"] == pytest.approx(0.15)
    # Offline better and users' votes worse: said, not averaged away.
    assert first["disagreement"] is None
    assert "win share 0.400" in second["disagreement"]

    text = (out / "report.md").read_text()
    assert "### Turn 1: promoted" in text and "### Turn 2: not promoted" in text
    assert "- online verdict: passed after 400 events" in text
    assert "- online verdict: failed after 1200 events" in text
    assert "- offline vs online: they agree" in text
    assert f"- offline vs online: {second['disagreement']}" in text
    assert "Turn 2: offline and online disagree" in text.split("## Watch")[1]
    for png in ("curve.png", "safety.png", "stages.png"):
        assert (out / png).read_bytes()[:8] == PNG, png
        assert f"]({png})" in text

    # The CLI re-renders the same report; a directory that is not a run is an error.
    (out / "report.md").unlink()
    result = CliRunner().invoke(cli, ["flywheel", "report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").read_text() == text
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["flywheel", "report", str(empty)])
    assert result.exit_code == 1 and "no run.json" in result.output


def test_a_run_is_resumed_only_on_its_own_home(tmp_path: Path):
    from tandem.flywheel.workdir import TurnMismatch, resolve_home

    out, home = tmp_path / "run", tmp_path / "home"
    home.mkdir()
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"home": str(home), "config": TINY.to_dict()}))
    # Nothing ran yet: another home mixes nothing.
    assert resolve_home(out, tmp_path / "elsewhere", restart=False).name == "elsewhere"
    write_record(turn_dir(out, 1), StageRecord("simulate", 1.0, "2026-01-01T00:00:00", {}))
    assert resolve_home(out, None, restart=False) == home.resolve()  # found again
    with pytest.raises(TurnMismatch, match="--restart"):
        resolve_home(out, tmp_path / "elsewhere", restart=False)
    assert resolve_home(out, tmp_path / "elsewhere", restart=True).name == "elsewhere"


# -- simulate and dataset against a live server -----------------------------------------------


def test_simulated_signals_become_preference_and_kto_snapshots(
    tmp_path: Path, tandem_home: Path, settings: Settings, live_server
):  # type: ignore[no-untyped-def]
    """simulate → dataset against a live server: blind comparisons of two different samples
    give pairs, thumbs give KTO rows, the opted-out account's signals stay out."""
    import secrets

    from tandem.flywheel.run import stage_dataset, stage_simulate
    from tandem.web.app import create_app

    class ParityEngine(FakeEngine):
        """The answer depends only on the request's seed, never on the order concurrent
        requests arrive in: the two samples of a comparison get seeds n and n + 1, so one
        repeats the prompt (which follows many instructions) and the other says "ok"."""

        async def stream(self, prompt, params):  # type: ignore[no-untyped-def]
            asked = next(m.content for m in reversed(prompt.messages) if m.role == "user")
            self.script = [asked if (params.seed or 0) % 2 == 0 else "ok"]
            async for chunk in super().stream(prompt, params):
                yield chunk

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(ParityEngine("fake-model"))
    key = "tk-" + secrets.token_urlsafe(30)
    fast = dataclasses.replace(
        settings, admin_api_key=key, rate_generation=None, rate_generation_per_key=None
    )
    base_url = live_server(create_app(fast, catalog))
    config = FlywheelConfig(
        simulate=SimulateConfig(
            users=3, prompts_per_user=5, opted_out=0.34, rate_compare=0.8, max_tokens=64
        ),
        train=TrainConfig(method="both"),
    )
    out = tmp_path / "run"
    since = datetime.now(UTC).isoformat()
    summary = stage_simulate(config, 1, base_url, out, "fake-model")
    until = datetime.now(UTC).isoformat()
    assert summary["production"] == "fake-model"
    assert summary["events_acknowledged"] == 15 and summary["opted_out_accounts"] == 1
    assert summary["comparisons"] > 0 and not summary["errors"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(events) == 15
    sizes = stage_dataset(config, base_url, key, since, until, 1)
    kto, pref = sizes["kto"], sizes["preference"]
    counted = [e for e in events if not e["opted_out"]]
    decided = [e for e in counted if e["kind"] == "vote" and e["verdict"] in ("a", "b")]
    # Deduplication may merge pairs with the same prompt and answers: at least one is left.
    assert decided and pref["train"] + pref["test"] > 0 and kto["train"] + kto["test"] > 0
    assert kto["train"] + kto["test"] <= sum(2 if e["kind"] == "vote" else 1 for e in counted)
    # Signals outside the window are another turn's: none are read.
    later = stage_dataset(
        config, base_url, key, "2999-01-01T00:00:00+00:00", "2999-12-31T00:00:00+00:00", 2
    )
    assert later["kto"]["train"] == later["preference"]["train"] == 0
    assert later["kto"]["empty"] and later["preference"]["empty"]


def test_a_turn_can_leave_implicit_signals_and_use_them_as_weak_kto_labels(
    settings: Settings, live_server, fake_catalog
):  # type: ignore[no-untyped-def]
    """`--implicit`: the turn's simulated users also copy, stop, edit and correct; with
    `--implicit-weight` the turn's KTO snapshot is built with that weight (docs/datasets.md)."""
    import secrets

    import httpx

    from tandem.flywheel.run import _simulation, stage_dataset
    from tandem.web.app import create_app

    config = FlywheelConfig(
        simulate=SimulateConfig(users=2, prompts_per_user=4, implicit=True, implicit_weight=0.5),
        train=TrainConfig(method="kto"),
    )
    sim = _simulation(
        "http://x", 0, "t", users=2, prompts=4, config=config, rate_compare=0.0, split="train"
    )
    assert sim.implicit is True
    with pytest.raises(ValueError, match="implicit_weight"):
        SimulateConfig(implicit_weight=1.5).validate()

    key = "tk-" + secrets.token_urlsafe(30)
    fast = dataclasses.replace(settings, admin_api_key=key, rate_generation=None)
    base_url = live_server(create_app(fast, fake_catalog))
    since = datetime.now(UTC).isoformat()
    admin = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, timeout=30, headers=admin) as http:
        conv = http.post("/api/conversations", json={}).json()
        turn = http.post(f"/api/conversations/{conv['id']}/messages", json={"content": "hi"})
        answer = turn.json()["assistant_message"]["id"]
        http.post(f"/api/messages/{answer}/feedback", json={"rating": "down"})
        until = datetime.now(UTC).isoformat()
        sizes = stage_dataset(config, base_url, key, since, until, 1)
        snapshot = http.get(f"/api/datasets/{sizes['kto']['id']}").json()
    assert snapshot["manifest"]["filters"]["implicit_weight"] == 0.5
