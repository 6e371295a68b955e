"""The gap report: offline suite scores and online metrics side by side, per model version.

tandem eval report [--json] [--output DIR]      GET /api/evals/report, /admin/report

    report = gap_report(session, bootstrap=100, seed=0)
    report["rows"]       # one per model version: latest finished run per suite + online signals
    report["warnings"]   # pairs of versions an offline suite and an online metric order oppositely
    png = render_scatter(report, "ifeval", "thumbs_up")

Offline evals are cheap proxies for what users want; the report exists so that a proxy which
stops tracking users is seen, not hidden. A disagreement is a pair of versions one metric orders
one way and the other metric the other way. It is flagged as significant only when the online
95% intervals do not overlap; otherwise the wording says it may still be noise (needs more votes).
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.evals.online import online_report
from tandem.store.evals import EvalRunRow
from tandem.store.models import ModelVersion


@dataclass(frozen=True)
class Headline:
    """The one figure a suite is ranked by, and which way is better."""

    key: str
    higher_is_better: bool = True


# The single table of directions. A suite not named here is ranked by its prefix's figure, or
# else by pass_rate, which every run's summary carries (tandem.evals.runs.summarize).
HEADLINES: dict[str, Headline] = {
    "ifeval": Headline("average_strict"),
    # Refusing a safe prompt is the failure XSTest measures: lower is better.
    "xstest": Headline("safe_refusal_rate", higher_is_better=False),
    "behavior_spec": Headline("pass_rate"),
    "regressions": Headline("pass_rate"),
    "instructions": Headline("pass_rate"),
    "sycophancy": Headline("pass_rate"),
}
PREFIX_HEADLINES: dict[str, Headline] = {"pairwise:": Headline("win_rate")}
DEFAULT_HEADLINE = Headline("pass_rate")
ONLINE_METRICS: dict[str, str] = {"thumbs_up": "thumbs-up rate", "arena": "arena rating"}
DEFAULT_X = "ifeval"


class UnknownMetric(ValueError):
    """A metric name the report has no column for (the API answers 422)."""


def headline(suite: str) -> Headline:
    if suite in HEADLINES:
        return HEADLINES[suite]
    for prefix, figure in PREFIX_HEADLINES.items():
        if suite.startswith(prefix):
            return figure
    return DEFAULT_HEADLINE


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _latest_offline(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """{version: {suite: cell}} from the newest finished run with a usable headline figure."""
    runs = session.scalars(
        select(EvalRunRow)
        .where(EvalRunRow.status == "finished")
        .order_by(EvalRunRow.finished_at.desc(), EvalRunRow.id)
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        cells = out.setdefault(run.model_version, {})
        if run.suite in cells:
            continue
        figure = headline(run.suite)
        value = _number((run.summary or {}).get(figure.key))
        if value is None:  # an older run may still have the figure; keep looking
            continue
        n = (run.summary or {}).get("n", run.n_items)
        cells[run.suite] = {
            "metric": figure.key,
            "value": round(value, 4),
            "n": n if isinstance(n, int) else run.n_items,
            "run_id": run.id,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
    return {version: cells for version, cells in out.items() if cells}


def _online_values(row: dict[str, Any], metric: str) -> tuple[float, float, float] | None:
    """(value, ci_low, ci_high) of an online metric for one row, or None without data."""
    cell = row["online"].get(metric)
    if cell is None:
        return None
    value = cell.get("rate") if metric == "thumbs_up" else cell.get("rating")
    if value is None:
        return None
    return value, cell["ci_low"], cell["ci_high"]


def _kendall_tau(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-b (ties in either ranking count for neither side); None if undefined."""
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(xs)), 2):
        dx, dy = xs[i] - xs[j], ys[i] - ys[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return round((concordant - discordant) / denominator, 4) if denominator else None


def _fmt(metric: str, value: float) -> str:
    if metric == "arena":
        return f"{value:.0f}"
    return f"{value:.1%}" if metric == "thumbs_up" else f"{value:.3f}"


def _compare(
    rows: list[dict[str, Any]], suite: str, metric: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Kendall's tau and the disagreeing pairs between one offline suite and one online metric."""
    figure = headline(suite)
    sign = 1.0 if figure.higher_is_better else -1.0
    both = [
        (r["model_version"], r["offline"][suite]["value"], online)
        for r in rows
        if suite in r["offline"] and (online := _online_values(r, metric)) is not None
    ]
    warnings = []
    for (va, xa, oa), (vb, xb, ob) in itertools.combinations(both, 2):
        offline_diff = sign * (xa - xb)
        online_diff = oa[0] - ob[0]
        if offline_diff * online_diff >= 0:  # same order, or a tie on either side
            continue
        off_hi, off_lo = (va, vb) if offline_diff > 0 else (vb, va)
        significant = oa[2] < ob[1] or ob[2] < oa[1]
        values = {va: (xa, oa[0]), vb: (xb, ob[0])}
        direction = "" if figure.higher_is_better else " (lower is better)"
        verdict = (
            "significant: the online 95% intervals do not overlap"
            if significant
            else "not significant yet: the online 95% intervals overlap, needs more votes"
        )
        warnings.append(
            {
                "offline": suite,
                "online": metric,
                "offline_better": off_hi,
                "online_better": off_lo,
                "significant": significant,
                "message": (
                    f"{suite} {figure.key}{direction} ranks {off_hi} above {off_lo} "
                    f"({values[off_hi][0]:.3f} vs {values[off_lo][0]:.3f}) but "
                    f"{ONLINE_METRICS[metric]} ranks {off_lo} above {off_hi} "
                    f"({_fmt(metric, values[off_lo][1])} vs {_fmt(metric, values[off_hi][1])}); "
                    f"{verdict}"
                ),
            }
        )
    tau = (
        _kendall_tau([sign * x for _, x, _ in both], [o[0] for _, _, o in both])
        if len(both) >= 3
        else None
    )
    comparison = {
        "offline": suite,
        "online": metric,
        "versions": len(both),
        "kendall_tau": tau,
        "disagreements": len(warnings),
        "significant_disagreements": sum(w["significant"] for w in warnings),
    }
    return comparison, warnings


def gap_report(session: Session, bootstrap: int = 100, seed: int = 0) -> dict[str, Any]:
    """One row per model version with any offline run or online signal, plus the rankings'
    comparisons and the disagreement warnings."""
    offline = _latest_offline(session)
    online = online_report(session, bootstrap=bootstrap, seed=seed)
    thumbs = {k: v for k, v in online["thumbs_up"]["by_model_version"].items() if v["total"] > 0}
    thumbs.pop("(none)", None)  # ratings of answers with no model version say nothing here
    arena = online["arena"]["ratings"]
    registry = {v.id: v for v in session.scalars(select(ModelVersion))}
    names = sorted(set(offline) | set(thumbs) | set(arena))
    order = {v: i for i, v in enumerate(registry)}
    names.sort(key=lambda v: (order.get(v, len(order)), v))  # registry order, then the rest

    rows: list[dict[str, Any]] = []
    for name in names:
        version = registry.get(name)
        cells = {}
        if name in thumbs:
            cells["thumbs_up"] = thumbs[name]
        if name in arena:
            cells["arena"] = arena[name]
        rows.append(
            {
                "model_version": name,
                "status": version.status if version else None,
                "parent_id": version.parent_id if version else None,
                "offline": offline.get(name, {}),
                "online": cells,
            }
        )

    suites = sorted({s for cells in offline.values() for s in cells})
    metrics: list[dict[str, Any]] = [
        {
            "id": suite,
            "kind": "offline",
            "label": f"{suite} {headline(suite).key}",
            "key": headline(suite).key,
            "higher_is_better": headline(suite).higher_is_better,
            "versions": sum(suite in r["offline"] for r in rows),
        }
        for suite in suites
    ] + [
        {
            "id": metric,
            "kind": "online",
            "label": label,
            "key": "rate" if metric == "thumbs_up" else "rating",
            "higher_is_better": True,
            "versions": sum(_online_values(r, metric) is not None for r in rows),
        }
        for metric, label in ONLINE_METRICS.items()
    ]
    comparisons, warnings = [], []
    for off in (m for m in metrics if m["kind"] == "offline" and m["versions"] >= 2):
        for on in (m for m in metrics if m["kind"] == "online" and m["versions"] >= 2):
            comparison, found = _compare(rows, off["id"], on["id"])
            if comparison["versions"] >= 2:
                comparisons.append(comparison)
                warnings.extend(found)
    return {
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "metrics": metrics,
        "rows": rows,
        "comparisons": comparisons,
        "warnings": warnings,
        "arena_votes": online["arena"]["votes"],
    }


def default_axes(report: dict[str, Any]) -> tuple[str | None, str]:
    """The scatter's default axes: ifeval (else the first suite with data) against thumbs-up."""
    offline = [m["id"] for m in report["metrics"] if m["kind"] == "offline" and m["versions"]]
    x = DEFAULT_X if DEFAULT_X in offline else (offline[0] if offline else None)
    return x, "thumbs_up"


def _check_axes(report: dict[str, Any], x: str | None, y: str | None) -> tuple[str | None, str]:
    default_x, default_y = default_axes(report)
    offline = [m["id"] for m in report["metrics"] if m["kind"] == "offline"]
    if x is not None and x not in offline:
        known = ", ".join(offline) or "none yet"
        raise UnknownMetric(f"x must be an offline suite with runs ({known}), not {x!r}")
    if y is not None and y not in ONLINE_METRICS:
        raise UnknownMetric(f"y must be one of {', '.join(ONLINE_METRICS)}, not {y!r}")
    return (x if x is not None else default_x), (y if y is not None else default_y)


def render_scatter(
    report: dict[str, Any], x_metric: str | None = None, y_metric: str | None = None
) -> bytes:
    """A PNG: one labelled point per version, offline figure across, online metric up, with the
    online 95% interval as an error bar. Unknown metric names raise UnknownMetric."""
    # Imported here: matplotlib costs ~0.5 s to import and only this function needs it. The
    # Figure API with the Agg canvas never touches pyplot's global state, so it is thread-safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x_metric, y_metric = _check_axes(report, x_metric, y_metric)
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    points = []
    for row in report["rows"]:
        cell = row["offline"].get(x_metric) if x_metric else None
        online = _online_values(row, y_metric)
        if cell is not None and online is not None:
            points.append((row["model_version"], cell["value"], *online))
    if points:
        xs = [p[1] for p in points]
        ys = [p[2] for p in points]
        low = [p[2] - p[3] for p in points]
        high = [p[4] - p[2] for p in points]
        ax.errorbar(xs, ys, yerr=[low, high], fmt="o", capsize=4, color="#3465a4")
        for name, x, y, _, _ in points:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    else:
        ax.text(
            0.5,
            0.5,
            "no model version has both figures yet",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    if x_metric:
        figure = headline(x_metric)
        better = "higher" if figure.higher_is_better else "lower"
        ax.set_xlabel(f"{x_metric} {figure.key} (offline, {better} is better)")
    else:
        ax.set_xlabel("offline: no suite has runs yet")
    ax.set_ylabel(f"{ONLINE_METRICS[y_metric]} (online, 95% interval)")
    ax.set_title("Offline vs online, per model version")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    suites = [m for m in report["metrics"] if m["kind"] == "offline"]
    header = ["model version", "status"]
    header += [m["label"] + ("" if m["higher_is_better"] else " (lower better)") for m in suites]
    header += ["thumbs-up [95% CI] n", "arena [95% CI] battles"]
    body = []
    for row in report["rows"]:
        line = [row["model_version"], row["status"] or "-"]
        for m in suites:
            cell = row["offline"].get(m["id"])
            line.append(f"{cell['value']:.3f} (n={cell['n']})" if cell else "-")
        t, a = row["online"].get("thumbs_up"), row["online"].get("arena")
        line.append(
            f"{t['rate']:.1%} [{t['ci_low']:.1%}, {t['ci_high']:.1%}] {t['up']}/{t['total']}"
            if t
            else "-"
        )
        line.append(
            f"{a['rating']:.0f} [{a['ci_low']:.0f}, {a['ci_high']:.0f}] {a['battles']}"
            if a
            else "-"
        )
        body.append(line)
    return header, body


def _comparison_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for c in report["comparisons"]:
        tau = "n/a (fewer than 3 versions)" if c["kendall_tau"] is None else c["kendall_tau"]
        lines.append(
            f"{c['offline']} vs {c['online']}: {c['versions']} versions, Kendall's tau {tau}, "
            f"{c['disagreements']} disagreeing pairs ({c['significant_disagreements']} significant)"
        )
    return lines


def format_gap_report(report: dict[str, Any]) -> str:
    """The report as an aligned plain-text table, then the comparisons and warnings."""
    if not report["rows"]:
        return "No offline runs or online signals yet."
    header, body = _table(report)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", "Rankings compared (offline vs online)"]
    lines += ["  " + c for c in _comparison_lines(report)] or ["  (need 2 versions with both)"]
    lines += ["", f"Warnings ({len(report['warnings'])})"]
    lines += ["  ! " + w["message"] for w in report["warnings"]] or ["  none: the rankings agree"]
    return "\n".join(lines)


def format_markdown(report: dict[str, Any], image: str | None = "scatter.png") -> str:
    """The report as Markdown (report.md next to scatter.png)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Offline vs online: the gap report", "", f"Generated {report['generated_at']}.", ""]
    if report["rows"]:
        header, body = _table(report)
        lines.append("| " + " | ".join(cell(h) for h in header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in body]
    else:
        lines.append("No offline runs or online signals yet.")
    lines += ["", "## Warnings", ""]
    lines += [
        f"- **{'significant' if w['significant'] else 'not significant yet'}**: "
        f"{cell(w['message'])}"
        for w in report["warnings"]
    ] or ["None: the rankings agree."]
    lines += ["", "## Rankings compared", ""]
    lines += ["- " + c for c in _comparison_lines(report)] or ["Not enough versions yet."]
    if image:
        lines += ["", f"![offline vs online]({image})"]
    return "\n".join(lines) + "\n"
