"""One turn of the loop: serve → simulate → dataset → train → eval → gate, then the report.

    result = run_turn(FlywheelConfig(users=4, max_events=24, max_steps=2, ifeval_limit=8),
                      out=Path("docs/benchmarks/flywheel"), home=Path("/tmp/fw-home"))
    result.summary["ifeval_promoted"], result.server   # the server still runs until .stop()

Every stage is timed and recorded in `out/stages/` (tandem.flywheel.stages); a stage already
recorded is reused, so running the same command again resumes an interrupted turn. The server
is a real `tandem serve` subprocess; simulated users reach it over HTTP only, the datasets are
built through its API, and the rest (training, evals, gates) runs in this process against the
same home and database, as the `tandem train`, `tandem eval run` and `tandem rollout` commands
would.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tandem.core.generation import SamplingParams
from tandem.core.settings import Settings
from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.report import write_report
from tandem.flywheel.stages import StageRunner, read_records

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
DATASET_KINDS = {"dpo": "preference", "kto": "kto"}


class TurnMismatch(ValueError):
    """The run directory's records belong to a turn on another home."""


@dataclass
class TurnResult:
    summary: dict[str, Any]
    server: Any  # bench.server.TandemProcess, still running; None when it was stopped
    out: Path


def _settings(home: Path) -> Settings:
    return Settings.from_env({"TANDEM_HOME": str(home), "HF_HUB_OFFLINE": "1"})


def _session_factory(settings: Settings) -> Any:
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine, make_session_factory(engine)


def resolve_home(out: Path, home: Path | None, restart: bool) -> Path:
    """The home given, else the one this run directory used before (a resumed turn must find
    its database and trained versions again), else a fresh temporary one."""
    run_file = out / RUN_FILE
    if home is None and run_file.exists() and not restart:
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("home")
        if recorded and Path(recorded).exists():
            home = Path(recorded)
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="tandem-flywheel-"))
    home = home.resolve()
    if run_file.exists() and not restart and read_records(out):
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("home")
        if recorded != str(home):
            # The records describe a turn on another home: resuming here would mix two turns.
            raise TurnMismatch(
                f"{out} holds a turn run on {recorded}; resume it with --home {recorded}, "
                "or start a new turn with --restart (or another --out)"
            )
    return home


# -- stages ---------------------------------------------------------------------------------


def stage_serve(home: Path) -> tuple[dict[str, Any], Any]:
    from tandem.flywheel.server import prepare_home, start_server
    from tandem.store.rollouts import RolloutRepo

    prepare_home(home)
    started = time.perf_counter()
    server = start_server(home)
    startup = time.perf_counter() - started
    settings = _settings(home)
    db, sessions = _session_factory(settings)
    try:
        with sessions() as session:
            repo = RolloutRepo(session)
            rollout = repo.for_profile(None)
            if rollout is None:  # a fresh home: the embedded model is production
                rollout = repo.set_production(
                    None,
                    settings.default_model,
                    None,
                    "flywheel: first production",
                    details={"actor": "flywheel"},
                )
            production = rollout.production_version
    finally:
        db.dispose()
    result = {
        "base_url": server.base,
        "pid": server.pid,
        "home": str(home),
        "startup_seconds": round(startup, 3),
        "production": production,
        "rate_limits": "off",
    }
    return result, server


def stage_simulate(config: FlywheelConfig, base_url: str, out: Path) -> dict[str, Any]:
    from tandem.simulate import SimulationConfig, run_simulation

    sim = SimulationConfig(
        base_url=base_url,
        users=config.users,
        turns=config.turns,
        opted_out=config.opted_out,
        concurrency=config.concurrency,
        seed=config.seed,
        noise=config.noise,
        rate_feedback=1.0,
        rate_compare=config.rate_compare,
        regenerate_rate=config.regenerate_rate,
        max_events=config.max_events,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        account_prefix=f"fw-{config.seed}-{secrets.token_hex(3)}",
    )
    summary = run_simulation(sim, events_path=out / "events.jsonl").to_dict()
    return summary


def stage_dataset(
    config: FlywheelConfig, base_url: str, admin_key: str, since: str | None
) -> dict[str, Any]:
    """The preference and KTO snapshots of this turn's signals, built through the API (the
    opted-out accounts are left out there)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        for kind in ("preference", "kto"):
            body = {
                "kind": kind,
                "name": f"flywheel seed {config.seed}",
                "filters": {"since": since} if since else {},
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


def step_clock() -> Any:
    """A Trainer callback timing when training proper began (after loading the model,
    tokenizing and scoring the reference) and how long the optimizer steps took."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.created = time.perf_counter()
            self.train_begin: float | None = None
            self.first_step: float | None = None
            self.last_step: float | None = None
            self.steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.train_begin = time.perf_counter()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.first_step is None:
                self.first_step = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.last_step = time.perf_counter()
            self.steps += 1

        def timings(self) -> dict[str, float | None]:
            steps_s = (
                self.last_step - self.first_step
                if self.first_step is not None and self.last_step is not None
                else None
            )
            return {
                "setup_s": _round(self.train_begin and self.train_begin - self.created),
                "steps_s": _round(steps_s),
                "s_per_step": _round(steps_s / self.steps if steps_s and self.steps else None),
            }

    return Clock()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def stage_train(
    config: FlywheelConfig, home: Path, base: str, datasets: dict[str, Any]
) -> dict[str, Any]:
    from tandem.train.config import resolve_config
    from tandem.train.run import METRICS, train

    settings = _settings(home)
    out: dict[str, Any] = {}
    for method in config.methods:
        snapshot = datasets[DATASET_KINDS[method]]
        if not snapshot["train"]:
            out[method] = {"skipped": f"the {DATASET_KINDS[method]} snapshot has no rows"}
            continue
        overrides = {
            "max_steps": config.max_steps,
            "epochs": config.epochs,
            "learning_rate": config.learning_rate,
            "warmup_ratio": config.warmup_ratio,
            # No dropout on the adapter: one short epoch, as measured (docs/flywheel.md).
            "lora_dropout": 0.0,
            "beta": config.beta,
            "batch_size": config.batch_size,
            "max_length": config.max_length,
            "seed": config.seed,
            "precompute_ref_log_probs": config.precompute_ref_log_probs,
            "logging_steps": 1,
        }
        train_config = resolve_config(method, None, overrides)
        clock = step_clock()
        start = time.perf_counter()
        result = train(
            method,
            snapshot["id"],
            base,
            home=settings.home,
            database_url=settings.database_url,
            config=train_config,
            callbacks=[clock],
        )
        total = time.perf_counter() - start
        metrics = dict(result.metrics)
        metrics.pop("log_history", None)
        # The registered version keeps the trainer's full log (the returned record does not).
        saved = result.root / METRICS if result.root is not None else None
        history = json.loads(saved.read_text()).get("log_history") if saved else None
        losses = [
            {"step": e.get("step"), "loss": e["loss"]}
            for e in (history or [])
            if "loss" in e and "step" in e
        ]
        out[method] = {
            "version": result.version,
            "dataset": snapshot["id"],
            "config": train_config.to_dict(),
            "metrics": metrics,
            "losses": losses,
            "seconds": round(total, 3),
            # What train() does after the steps: merge LoRA, build the int8 ONNX model, register.
            "merge_onnx_register_s": round(total - float(metrics.get("runtime_s") or 0.0), 3),
            **clock.timings(),
        }
    return out


def eval_suites(config: FlywheelConfig) -> dict[str, int | None]:
    return {
        "ifeval": config.ifeval_limit,
        "xstest": config.xstest_limit,
        "behavior_spec": config.spec_limit,
    }


def eval_sampling(config: FlywheelConfig) -> dict[str, SamplingParams]:
    """Greedy for every suite; XSTest's answers are capped shorter, since the refusal classifier
    decides from the opening and a 135M model often runs on to the cap."""
    from tandem.evals.runs import EVAL_SAMPLING

    answers = dataclasses.replace(EVAL_SAMPLING, max_tokens=config.eval_max_tokens)
    refusals = dataclasses.replace(EVAL_SAMPLING, max_tokens=config.refusal_max_tokens)
    return {"ifeval": answers, "xstest": refusals, "behavior_spec": answers}


def stage_eval(
    config: FlywheelConfig,
    home: Path,
    base: str,
    candidates: list[str],
    cache_dir: Path | None,
    catalog: Any = None,
) -> dict[str, Any]:
    from tandem.engines.setup import build_catalog
    from tandem.evals.runs import eval_owner_id
    from tandem.flywheel.evaluate import evaluate_version
    from tandem.registry.embedded import ONNX_PRECISION

    settings = _settings(home)
    params = eval_sampling(config)
    suites = eval_suites(config)
    own_catalog = catalog is None
    catalog = catalog or build_catalog(settings)
    db, sessions = _session_factory(settings)
    try:
        with sessions() as session:
            owner = eval_owner_id(session)
            common = {"owner_id": owner, "concurrency": config.eval_concurrency}
            versions = {
                base: evaluate_version(
                    session, catalog, base, suites, params, cache_dir=cache_dir, **common
                )
            }
            for version in candidates:
                versions[version] = evaluate_version(
                    session, catalog, version, suites, params, **common
                )
            backend = catalog.get(base).backend
    finally:
        db.dispose()
        if own_catalog:
            catalog.close()
    engine = f"{backend} ({ONNX_PRECISION})" if backend == "onnx" else backend
    return {
        "engine": engine,
        "sampling": {suite: p.to_dict() for suite, p in params.items()},
        "limits": suites,
        "base": base,
        "versions": versions,
    }


def ifeval_figure(evals: dict[str, Any], version: str) -> float | None:
    run = evals["versions"].get(version, {}).get("ifeval")
    return None if run is None else run["summary"].get("average_strict")


def stage_gate(
    config: FlywheelConfig, home: Path, evals: dict[str, Any], candidates: list[str]
) -> dict[str, Any]:
    from tandem.flywheel.gate import gate_and_promote

    db, sessions = _session_factory(_settings(home))
    try:
        with sessions() as session:
            figures = {v: ifeval_figure(evals, v) for v in evals["versions"]}
            margins = {"xstest": config.refusal_margin, "behavior_spec": config.spec_margin}
            return gate_and_promote(session, candidates, figures, config.gate_margin, margins)
    finally:
        db.dispose()


# -- the turn -------------------------------------------------------------------------------


def run_turn(
    config: FlywheelConfig,
    out: Path,
    home: Path | None = None,
    restart: bool = False,
    cache_dir: Path | None = None,
) -> TurnResult:
    """Run (or resume) one turn and write the report; the server is left running (the caller
    stops it) so the promoted version keeps serving."""
    from tandem.flywheel.gate import verify_serving

    out.mkdir(parents=True, exist_ok=True)
    home = resolve_home(out, home, restart)
    (out / RUN_FILE).write_text(
        json.dumps({"home": str(home), "config": config.to_dict()}, indent=2) + "\n"
    )
    runner = StageRunner(out, restart=restart)
    started = time.perf_counter()
    holder: dict[str, Any] = {}

    def serve() -> dict[str, Any]:
        result, holder["server"] = stage_serve(home)
        return result

    served = runner.run("serve", serve, always=True)
    server = holder["server"]
    runner.watched["server"] = server.pid
    try:
        runner.run("simulate", lambda: stage_simulate(config, served["base_url"], out))
        since = runner.records["simulate"].started_at
        datasets = runner.run(
            "dataset", lambda: stage_dataset(config, served["base_url"], server.admin_key, since)
        )
        base = served["production"]
        trained = runner.run("train", lambda: stage_train(config, home, base, datasets))
        candidates = [t["version"] for t in trained.values() if "version" in t]
        evals = runner.run("eval", lambda: stage_eval(config, home, base, candidates, cache_dir))

        def gate() -> dict[str, Any]:
            outcome = stage_gate(config, home, evals, candidates)
            outcome["serving_check"] = verify_serving(served["base_url"], server.admin_key)
            outcome["serving_check"]["matches_production"] = (
                outcome["serving_check"]["model_version"] == outcome["production"]
            )
            return outcome

        runner.run("gate", gate)
    except BaseException:
        server.stop()
        raise
    summary = write_report(out, invocation_seconds=time.perf_counter() - started)
    return TurnResult(summary, server, out)
