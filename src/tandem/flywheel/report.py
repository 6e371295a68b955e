"""The run's report, rendered from the stage records alone (so `tandem flywheel report DIR` can
redo it): report.md, summary.json and PNG plots in the run directory.

    summary = write_report(Path("docs/benchmarks/flywheel"))
    summary.ifeval_promoted, [t.promoted for t in summary.turns]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.summary import FlywheelSummary, TurnSummary, summarize

PLOTS = {"curve": "curve.png", "safety": "safety.png", "stages": "stages.png"}
SAFETY = (
    ("xstest_safe_refusal", "XSTest safe prompts refused (lower is better)"),
    ("xstest_contrast_refusal", "XSTest unsafe prompts refused (higher is better)"),
    ("behavior_spec", "behavior spec pass rate"),
    ("sycophancy", "sycophancy pass rate"),
)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else (f"{value:.2g}" if value < 0.001 else f"{value:.3f}")


def watch(summary: FlywheelSummary) -> list[str]:
    """What moved the wrong way, or what the gates could not decide: said, not hidden."""
    notes = []
    for turn in summary.turns:
        if turn.disagreement:
            notes.append(f"Turn {turn.turn}: offline and online disagree: {turn.disagreement}.")
        if turn.online and turn.online.budget_exhausted:
            notes.append(
                f"Turn {turn.turn}: the vote budget ran out before the online figures showed "
                "non-inferiority; the candidate was not promoted."
            )
    pairs = summary.safety_paired
    for key, label in SAFETY:
        pair = pairs.get(key)
        if pair and pair["mcnemar_p"] < 0.05:
            notes.append(
                f"{label}: {pair['base']:.3f} → {pair['after']:.3f}, McNemar p = "
                f"{_p(pair['mcnemar_p'])} (a significant move; read its direction)."
            )
    return notes


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


def write_plots(out: Path, summary: FlywheelSummary) -> dict[str, str]:
    if not summary.turns:
        return {}
    xs = [0, *[t.turn for t in summary.turns]]
    serving = [summary.ifeval_base, *[_serving(t).ifeval for t in summary.turns]]
    tried = [
        None,
        *[t.candidate_figures.ifeval if t.candidate_figures else None for t in summary.turns],
    ]

    def curve(ax: Any) -> None:
        ax.plot(xs, serving, marker="o", label="serving after the turn")
        ax.plot(xs, tried, marker="x", linestyle="none", label="the turn's candidate")
        ax.set_xlabel("turn")
        ax.set_ylabel("IFEval average strict (points)")
        ax.set_xticks(xs)
        ax.legend()

    def safety(ax: Any) -> None:
        for key, label in SAFETY:
            first = getattr(summary.turns[0].production_figures, key)
            values = [first, *[getattr(_serving(t), key) for t in summary.turns]]
            (line,) = ax.plot(xs, values, marker="o", label=label)
            # Each turn's candidate, promoted or not: what the gates saw.
            tried = [getattr(t.candidate_figures, key, None) for t in summary.turns]
            ax.plot(xs[1:], tried, marker="x", linestyle="none", color=line.get_color())
        ax.set_xlabel("turn (o: serving after the turn, x: the turn's candidate)")
        ax.set_ylabel("rate")
        ax.set_xticks(xs)
        ax.legend(fontsize=7)

    def stages(ax: Any) -> None:
        names = sorted({n for t in summary.turns for n in t.stage_seconds})
        bottom = [0.0] * len(summary.turns)
        for name in names:
            minutes = [t.stage_seconds.get(name, 0.0) / 60 for t in summary.turns]
            ax.bar([t.turn for t in summary.turns], minutes, bottom=bottom, label=name)
            bottom = [b + m for b, m in zip(bottom, minutes, strict=True)]
        ax.set_xlabel("turn")
        ax.set_ylabel("minutes")
        ax.legend(fontsize=7)

    for name, draw in (("curve", curve), ("safety", safety), ("stages", stages)):
        _plot(out / PLOTS[name], draw)
    return dict(PLOTS)


def _serving(turn: TurnSummary) -> Any:
    """The figures of the version serving after the turn."""
    if turn.promoted and turn.candidate_figures is not None:
        return turn.candidate_figures
    return turn.production_figures


# -- markdown -------------------------------------------------------------------------------


def _paired_row(label: str, pair: dict[str, Any] | None, digits: int = 3) -> str:
    if not pair:
        return f"| {label} | n/a | n/a | n/a | n/a | n/a |"
    scale = 100 if pair["figure"].startswith("ifeval") else 1
    d = digits if scale == 1 else 2
    return (
        f"| {label} | {pair['base'] * scale:.{d}f} | {pair['after'] * scale:.{d}f} | "
        f"{pair['difference'] * scale:+.{d}f} [{pair['ci_low'] * scale:+.{d}f}, "
        f"{pair['ci_high'] * scale:+.{d}f}] | {pair['only_base']} / {pair['only_after']} | "
        f"{_p(pair['mcnemar_p'])} |"
    )


def _paired_table(pairs: dict[str, Any] | None) -> list[str]:
    pairs = pairs or {}
    rows = [
        "| figure | before | after | difference [95% bootstrap] | only before / only after "
        "| McNemar p |",
        "| --- | --- | --- | --- | --- | --- |",
        _paired_row("IFEval average strict (points)", pairs.get("ifeval")),
    ]
    for key, label in SAFETY:
        rows.append(_paired_row(label, pairs.get(key)))
    return rows


def _online_cell(turn: TurnSummary) -> str:
    if turn.online is None:
        return "not run (no candidate passed offline)"
    parts = [f"{'passed' if turn.online.passed else 'failed'} after {turn.online.events} events"]
    parts += [c["why"] for c in turn.online.checks]
    return "; ".join(parts)


def _agreement(turn: TurnSummary) -> str:
    if turn.online is None:
        return "no online verdict (the candidate never went online)"
    return turn.disagreement or "they agree"


def render_markdown(summary: FlywheelSummary, plots: dict[str, str]) -> str:
    s = summary
    lines = [
        "# The flywheel: turns of the loop",
        "",
        f"`tandem flywheel run --turns {s.config.get('turns', len(s.turns))}` ({len(s.turns)} "
        f"turns reported; config in summary.json). Base "
        f"`{s.base}`; serving now `{s.production_version}`. Engine {s.engine}.",
        "",
        "## Base → serving now",
        "",
        "| figure | base | now |",
        "| --- | --- | --- |",
        f"| IFEval average strict (points) | {_fmt(s.ifeval_base, 2)} | "
        f"{_fmt(s.ifeval_promoted, 2)} |",
        f"| XSTest safe-prompt refusal (lower is better) | {_fmt(s.xstest_safe_refusal_base)} | "
        f"{_fmt(s.xstest_safe_refusal_promoted)} |",
        f"| XSTest unsafe-prompt refusal (higher is better) | "
        f"{_fmt(s.xstest_contrast_refusal_base)} | {_fmt(s.xstest_contrast_refusal_promoted)} |",
        f"| behavior spec pass rate | {_fmt(s.behavior_spec_base)} | "
        f"{_fmt(s.behavior_spec_promoted)} |",
        f"| sycophancy pass rate | {_fmt(s.sycophancy_base)} | {_fmt(s.sycophancy_promoted)} |",
        f"| feedback events (all turns, online votes included) | | {s.feedback_events} |",
        f"| wall time (sum of the stages) | | {s.wall_seconds / 60:.1f} min |",
        "",
        "Paired, prompt by prompt (cumulative: base against the version serving now):",
        "",
        *_paired_table({"ifeval": s.ifeval_paired, **s.safety_paired}),
        "",
    ]
    if "curve" in plots:
        lines += [
            f"![IFEval per turn]({plots['curve']})",
            f"![safety per turn]({plots['safety']})",
            "",
        ]
    lines += ["## Turns", ""]
    for t in s.turns:
        cand = t.candidate_figures
        lines += [
            f"### Turn {t.turn}: {'promoted' if t.promoted else 'not promoted'}",
            "",
            f"- production `{t.production_before}`, candidate `{t.candidate}`; {t.why}",
            f"- events: {t.simulation_events} from the training simulation + {t.online_events} "
            f"online = {t.feedback_events}; snapshots {json.dumps(t.dataset_sizes)}",
            f"- offline verdict: {'passed' if t.offline_passed else 'failed'}"
            + (f" ({'; '.join(t.offline_failed)})" if t.offline_failed else ""),
            f"- online verdict: {_online_cell(t)}",
            f"- offline vs online: {_agreement(t)}",
            f"- candidate IFEval {_fmt(cand.ifeval if cand else None, 2)} vs production "
            f"{_fmt(t.production_figures.ifeval, 2)}; stages "
            + ", ".join(f"{k} {v:.0f} s" for k, v in t.stage_seconds.items()),
            "",
            "Candidate against the production it was trained from:",
            "",
            *_paired_table(t.paired_vs_production),
            "",
        ]
    lines += ["## Which data chose what", ""]
    lines += [f"- **{k}**: {v}" for k, v in s.selection.items()]
    lines += ["", "## Reproducibility", "", s.reproducibility, ""]
    notes = watch(s)
    if notes:
        lines += ["## Watch", "", *[f"- {n}" for n in notes], ""]
    if "stages" in plots:
        lines += [f"![stage times]({plots['stages']})", ""]
    return "\n".join(lines)


def write_report(out: Path, summary: FlywheelSummary | None = None) -> FlywheelSummary:
    """Render report.md, summary.json and the plots from `out`'s stage records."""
    if summary is None:
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        config = FlywheelConfig.from_dict(run["config"])
        earlier = out / "summary.json"
        seconds = None
        if earlier.exists():  # a re-render keeps the run's own time
            seconds = json.loads(earlier.read_text()).get("invocation_seconds")
        summary = summarize(out, config, seconds)
    plots = write_plots(out, summary)
    (out / "summary.json").write_text(
        json.dumps(summary.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(render_markdown(summary, plots), encoding="utf-8")
    return summary
