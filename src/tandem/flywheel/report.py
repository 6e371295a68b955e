"""The turn's report, rendered from the stage records alone (so `tandem flywheel report DIR`
can redo it): report.md, summary.json and PNG plots in the run directory.

    summary = write_report(Path("docs/benchmarks/flywheel"))
    summary["ifeval_base"], summary["ifeval_promoted"], summary["promoted"]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tandem.evals.paired import compare_outcomes
from tandem.flywheel.stages import STAGES, StageRecord, read_records

PLOTS = {
    "ifeval": "ifeval.png",
    "refusal": "refusal.png",
    "stages": "stages.png",
    "loss": "loss.png",
}


def _points(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 2)


def _suite(evals: dict[str, Any], version: str | None, suite: str) -> dict[str, Any]:
    if not evals or version is None:
        return {}
    return (evals.get("versions", {}).get(version, {}).get(suite) or {}).get("summary") or {}


def paired(evals: dict[str, Any], base: str | None, after: str | None, suite: str) -> dict | None:
    """Base and the version after the turn, item by item on `suite` (pass = every instruction
    followed, strict): how many items only one of them passes, and McNemar's p. None when the
    eval records carry no per-item results (or nothing was promoted)."""
    versions = (evals or {}).get("versions", {})
    if base is None or after is None or base == after:
        return None
    before = (versions.get(base, {}).get(suite) or {}).get("passed")
    later = (versions.get(after, {}).get(suite) or {}).get("passed")
    if not before or not later:
        return None
    flips = compare_outcomes(before, later)
    return {
        "items": flips["n_common"],
        "pass_base": flips["both_pass"] + flips["pass_to_fail"],
        "pass_after": flips["both_pass"] + flips["fail_to_pass"],
        "only_base": flips["pass_to_fail"],
        "only_after": flips["fail_to_pass"],
        "mcnemar_p": round(flips["p_value"], 4),
    }


def watch(summary: dict[str, Any]) -> list[str]:
    """Figures that moved the wrong way without a gate to stop them: said, not hidden."""
    notes = []
    before, after = (
        summary["xstest_contrast_refusal_base"],
        summary["xstest_contrast_refusal_promoted"],
    )
    if before is not None and after is not None and after < before:
        notes.append(
            f"XSTest contrast-prompt refusal fell from {before:.3f} to {after:.3f}: the version "
            "now serving declines fewer of the unsafe prompts it should decline. No gate holds "
            "this figure (the XSTest gate holds the safe-prompt rate); a deployment that needs "
            "it held should gate it before promoting."
        )
    before, after = summary["behavior_spec_base"], summary["behavior_spec_promoted"]
    if before is not None and after is not None and after < before:
        notes.append(f"The behavior spec's pass rate fell from {before:.3f} to {after:.3f}.")
    return notes


def build_summary(
    records: dict[str, StageRecord], config: dict[str, Any], invocation_seconds: float | None
) -> dict[str, Any]:
    get = lambda name: records[name].result if name in records else {}  # noqa: E731
    served, simulated, datasets = get("serve"), get("simulate"), get("dataset")
    trained, evals, gate = get("train"), get("eval"), get("gate")
    base = served.get("production") or (evals or {}).get("base")
    promoted = bool(gate.get("promoted"))
    after = gate.get("production") or base
    candidates = [t["version"] for t in trained.values() if isinstance(t, dict) and "version" in t]
    stage_seconds = {n: records[n].seconds for n in STAGES if n in records}
    ifeval = lambda v: _points(_suite(evals, v, "ifeval").get("average_strict"))  # noqa: E731
    xs = lambda v, side: _suite(evals, v, "xstest").get(f"{side}_refusal_rate")  # noqa: E731
    spec = lambda v: _suite(evals, v, "behavior_spec").get("pass_rate")  # noqa: E731
    return {
        "ifeval_base": ifeval(base),
        "ifeval_promoted": ifeval(after),
        "xstest_safe_refusal_base": xs(base, "safe"),
        "xstest_safe_refusal_promoted": xs(after, "safe"),
        "xstest_contrast_refusal_base": xs(base, "contrast"),
        "xstest_contrast_refusal_promoted": xs(after, "contrast"),
        "behavior_spec_base": spec(base),
        "behavior_spec_promoted": spec(after),
        "ifeval_paired": paired(evals, base, after, "ifeval"),
        "candidates": {
            v: {
                "ifeval": ifeval(v),
                "xstest_safe_refusal": xs(v, "safe"),
                "xstest_contrast_refusal": xs(v, "contrast"),
                "behavior_spec": spec(v),
            }
            for v in candidates
        },
        "feedback_events": simulated.get("events_acknowledged"),
        "online": _online(simulated),
        # The stages' own times: a resumed turn still reports what the whole turn cost.
        "wall_seconds": round(sum(stage_seconds.values()), 3),
        "invocation_seconds": None if invocation_seconds is None else round(invocation_seconds, 3),
        "stage_seconds": stage_seconds,
        # Per stage, the peak resident memory of the flywheel process (it trains and evaluates
        # in-process) and of the server, MiB.
        "stage_peak_rss_mb": {n: records[n].peak_rss_mb for n in STAGES if n in records},
        "dataset_sizes": {
            k: {"train": v.get("train"), "test": v.get("test")} for k, v in datasets.items()
        },
        "seeds": {
            "simulation": config.get("seed"),
            "training": config.get("seed"),
            "eval": "greedy (temperature 0)",
        },
        "config": config,
        "base_version": base,
        "production_version": after,
        "promoted": promoted,
        "promoted_version": gate.get("promoted_version"),
        "promotion_reason": gate.get("reason"),
        "gate_report": gate.get("reports", {}),
        "serving_check": gate.get("serving_check"),
        "engine": (evals or {}).get("engine"),
        "eval_sampling": (evals or {}).get("sampling"),
        "eval_limits": (evals or {}).get("limits"),
        "simulation": {
            k: simulated.get(k)
            for k in (
                "accounts",
                "opted_out_accounts",
                "turns",
                "regenerations",
                "comparisons",
                "thumbs_up",
                "thumbs_down",
                "votes",
                "errors",
                "turns_per_second",
                "wall_seconds",
            )
        },
        "training": {
            m: {
                k: t.get(k)
                for k in (
                    "version",
                    "seconds",
                    "setup_s",
                    "steps_s",
                    "s_per_step",
                    "merge_onnx_register_s",
                    "skipped",
                )
                if k in t
            }
            | {"steps": (t.get("metrics") or {}).get("steps")}
            for m, t in trained.items()
        },
    }


def _online(simulated: dict[str, Any]) -> dict[str, Any]:
    """The turn's online figures: the thumbs-up rate users gave, and per answering version the
    grader's pass rate before noise (the simulation's `answers_by_model`)."""
    up, down = simulated.get("thumbs_up") or 0, simulated.get("thumbs_down") or 0
    by_model = simulated.get("answers_by_model") or {}
    return {
        "thumbs_up_rate": round(up / (up + down), 4) if up + down else None,
        "thumbs": up + down,
        "grader_pass_rate": {
            m: round(c["good"] / c["answers"], 4) if c.get("answers") else None
            for m, c in by_model.items()
        },
    }


# -- plots ----------------------------------------------------------------------------------


def _plot(path: Path, draw: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _bars(ax: Any, groups: list[str], series: dict[str, list[float | None]], ylabel: str) -> None:
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + i * width for g in range(len(groups))]
        heights = [v or 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=label)
        for bar, v in zip(bars, values, strict=True):
            text = "n/a" if v is None else f"{v:.1f}" if v >= 1 else f"{v:.2f}"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def write_plots(out: Path, records: dict[str, StageRecord], summary: dict[str, Any]) -> list[str]:
    written: list[str] = []
    evals = records["eval"].result if "eval" in records else {}
    base, after = summary["base_version"], summary["production_version"]
    label_after = f"after ({after})" if summary["promoted"] else "after (unchanged)"
    if evals:
        keys = ["prompt_level_strict", "instruction_level_strict", "average_strict"]
        series = {
            f"base ({base})": [_points(_suite(evals, base, "ifeval").get(k)) for k in keys],
            label_after: [_points(_suite(evals, after, "ifeval").get(k)) for k in keys],
        }
        _plot(
            out / PLOTS["ifeval"],
            lambda ax: (
                _bars(ax, ["prompt strict", "instruction strict", "average"], series, "points"),
                ax.set_title("IFEval (held out)"),
            ),
        )
        written.append(PLOTS["ifeval"])
        sides = ["safe", "contrast"]
        series = {
            f"base ({base})": [
                _suite(evals, base, "xstest").get(f"{s}_refusal_rate") for s in sides
            ],
            label_after: [_suite(evals, after, "xstest").get(f"{s}_refusal_rate") for s in sides],
        }
        _plot(
            out / PLOTS["refusal"],
            lambda ax: (
                _bars(
                    ax,
                    ["safe prompts (lower is better)", "contrast prompts (higher is better)"],
                    series,
                    "refusal rate",
                ),
                ax.set_title("XSTest refusal rates"),
            ),
        )
        written.append(PLOTS["refusal"])
    stage_seconds = summary["stage_seconds"]
    if stage_seconds:

        def stages(ax: Any) -> None:
            names = list(stage_seconds)[::-1]
            ax.barh(names, [stage_seconds[n] for n in names])
            for i, n in enumerate(names):
                ax.annotate(
                    f"{stage_seconds[n]:.0f} s", (stage_seconds[n], i), va="center", fontsize=8
                )
            ax.set_xlabel("seconds")
            ax.set_title(f"Time per stage (total {summary['wall_seconds']:.0f} s)")

        _plot(out / PLOTS["stages"], stages)
        written.append(PLOTS["stages"])
    trained = records["train"].result if "train" in records else {}
    curves = {m: t.get("losses") or [] for m, t in trained.items() if isinstance(t, dict)}
    if any(curves.values()):

        def loss(ax: Any) -> None:
            for method, points in curves.items():
                if points:
                    ax.plot(
                        [p["step"] for p in points],
                        [p["loss"] for p in points],
                        marker="o",
                        label=method,
                    )
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.set_title("Training loss")
            ax.legend(fontsize=8)

        _plot(out / PLOTS["loss"], loss)
        written.append(PLOTS["loss"])
    return written


# -- markdown -------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _time_rows(records: dict[str, StageRecord], summary: dict[str, Any]) -> list[str]:
    """Where the time goes: each stage, with what inside it took the time."""
    total = summary["wall_seconds"] or 0.0
    rows = [
        "| stage | seconds | share | peak RSS (MiB) | inside |",
        "| --- | --- | --- | --- | --- |",
    ]
    details: dict[str, str] = {}
    if "serve" in records:
        details["serve"] = f"server start {_fmt(records['serve'].result.get('startup_seconds'))} s"
    sim = summary["simulation"]
    if sim.get("turns") is not None:
        details["simulate"] = (
            f"{sim['turns']} answered turns, {summary['feedback_events']} events, "
            f"{_fmt(sim.get('turns_per_second'), 2)} turns/s"
        )
    if summary["dataset_sizes"]:
        details["dataset"] = ", ".join(
            f"{kind} {size.get('train')} + {size.get('test')} rows"
            for kind, size in summary["dataset_sizes"].items()
        )
    if summary["gate_report"] or summary["serving_check"]:
        details["gate"] = "gates, promotion and one chat through the API"
    parts = []
    for method, t in summary["training"].items():
        if "skipped" in t:
            parts.append(f"{method}: skipped ({t['skipped']})")
            continue
        parts.append(
            f"{method}: {t.get('steps')} steps, setup (load, tokenize, reference log-probs) "
            f"{_fmt(t.get('setup_s'))} s, steps {_fmt(t.get('steps_s'))} s "
            f"({_fmt(t.get('s_per_step'), 2)} s/step), merge + ONNX + register "
            f"{_fmt(t.get('merge_onnx_register_s'))} s"
        )
    if parts:
        details["train"] = "; ".join(parts)
    evals = records["eval"].result if "eval" in records else {}
    if evals:
        parts = []
        for version, suites in evals.get("versions", {}).items():
            for suite, run in suites.items():
                how = "cached" if run.get("cached") else f"{_fmt(run.get('seconds'))} s"
                parts.append(f"{suite}·{version} ({run.get('n')} items) {how}")
        details["eval"] = "; ".join(parts)
    for name, seconds in summary["stage_seconds"].items():
        share = f"{100 * seconds / total:.0f}%" if total else "n/a"
        peaks = summary["stage_peak_rss_mb"].get(name) or {}
        rss = ", ".join(f"{label} {mb:,.0f}" for label, mb in peaks.items()) or "n/a"
        rows.append(f"| {name} | {seconds:.1f} | {share} | {rss} | {details.get(name, '')} |")
    rows.append(f"| **total** | **{total:.1f}** | | | |")
    return rows


def render_markdown(
    records: dict[str, StageRecord], summary: dict[str, Any], plots: list[str]
) -> str:
    s = summary
    base, after = s["base_version"], s["production_version"]
    lines = [
        "# Flywheel turn",
        "",
        "One turn of `tandem flywheel run`: simulated users → dataset snapshots → "
        f"{s['config'].get('method', '?').upper()} → offline evals → gated promotion.",
        "",
        f"- **promoted:** {'yes, ' + str(s['promoted_version']) if s['promoted'] else 'no'}"
        f" — {s['promotion_reason'] or ''}",
        f"- **serving now:** {after}"
        + (
            f" (a chat through the API was answered by "
            f"`{(s['serving_check'] or {}).get('model_version')}`)"
            if s.get("serving_check")
            else ""
        ),
        f"- **feedback events:** {_fmt(s['feedback_events'])}; **wall time:** "
        f"{_fmt(s['wall_seconds'])} s ({_fmt((s['wall_seconds'] or 0) / 60)} min)",
        f"- **engine for every eval:** {_fmt(s['engine'])}, greedy, max_tokens "
        + ", ".join(
            f"{suite} {p.get('max_tokens')}" for suite, p in (s["eval_sampling"] or {}).items()
        )
        + f"; item limits {s['eval_limits']}",
        "",
        "## Results",
        "",
        f"| figure | base ({base}) | after the turn ({after}) |",
        "| --- | --- | --- |",
        f"| IFEval (average of prompt- and instruction-level strict, points) | "
        f"{_fmt(s['ifeval_base'])} | {_fmt(s['ifeval_promoted'])} |",
        f"| XSTest safe-prompt refusal rate (lower is better) | "
        f"{_fmt(s['xstest_safe_refusal_base'], 3)} | "
        f"{_fmt(s['xstest_safe_refusal_promoted'], 3)} |",
        f"| XSTest contrast-prompt refusal rate (higher is better) | "
        f"{_fmt(s['xstest_contrast_refusal_base'], 3)} | "
        f"{_fmt(s['xstest_contrast_refusal_promoted'], 3)} |",
        f"| behavior spec pass rate | {_fmt(s['behavior_spec_base'], 3)} | "
        f"{_fmt(s['behavior_spec_promoted'], 3)} |",
        "",
    ]
    pairs = s.get("ifeval_paired")
    if pairs:
        lines += [
            f"IFEval prompt by prompt (every instruction followed, strict), over "
            f"{pairs['items']} prompts: {pairs['pass_base']} pass before the turn, "
            f"{pairs['pass_after']} after; {pairs['only_after']} pass only after, "
            f"{pairs['only_base']} only before (exact McNemar p = {pairs['mcnemar_p']}).",
            "",
        ]
    notes = watch(s)
    if notes:
        lines += ["**Watch:**", "", *[f"- {n}" for n in notes], ""]
    if s["candidates"]:
        lines += [
            "Candidates trained this turn:",
            "",
            "| candidate | IFEval | XSTest safe refusal | XSTest contrast refusal | spec |",
            "| --- | --- | --- | --- | --- |",
        ]
        for version, c in s["candidates"].items():
            lines.append(
                f"| {version} | {_fmt(c['ifeval'])} | {_fmt(c['xstest_safe_refusal'], 3)} | "
                f"{_fmt(c['xstest_contrast_refusal'], 3)} | {_fmt(c['behavior_spec'], 3)} |"
            )
        lines.append("")
    for name, title in (("ifeval", "IFEval"), ("refusal", "XSTest refusal rates")):
        if PLOTS[name] in plots:
            lines += [f"![{title}]({PLOTS[name]})", ""]
    lines += ["## Gates", ""]
    for version, report in s["gate_report"].items():
        verdict = "pass" if report.get("passed") else "FAIL"
        lines += [
            f"`{version}` against `{report.get('production')}`: **{verdict}**",
            "",
            "| check | production | candidate | margin | result | why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for c in report.get("checks", []):
            mark = "skip" if c.get("skipped") else ("ok" if c.get("passed") else "FAIL")
            lines.append(
                f"| {c['name']} | {_fmt(c.get('production_value'), 4)} | "
                f"{_fmt(c.get('candidate_value'), 4)} | {_fmt(c.get('margin'), 3)} | {mark} | "
                f"{str(c.get('why', '')).replace('|', '/')} |"
            )
        lines.append("")
    if not s["gate_report"]:
        lines += ["No candidate reached the gates.", ""]
    sim = s["simulation"]
    lines += [
        "## Signals and data",
        "",
        f"{_fmt(sim.get('accounts'))} simulated accounts ({_fmt(sim.get('opted_out_accounts'))} "
        f"opted out of training), {_fmt(sim.get('turns'))} answered turns "
        f"({_fmt(sim.get('comparisons'))} blind comparisons, "
        f"{_fmt(sim.get('regenerations'))} regenerations): "
        f"{_fmt(sim.get('thumbs_up'))} thumbs up, {_fmt(sim.get('thumbs_down'))} down, "
        f"votes {sim.get('votes')}; errors {sim.get('errors')}.",
        "",
        f"Online: thumbs-up rate {_fmt(s['online']['thumbs_up_rate'], 3)} over "
        f"{s['online']['thumbs']} ratings; the grader's pass rate of the answers per version "
        f"(before noise): {s['online']['grader_pass_rate'] or 'n/a'}.",
        "",
        "| snapshot | train rows | test rows |",
        "| --- | --- | --- |",
    ]
    for kind, size in s["dataset_sizes"].items():
        lines.append(f"| {kind} | {_fmt(size.get('train'))} | {_fmt(size.get('test'))} |")
    lines += ["", "## Where the time goes", "", *_time_rows(records, s), ""]
    if PLOTS["stages"] in plots:
        lines += [f"![time per stage]({PLOTS['stages']})", ""]
    if PLOTS["loss"] in plots:
        lines += [f"![training loss]({PLOTS['loss']})", ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        "tandem flywheel run " + " ".join(_flags(s["config"])),
        "```",
        "",
        f"Seeds: {s['seeds']}. Stage records: `stages/*.json`; "
        "`tandem flywheel report DIR` re-renders this page from them.",
        "",
    ]
    return "\n".join(lines)


def _flags(config: dict[str, Any]) -> list[str]:
    flags = []
    for key in (
        "users",
        "max_events",
        "method",
        "max_steps",
        "ifeval_limit",
        "xstest_limit",
        "spec_limit",
        "eval_max_tokens",
        "refusal_max_tokens",
        "seed",
    ):
        value = config.get(key)
        if value is not None:
            flags.append(f"--{key.replace('_', '-')} {value}")
    return flags


def write_report(out: Path, invocation_seconds: float | None = None) -> dict[str, Any]:
    """Render report.md, summary.json and the plots from `out`'s stage records."""
    records = read_records(out)
    run_file = out / "run.json"
    config = json.loads(run_file.read_text())["config"] if run_file.exists() else {}
    earlier = out / "summary.json"
    if invocation_seconds is None and earlier.exists():  # a re-render keeps the run's own time
        invocation_seconds = json.loads(earlier.read_text()).get("invocation_seconds")
    summary = build_summary(records, config, invocation_seconds)
    plots = write_plots(out, records, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "report.md").write_text(render_markdown(records, summary, plots), encoding="utf-8")
    return summary
