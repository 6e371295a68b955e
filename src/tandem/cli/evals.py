"""`tandem eval`: offline suites and online metrics (docs/evals.md).

tandem eval arena-ratings --battles FILE.jsonl [--bootstrap 100] [--seed 0]
tandem eval online [--json] [--bootstrap 100] [--seed 0]
tandem eval report [--json] [--output DIR] [--x ifeval] [--y thumbs_up|arena]
tandem eval ifeval-grade --responses R.jsonl --output OUT.jsonl [--input input_data.jsonl]
tandem eval export-suite SUITE --output FILE.jsonl [--split train|dev]
tandem eval refusal-agreement [--dir ../shared/data/benchmarks/xstest]
tandem eval build-regressions [--output FILE.jsonl]
tandem eval behavior-spec --responses R.jsonl [--spec FILE.yaml]

The stored runs, `tandem eval run|pairwise|runs|show|compare`, are in tandem.cli.eval_runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tandem.cli.common import CommandError, ExitCode, cli_session
from tandem.cli.eval_runs import BootstrapOpt, SeedOpt, eval_runs_app
from tandem.core.settings import Settings

eval_app = typer.Typer(help="Evaluate model versions: offline suites and online metrics.")
# Merged without a name: `tandem eval run`, not `tandem eval runs run` (listed after this
# module's commands in --help).
eval_app.add_typer(eval_runs_app)


@eval_app.command("arena-ratings")
def arena_ratings(
    battles: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="JSONL of {model_a, model_b, winner} battles."
        ),
    ],
    bootstrap: BootstrapOpt = 100,
    seed: SeedOpt = 0,
) -> None:
    """Bradley–Terry ratings (Chatbot Arena's method) from a battle log, as JSON.

    winner is model_a, model_b, tie or "tie (bothbad)"; a tie is half a win each way."""
    from tandem.evals.arena import bradley_terry_ratings, read_battles

    try:
        ratings = bradley_terry_ratings(read_battles(battles), bootstrap=bootstrap, seed=seed)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None
    typer.echo(json.dumps({m: r.to_dict() for m, r in ratings.items()}, indent=2))


@eval_app.command("online")
def online(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    bootstrap: BootstrapOpt = 100,
    seed: SeedOpt = 0,
) -> None:
    """Thumbs-up rates (Wilson intervals) and arena ratings from the database's signals."""
    from tandem.evals.online import format_report, online_report

    with cli_session() as session:
        report = online_report(session, bootstrap=bootstrap, seed=seed)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@eval_app.command("implicit-agreement")
def implicit_agreement_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    bootstrap: Annotated[
        int, typer.Option(min=100, max=100_000, help="Bootstrap resamples.")
    ] = 2000,
    seed: SeedOpt = 0,
) -> None:
    """How each implicit signal (regenerate, stop, copy, edit_resend, corrective_followup)
    agrees with explicit thumbs and votes on the same answers: P(thumbs-down | signal) vs the
    base rate, kappa and MCC with bootstrap 95% intervals, and how often a voted-against answer
    carries it (docs/evals.md, "Implicit signals")."""
    from tandem.evals.implicit_agreement import implicit_agreement, render_text

    with cli_session() as session:
        report = implicit_agreement(session, seed=seed, samples=bootstrap)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else render_text(report))


@eval_app.command("report")
def gap_report_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Write report.json, report.md and scatter.png here."),
    ] = None,
    x: Annotated[
        str | None, typer.Option(help="Offline suite across the scatter (default: ifeval).")
    ] = None,
    y: Annotated[str, typer.Option(help="thumbs_up or arena, up the scatter.")] = "thumbs_up",
    bootstrap: BootstrapOpt = 100,
    seed: SeedOpt = 0,
) -> None:
    """Offline scores and online metrics side by side per model version, with a warning for
    every pair of versions the two order differently (docs/evals.md, "the gap report")."""
    from tandem.evals.report import (
        UnknownMetric,
        format_gap_report,
        format_markdown,
        gap_report,
        render_scatter,
    )

    with cli_session() as session:
        report = gap_report(session, bootstrap=bootstrap, seed=seed)
    if output is not None:
        try:
            png = render_scatter(report, x, y)
        except UnknownMetric as exc:
            raise CommandError(str(exc)) from None
        output.mkdir(parents=True, exist_ok=True)
        (output / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (output / "report.md").write_text(format_markdown(report), encoding="utf-8")
        (output / "scatter.png").write_bytes(png)
    typer.echo(json.dumps(report, indent=2) if as_json else format_gap_report(report))
    if output is not None and not as_json:
        typer.echo(f"\nwrote {output / 'report.json'}, report.md, scatter.png")


@eval_app.command("refusal-agreement")
def refusal_agreement_command(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            file_okay=False,
            help="XSTest directory with labelled_completions_*.csv "
            "(default: ../shared/data/benchmarks/xstest beside the project).",
        ),
    ] = None,
) -> None:
    """How often the refusal classifier agrees with XSTest's human labels, as JSON."""
    from tandem.evals.xstest import refusal_agreement

    try:
        report = refusal_agreement(data_dir)
    except (FileNotFoundError, KeyError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None
    typer.echo(json.dumps(report, indent=2))


@eval_app.command("ifeval-grade")
def ifeval_grade(
    responses: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="JSONL of {prompt, response} lines."),
    ],
    output: Annotated[
        Path, typer.Option(dir_okay=False, help="Where to write one graded line per prompt.")
    ],
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            dir_okay=False,
            help="IFEval input_data.jsonl (default: ../shared/data/benchmarks/ifeval/).",
        ),
    ] = None,
) -> None:
    """Grade responses to IFEval prompts, strict and loose; print the four accuracies as JSON.

    Responses are matched to input items by prompt; prompts with no response are skipped and
    counted in `missing`."""
    from tandem.evals.ifeval.scoring import grade_files
    from tandem.evals.ifeval.task import default_input_path

    input_path = input_file or default_input_path()
    if not input_path.is_file():
        raise CommandError(f"no IFEval input file at {input_path} (pass --input)")
    try:
        results, scores, missing = grade_files(input_path, responses)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for result in results:
            f.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    typer.echo(json.dumps({**scores, "prompts": len(results), "missing": len(missing)}, indent=2))


@eval_app.command("build-regressions")
def build_regressions(
    output: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Where to write the suite (default: $TANDEM_HOME/evals/regressions-<date>.jsonl).",
        ),
    ] = None,
) -> None:
    """A regression suite from current thumbs-down ratings (consenting users only), as JSONL."""
    from tandem.evals.regressions import build_regression_suite

    with cli_session() as session:
        path, count = build_regression_suite(session, Settings.from_env().home, output=output)
    typer.echo(f"wrote {count} regression cases to {path}")


@eval_app.command("behavior-spec")
def behavior_spec_command(
    responses: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="JSONL of {id, response} lines."),
    ],
    spec: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A spec file (default: the shipped one)."),
    ] = None,
) -> None:
    """Grade responses to the behavior spec's prompts; per-behavior pass rates as JSON.

    Ids are the spec's example ids (`greeting-1`, …). Judge-graded items count as not_graded:
    the command configures no judge (use `get_task("behavior_spec", judge=…)` for one)."""
    from tandem.evals.behavior_spec import BehaviorSpecTask, behavior_pass_rates

    try:
        task = BehaviorSpecTask(spec_path=spec)
        by_id = {}
        for line in responses.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                by_id[str(item["id"])] = str(item["response"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None
    typer.echo(json.dumps(behavior_pass_rates(task, by_id), indent=2))


IFEVAL_FIELDS = ("key", "prompt", "instruction_id_list", "kwargs")


@eval_app.command("export-suite")
def export_suite(
    suite: Annotated[str, typer.Argument(help="Suite name, e.g. instructions.")],
    output: Annotated[Path, typer.Option(dir_okay=False, help="Where to write the JSONL.")],
    split: Annotated[
        str | None, typer.Option(help="Only this split (train or dev) of a suite that has them.")
    ] = None,
) -> None:
    """Write a suite's examples as JSONL: IFEval's input format when the examples carry it
    (so `tandem eval ifeval-grade --input` grades answers to them), else {id, messages}."""
    from tandem.evals.tasks import get_task

    try:
        task = get_task(suite, **({"split": split} if split is not None else {}))
    except TypeError:
        raise CommandError(
            f"suite {suite!r} has no splits (drop --split)", ExitCode.USAGE
        ) from None
    except (KeyError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    try:
        examples = list(task.examples())
    except (KeyError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for example in examples:
            if all(field in example.data for field in IFEVAL_FIELDS):
                row = {field: example.data[field] for field in IFEVAL_FIELDS}
            else:
                row = {"id": example.id, "messages": [m.to_dict() for m in example.messages]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    typer.echo(f"wrote {len(examples)} examples of {suite} to {output}")
