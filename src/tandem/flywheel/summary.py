"""The run's summary, typed, built from the stage records alone (so `tandem flywheel report DIR`
can rebuild it): the final promoted version against the base, and one entry per turn.

    summary = summarize(Path("docs/benchmarks/flywheel"), config)
    summary.ifeval_promoted, summary.turns[0].online.passed, summary.to_dict()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.stages import STAGES, StageRecord, read_records
from tandem.flywheel.stats import paired_ifeval, safety_pairs
from tandem.flywheel.workdir import TURNS_DIR, turn_dir

# Which data chose what: the report prints it, so a reader can check no benchmark chose.
SELECTION = {
    "training prompts": "the instruction suite's train split (simulated users' chats)",
    "the candidate that goes online": "the offline gates; among several that pass (--method "
    "both), the best pass rate on the instruction suite's dev split",
    "promotion": "the gates: IFEval, XSTest both ways, behavior spec, sycophancy offline; "
    "thumbs-up and blind-comparison non-inferiority online, on the dev split's prompts",
    "recipe and hyperparameters": "the defaults in tandem.flywheel.config; the learning rate "
    "was chosen in an earlier round partly on IFEval (docs/flywheel.md says so); nothing in "
    "this run is tuned on IFEval, XSTest or the sycophancy suite",
}
REPRODUCIBILITY = (
    "One seed. The training simulation's events are planned up front (users x prompts, each "
    "request seeded), so which signals exist does not depend on timing; the sampled answers "
    "can still differ in rare tokens between runs because batched int8 decoding is not "
    "bit-identical across batch compositions, and the online stage's A/B assignment hashes "
    "server-made user ids. A headline over two seeds has not been run."
)


@dataclass(frozen=True)
class Figures:
    ifeval: float | None  # IFEval average strict, points
    xstest_safe_refusal: float | None
    xstest_contrast_refusal: float | None
    behavior_spec: float | None
    sycophancy: float | None

    @classmethod
    def of(cls, runs: dict[str, Any] | None) -> Figures:
        def figure(suite: str, key: str) -> float | None:
            value = ((runs or {}).get(suite) or {}).get("summary", {}).get(key)
            return None if value is None else float(value)

        ifeval = figure("ifeval", "average_strict")
        return cls(
            ifeval=None if ifeval is None else round(100 * ifeval, 2),
            xstest_safe_refusal=figure("xstest", "safe_refusal_rate"),
            xstest_contrast_refusal=figure("xstest", "contrast_refusal_rate"),
            behavior_spec=figure("behavior_spec", "pass_rate"),
            sycophancy=figure("sycophancy", "pass_rate"),
        )


@dataclass(frozen=True)
class OnlineVerdict:
    passed: bool
    events: int
    batches: int
    checks: list[dict[str, Any]]
    budget_exhausted: bool


@dataclass(frozen=True)
class TurnSummary:
    turn: int
    production_before: str
    candidate: str | None
    promoted: bool
    production_after: str
    why: str
    feedback_events: int  # the training simulation's and the online stage's together
    simulation_events: int
    online_events: int
    dataset_sizes: dict[str, dict[str, int | None]]
    training: dict[str, Any]
    candidate_figures: Figures | None
    production_figures: Figures
    offline_passed: bool | None
    offline_failed: list[str]
    online: OnlineVerdict | None
    # The candidate against the production it was trained from, and the version serving after
    # the turn against the base (cumulative): prompt-by-prompt McNemar and bootstrap intervals.
    paired_vs_production: dict[str, Any] | None
    paired_vs_base: dict[str, Any] | None
    disagreement: str | None
    stage_seconds: dict[str, float]
    stage_peak_rss_mb: dict[str, dict[str, float]]
    wall_seconds: float


@dataclass(frozen=True)
class FlywheelSummary:
    ifeval_base: float | None
    ifeval_promoted: float | None
    xstest_safe_refusal_base: float | None
    xstest_safe_refusal_promoted: float | None
    xstest_contrast_refusal_base: float | None
    xstest_contrast_refusal_promoted: float | None
    behavior_spec_base: float | None
    behavior_spec_promoted: float | None
    sycophancy_base: float | None
    sycophancy_promoted: float | None
    feedback_events: int
    wall_seconds: float
    ifeval_paired: dict[str, Any] | None
    safety_paired: dict[str, Any]
    base: str
    production_version: str
    promoted: bool
    turns: list[TurnSummary]
    invocation_seconds: float | None
    engine: str | None
    sampling: dict[str, Any]
    selection: dict[str, str] = field(default_factory=lambda: dict(SELECTION))
    reproducibility: str = REPRODUCIBILITY
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paired(
    before: dict[str, Any], after: dict[str, Any], config: FlywheelConfig
) -> dict[str, Any] | None:
    items: dict[str, dict[str, Any]] = {
        suite: run["items"] for suite, run in before.items() if run and run.get("items")
    }
    later: dict[str, dict[str, Any]] = {
        suite: run["items"] for suite, run in after.items() if run and run.get("items")
    }
    if "ifeval" not in items or "ifeval" not in later:
        return None
    options = {"resamples": config.eval.bootstrap, "seed": config.seed}
    return {
        "ifeval": paired_ifeval(items["ifeval"], later["ifeval"], **options).to_dict(),
        **{k: p.to_dict() for k, p in safety_pairs(items, later, **options).items()},
    }


def _disagreement(paired: dict[str, Any] | None, online: OnlineVerdict | None) -> str | None:
    """Offline and online verdicts pointing different ways, said rather than averaged away."""
    if paired is None or online is None:
        return None
    difference = paired["ifeval"]["difference"]
    arena = next((c for c in online.checks if c["name"] == "online:arena"), None)
    if arena is None or arena["candidate_value"] is None:
        return None
    share = arena["candidate_value"]
    if difference == 0 or share == 0.5:
        return None  # one side sees no difference: nothing to disagree about
    offline_better, online_better = difference > 0, share > 0.5
    if offline_better != online_better:
        return (
            f"offline IFEval says {'better' if offline_better else 'worse'} "
            f"({paired['ifeval']['difference']:+.4f}), users' blind votes say "
            f"{'better' if online_better else 'worse'} (win share {arena['candidate_value']:.3f})"
        )
    return None


def _turn(
    number: int,
    records: dict[str, StageRecord],
    evaluated: dict[str, Any],
    base: str,
    config: FlywheelConfig,
) -> tuple[TurnSummary, str]:
    get = lambda name: records[name].result if name in records else {}  # noqa: E731
    simulated, datasets, trained = get("simulate"), get("dataset"), get("train")
    offline, online_rec, promoted = get("offline_gate"), get("online"), get("promote")
    before = simulated.get("production") or base
    candidates = [t["version"] for t in trained.values() if isinstance(t, dict) and "version" in t]
    candidate = offline.get("online_candidate") or (candidates[0] if candidates else None)
    after = promoted.get("production") or before
    online = None
    if online_rec:
        online = OnlineVerdict(
            passed=bool(online_rec["passed"]),
            events=int(online_rec["events"]),
            batches=len(online_rec["batches"]),
            checks=online_rec["verdict"]["checks"],
            budget_exhausted=bool(online_rec["budget_exhausted"]),
        )
    verdict = (offline.get("verdicts") or {}).get(candidate) if candidate else None
    paired = _paired(evaluated[before], evaluated[candidate], config) if candidate else None
    cumulative = _paired(evaluated[base], evaluated[after], config) if after != base else None
    sim_events = int(simulated.get("events_acknowledged") or 0)
    online_events = online.events if online else 0
    seconds = {n: records[n].seconds for n in STAGES if n in records}
    summary = TurnSummary(
        turn=number,
        production_before=before,
        candidate=candidate,
        promoted=bool(promoted.get("promoted")),
        production_after=after,
        why=str(promoted.get("why", "")),
        feedback_events=sim_events + online_events,
        simulation_events=sim_events,
        online_events=online_events,
        dataset_sizes={
            k: {"train": v.get("train"), "test": v.get("test")} for k, v in datasets.items()
        },
        training={
            m: {
                k: t.get(k)
                for k in ("version", "start", "seconds", "s_per_step", "child_peak_rss_mb")
            }
            | {"steps": len(t.get("losses") or []), "losses": t.get("losses")}
            for m, t in trained.items()
            if isinstance(t, dict) and "version" in t
        },
        candidate_figures=Figures.of(evaluated.get(candidate)) if candidate else None,
        production_figures=Figures.of(evaluated.get(before)),
        offline_passed=None if verdict is None else bool(verdict["passed"]),
        offline_failed=list(verdict["failed"]) if verdict else [],
        online=online,
        paired_vs_production=paired,
        paired_vs_base=cumulative,
        disagreement=_disagreement(paired, online),
        stage_seconds=seconds,
        stage_peak_rss_mb={n: records[n].peak_rss_mb for n in STAGES if n in records},
        wall_seconds=round(sum(seconds.values()), 3),
    )
    return summary, after


def summarize(
    out: Path, config: FlywheelConfig, invocation_seconds: float | None = None
) -> FlywheelSummary:
    served = read_records(out).get("serve")
    base = served.result["base"] if served else ""
    evaluated: dict[str, Any] = {}
    turns: list[TurnSummary] = []
    engine: str | None = None
    sampling: dict[str, Any] = {}
    production = base
    turns_dir = out / TURNS_DIR
    found = turns_dir.iterdir() if turns_dir.is_dir() else ()
    numbers = sorted(int(p.name) for p in found if p.name.isdigit())
    for number in numbers:
        records = read_records(turn_dir(out, number))
        if "eval" not in records:
            break  # an unfinished turn: reported once its evals exist
        evals = records["eval"].result
        evaluated.update(evals["versions"])
        engine, sampling = evals.get("engine"), evals.get("sampling") or {}
        turn, production = _turn(number, records, evaluated, base, config)
        turns.append(turn)
    first, last = Figures.of(evaluated.get(base)), Figures.of(evaluated.get(production))
    cumulative = _paired(evaluated[base], evaluated[production], config) if turns else None
    setup = served.seconds if served else 0.0
    return FlywheelSummary(
        ifeval_base=first.ifeval,
        ifeval_promoted=last.ifeval,
        xstest_safe_refusal_base=first.xstest_safe_refusal,
        xstest_safe_refusal_promoted=last.xstest_safe_refusal,
        xstest_contrast_refusal_base=first.xstest_contrast_refusal,
        xstest_contrast_refusal_promoted=last.xstest_contrast_refusal,
        behavior_spec_base=first.behavior_spec,
        behavior_spec_promoted=last.behavior_spec,
        sycophancy_base=first.sycophancy,
        sycophancy_promoted=last.sycophancy,
        feedback_events=sum(t.feedback_events for t in turns),
        # The stages' own times: a resumed run still reports what the whole run cost.
        wall_seconds=round(setup + sum(t.wall_seconds for t in turns), 3),
        ifeval_paired=(cumulative or {}).get("ifeval"),
        safety_paired={k: v for k, v in (cumulative or {}).items() if k != "ifeval"},
        base=base,
        production_version=production,
        promoted=production != base,
        turns=turns,
        invocation_seconds=None if invocation_seconds is None else round(invocation_seconds, 3),
        engine=engine,
        sampling=sampling,
        config=config.to_dict(),
    )
