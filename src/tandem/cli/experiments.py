"""`tandem experiments`: behavior experiments and their results (docs/experiments.md).

tandem experiments list [--json]
tandem experiments result ID [--json] [--bootstrap 200] [--seed 0]

Experiments are defined, started and stopped in the admin console (/admin/experiments) or
through /api/admin/experiments; the result here is the same dict the API returns. An unknown id
exits 3 (the exit-code table in docs/cli.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tandem.cli.common import cli_session

experiments_app = typer.Typer(
    help="Behavior experiments: variants met blind in comparisons, and what people prefer.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@experiments_app.command("list")
def list_experiments(as_json: JsonOpt = False) -> None:
    """Every experiment, newest first: status, scope, variants, comparisons drawn."""
    from tandem.api.routes.experiments import experiment_public
    from tandem.store import ExperimentRepo

    with cli_session() as session:
        rows = [experiment_public(session, r) for r in ExperimentRepo(session).list()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no experiments")
    for r in rows:
        scope = f"profile {r['profile_name'] or r['profile_id']}" if r["profile_id"] else "site"
        names = ", ".join(v["name"] for v in r["variants"])
        typer.echo(
            f"{r['id']}  {r['status']:<8} {scope:<20} {r['name']}  [{names}]"
            f"  {r['comparisons']} comparisons"
        )


@experiments_app.command("result")
def result(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="The experiment's id.")],
    as_json: JsonOpt = False,
    bootstrap: Annotated[
        int, typer.Option(min=0, max=10_000, help="Bradley–Terry resamples (3+ variants).")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seeds the bootstrap.")] = 0,
) -> None:
    """Per-variant preference with 95% intervals, whether people split (by user, by profile),
    and the recommendation with the numbers behind it."""
    from tandem.evals.experiments import experiment_report

    with cli_session() as session:
        report = experiment_report(session, experiment_id, bootstrap=bootstrap, seed=seed)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(format_report(report))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['name']} ({report['status']}): {report['comparisons']} comparisons, "
        f"{report['votes']} voted",
        "variant               comparisons  win share (ties half)  95% interval",
    ]
    for v in report["variants"]:
        lines.append(
            f"{v['name']:<22}{v['comparisons']:>11}  {_pct(v['win_share']):>21}"
            f"  {_pct(v['ci_low'])}–{_pct(v['ci_high'])}"
        )
    if report["bradley_terry"]:
        lines.append("Bradley–Terry (mean 1000, 95% bootstrap interval):")
        for name, r in report["bradley_terry"].items():
            lines.append(
                f"  {name:<20} {r['rating']:8.1f}  [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
            )
    users, segments = report["users"], report["segments"]
    if users:
        lines.append(
            f"users: {users['tested']} with {users['min_votes']}+ decisive votes; "
            f"{users['opposite']} significantly prefer a variant other than {report['leader']} "
            f"({_pct(users['opposite_share'])}), {users['with_leader']} prefer it; "
            f"split: {'yes' if users['split'] else 'no'}"
        )
    if segments:
        lines.append(
            f"profiles: chi-square {segments['chi_square']:.2f}, df {segments['df']}, "
            f"p {segments['p_value']:.4g}; split: {'yes' if segments['split'] else 'no'}"
        )
        for s in segments["rows"]:
            lines.append(
                f"  {s['name']:<20} {s['decisive_votes']:>5} decisive  {report['leader']} "
                f"{_pct(s['leader_share'])} [{_pct(s['ci_low'])}–{_pct(s['ci_high'])}]"
            )
    rec = report["recommendation"]
    lines.append(f"recommendation: {rec['label']}{': ' + rec['variant'] if rec['variant'] else ''}")
    lines.append(f"  {rec['why']}")
    return "\n".join(lines)
