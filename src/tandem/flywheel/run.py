"""Turns of the loop. Each turn: simulate (users talk to production) → dataset → train a
candidate (in a child process) → offline evals → offline gates → online stage (A/B traffic and
blind comparisons against production until the votes show non-inferiority, or the vote budget
runs out) → promote through every gate. The next turn starts from what is serving then.

    result = run_flywheel(FlywheelConfig(turns=3), out=Path("docs/benchmarks/flywheel"))
    result.summary.ifeval_promoted, result.summary.turns[0].promoted, result.server.stop()

Every stage is timed and recorded under `out/turns/<t>/stages/` (tandem.flywheel.stages); a
recorded stage is reused, so the same command resumes an interrupted run. The server is a real
`tandem serve` subprocess; simulated users reach it over HTTP only, the datasets are built
through its API, training runs in a child process, and the evals and gates run in this process
against the same home and database, as `tandem eval run` and `tandem rollout` would.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tandem.core.signals import DATASET_KIND_FOR_METHOD
from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.evaluate import dev_figure, ifeval_figure, stage_eval
from tandem.flywheel.stages import StageRunner
from tandem.flywheel.summary import FlywheelSummary, summarize
from tandem.flywheel.workdir import (
    RUN_FILE,
    Database,
    check_resumed_config,
    home_settings,
    resolve_home,
    turn_dir,
)

log = logging.getLogger(__name__)


@dataclass
class FlywheelResult:
    summary: FlywheelSummary
    server: Any  # tandem.flywheel.server.TandemProcess, still running (the caller stops it)
    out: Path


# -- stages ---------------------------------------------------------------------------------


def stage_serve(home: Path, models_from: Path | None) -> tuple[dict[str, Any], Any]:
    from tandem.flywheel.server import prepare_home, start_server
    from tandem.store.rollouts import RolloutRepo

    prepare_home(home, models_from)
    started = time.perf_counter()
    server = start_server(home)
    startup = time.perf_counter() - started
    with Database(home) as session:
        repo = RolloutRepo(session)
        rollout = repo.for_profile(None)
        if rollout is None:  # a fresh home: the embedded model is production
            rollout = repo.set_production(
                None,
                home_settings(home).default_model,
                None,
                "flywheel: first production",
                details={"actor": "flywheel"},
            )
        production = rollout.production_version
    result = {
        "base_url": server.base,
        "pid": server.pid,
        "home": str(home),
        "startup_seconds": round(startup, 3),
        "base": production,
        "rate_limits": "off",
    }
    return result, server


def _simulation(
    base_url: str,
    seed: int,
    prefix: str,
    *,
    users: int,
    prompts: int,
    config: FlywheelConfig,
    rate_compare: float,
    split: str,
) -> Any:
    from tandem.simulate import SimulationConfig

    sim = config.simulate
    return SimulationConfig(
        base_url=base_url,
        users=users,
        turns=prompts,
        opted_out=sim.opted_out,
        concurrency=sim.concurrency,
        seed=seed,
        noise=sim.noise,
        rate_feedback=1.0,
        rate_compare=rate_compare,
        regenerate_rate=0.0,
        # The plan (users x prompts, one event each) is the budget: a cap reached mid-flight
        # would make which events count depend on the thread schedule.
        max_events=None,
        max_tokens=sim.max_tokens,
        temperature=sim.temperature,
        split=split,
        account_prefix=f"{prefix}-{secrets.token_hex(3)}",
        implicit=sim.implicit,
    )


def stage_simulate(
    config: FlywheelConfig, turn: int, base_url: str, out: Path, production: str
) -> dict[str, Any]:
    from tandem.simulate import run_simulation

    sim = _simulation(
        base_url,
        config.turn_seed(turn),
        f"fw{config.seed}-t{turn}",
        users=config.simulate.users,
        prompts=config.simulate.prompts_per_user,
        config=config,
        rate_compare=config.simulate.rate_compare,
        split="train",
    )
    summary = run_simulation(sim, events_path=out / "events.jsonl").to_dict()
    return {**summary, "production": production}


def stage_dataset(
    config: FlywheelConfig, base_url: str, admin_key: str, since: str, until: str, turn: int
) -> dict[str, Any]:
    """The preference and KTO snapshots of this turn's training simulation (the online stage's
    votes are on the dev split's prompts and stay out), built through the API (the opted-out
    accounts are left out there)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    out: dict[str, Any] = {}
    kinds = {DATASET_KIND_FOR_METHOD[m] for m in config.train.methods}
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        for kind in sorted(kinds):
            filters: dict[str, Any] = {"since": since, "until": until}
            if kind == "kto" and config.simulate.implicit_weight:
                filters["implicit_weight"] = config.simulate.implicit_weight
            body = {
                "kind": kind,
                "name": f"flywheel seed {config.seed} turn {turn}",
                "filters": filters,
            }
            response = client.post("/api/datasets", json=body)
            if response.status_code == 422 and "no examples matched" in response.text:
                # Too few signals of this kind (a tiny turn): nothing to train that method on.
                out[kind] = {"id": None, "train": 0, "test": 0, "empty": True}
                continue
            if not response.is_success:
                raise RuntimeError(
                    f"building the {kind} snapshot failed: {response.status_code} {response.text}"
                )
            row = response.json()
            counts = row["counts"]
            out[kind] = {
                "id": row["id"],
                "train": counts.get("train", 0),
                "test": counts.get("test", 0),
                "by_origin": counts.get("by_origin", {}),
                "users": counts.get("users"),
                "dropped": counts.get("dropped", {}),
            }
    return out


def stage_train(
    config: FlywheelConfig, turn: int, home: Path, start: str, datasets: dict[str, Any]
) -> dict[str, Any]:
    """One candidate per method, each trained in a child process (its memory goes back to the
    system when it exits)."""
    from tandem.flywheel.training import train_in_child

    settings = home_settings(home)
    train = config.train
    out: dict[str, Any] = {}
    for method in train.methods:
        snapshot = datasets[DATASET_KIND_FOR_METHOD[method]]
        if not snapshot["train"]:
            out[method] = {"skipped": f"the {DATASET_KIND_FOR_METHOD[method]} snapshot has no rows"}
            continue
        overrides = {
            "max_steps": train.max_steps,
            "epochs": train.epochs,
            "learning_rate": train.learning_rate,
            "warmup_ratio": train.warmup_ratio,
            # No dropout on the adapter: one short epoch, as measured (docs/flywheel.md).
            "lora_dropout": 0.0,
            "beta": train.beta,
            "batch_size": train.batch_size,
            "max_length": train.max_length,
            "seed": config.turn_seed(turn),
            "precompute_ref_log_probs": train.precompute_ref_log_probs,
            "logging_steps": 1,
        }
        out[method] = {
            "start": start,
            **train_in_child(
                method,
                snapshot["id"],
                start,
                str(settings.home),
                settings.database_url,
                overrides,
            ),
        }
    return out


def stage_offline_gate(
    config: FlywheelConfig, home: Path, candidates: list[str], evals: dict[str, Any]
) -> dict[str, Any]:
    """Each candidate's offline verdict; among those that pass, the best on the instruction
    suite's dev split goes online (IFEval is read at the gates, it never chooses)."""
    from tandem.flywheel.gate import gate_config, offline_verdict

    gates = gate_config(config.gate, config.online)
    with Database(home) as session:
        verdicts = {v: offline_verdict(session, v, gates) for v in candidates}
    passing = [v for v in candidates if verdicts[v]["passed"]]
    passing.sort(key=lambda v: -(dev_figure(evals["versions"][v]) or 0.0))
    return {"verdicts": verdicts, "online_candidate": passing[0] if passing else None}


def stage_online(
    config: FlywheelConfig, turn: int, home: Path, base_url: str, candidate: str, out: Path
) -> dict[str, Any]:
    """Batches of simulated users (the dev split's prompts) meet the rollout: `traffic_share`
    of them are answered by the candidate, `comparison_rate` of turns are blind comparisons
    of the two. After each batch the online gates are read; the stage ends when both show
    non-inferiority, or when another batch would overrun the vote budget."""
    from tandem.flywheel.gate import enter_rollout, gate_config, online_verdict
    from tandem.simulate import run_simulation

    online = config.online
    gates = gate_config(config.gate, config.online)
    with Database(home) as session:
        enter_rollout(session, candidate, online)
    batches: list[dict[str, Any]] = []
    events = 0
    verdict: dict[str, Any] = {"passed": False, "failed": ["no votes yet"], "checks": []}
    while events + online.batch_events <= online.online_max_events:
        batch = len(batches)
        sim = _simulation(
            base_url,
            config.turn_seed(turn) * 1000 + batch + 1,
            f"fw{config.seed}-t{turn}-online{batch}",
            users=online.online_users,
            prompts=online.online_batch,
            config=config,
            rate_compare=0.0,  # the server decides, at the rollout's comparison rate
            split=online.online_split,
        )
        events_file = out / "online" / f"batch-{batch + 1}.jsonl"
        summary = run_simulation(sim, events_path=events_file).to_dict()
        events += int(summary["events_acknowledged"])
        with Database(home) as session:
            verdict = online_verdict(session, candidate, gates)
        batches.append({"events": events, "simulation": summary, "verdict": verdict})
        log.info("flywheel: turn %d online batch %d: %s", turn, batch, verdict["failed"] or "ok")
        if verdict["passed"]:
            break
    return {
        "candidate": candidate,
        "events": events,
        "batches": batches,
        "passed": verdict["passed"],
        "verdict": verdict,
        "budget_exhausted": not verdict["passed"],
    }


def stage_promote(
    config: FlywheelConfig,
    home: Path,
    candidate: str | None,
    online: dict[str, Any] | None,
    evals: dict[str, Any],
    production: str,
) -> dict[str, Any]:
    from tandem.flywheel.gate import gate_config, leave_rollout, promote_candidate

    if candidate is None:
        return {"promoted": False, "production": production, "why": "no candidate passed offline"}
    gates = gate_config(config.gate, config.online)
    with Database(home) as session:
        if online is None or not online["passed"]:
            why = "the online votes did not show non-inferiority within the vote budget"
            leave_rollout(session, candidate, f"flywheel: not promoted ({why})")
            return {"promoted": False, "production": production, "why": why}
        figures = {v: ifeval_figure(evals["versions"][v]) for v in (candidate, production)}
        why = (
            f"flywheel: offline and online gates passed; IFEval {_points(figures[candidate])} "
            f"vs {_points(figures[production])} for {production}"
        )
        outcome = promote_candidate(session, candidate, gates, why)
        if not outcome["promoted"]:  # the gates moved since the online verdict: stop serving it
            leave_rollout(session, candidate, f"flywheel: not promoted ({outcome['why']})")
        return outcome


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


# -- the run ---------------------------------------------------------------------------------


def run_turn(
    config: FlywheelConfig,
    turn: int,
    out: Path,
    home: Path,
    served: dict[str, Any],
    server: Any,
    runner: StageRunner,
    cache_dir: Path | None,
    evaluated: dict[str, Any],
) -> None:
    """One turn's stages; `evaluated` holds every version's eval results so far (the
    production of a later turn was evaluated when it was a candidate) and is updated."""
    from tandem.flywheel.gate import verify_serving
    from tandem.store.rollouts import RolloutRepo

    tdir = turn_dir(out, turn)
    tdir.mkdir(parents=True, exist_ok=True)
    with Database(home) as session:
        current = RolloutRepo(session).get_for_profile(None).production_version
    simulated = runner.run(
        "simulate", lambda: stage_simulate(config, turn, served["base_url"], tdir, current)
    )
    production = simulated["production"]
    record = runner.records["simulate"]
    datasets = runner.run(
        "dataset",
        lambda: stage_dataset(
            config,
            served["base_url"],
            server.admin_key,
            record.started_at,
            record.finished_at,
            turn,
        ),
    )
    start = production if config.train.start == "production" else served["base"]
    trained = runner.run("train", lambda: stage_train(config, turn, home, start, datasets))
    candidates = [t["version"] for t in trained.values() if "version" in t]
    pending = [v for v in [production, *candidates] if v not in evaluated]
    evals = runner.run(
        "eval",
        lambda: stage_eval(
            config, home, pending, cache_dir, frozenset({served["base"]}), len(candidates) > 1
        ),
    )
    evaluated.update(evals["versions"])
    evals_all = {**evals, "versions": {v: evaluated[v] for v in [production, *candidates]}}
    offline = runner.run(
        "offline_gate", lambda: stage_offline_gate(config, home, candidates, evals_all)
    )
    chosen = offline["online_candidate"]
    online = None
    if chosen is not None:
        online = runner.run(
            "online",
            lambda: stage_online(config, turn, home, served["base_url"], chosen, tdir),
        )

    def promote() -> dict[str, Any]:
        outcome = stage_promote(config, home, chosen, online, evals_all, production)
        check = verify_serving(served["base_url"], server.admin_key)
        check["matches_production"] = check["model_version"] == outcome["production"]
        return {**outcome, "serving_check": check}

    runner.run("promote", promote)


def run_flywheel(
    config: FlywheelConfig,
    out: Path,
    home: Path | None = None,
    restart: bool = False,
    cache_dir: Path | None = None,
    models_from: Path | None = None,
) -> FlywheelResult:
    """Run (or resume) `config.turns` turns and write the report; the server is left running
    (the caller stops it) so the promoted version keeps serving."""
    from tandem.flywheel.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    home = resolve_home(out, home, restart)
    check_resumed_config(out, config, restart)
    (out / RUN_FILE).write_text(
        json.dumps({"home": str(home), "config": config.to_dict()}, indent=2) + "\n"
    )
    started = time.perf_counter()
    top = StageRunner(out, restart=restart)
    holder: dict[str, Any] = {}

    def serve() -> dict[str, Any]:
        result, holder["server"] = stage_serve(home, models_from)
        return result

    served = top.run("serve", serve, always=True)
    server = holder["server"]
    evaluated: dict[str, Any] = {}
    try:
        for turn in range(1, config.turns + 1):
            runner = StageRunner(turn_dir(out, turn), restart=restart)
            runner.watched["server"] = server.pid
            run_turn(config, turn, out, home, served, server, runner, cache_dir, evaluated)
    except BaseException:
        server.stop()
        raise
    summary = summarize(out, config, invocation_seconds=time.perf_counter() - started)
    write_report(out, summary)
    return FlywheelResult(summary, server, out)
