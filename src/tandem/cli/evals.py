"""`tandem eval`: offline suites and online metrics (docs/evals.md).

tandem eval arena-ratings --battles FILE.jsonl [--bootstrap 100] [--seed 0]
tandem eval online [--json] [--bootstrap 100] [--seed 0]
tandem eval ifeval-grade --responses R.jsonl --output OUT.jsonl [--input input_data.jsonl]
tandem eval refusal-agreement [--dir ../shared/data/benchmarks/xstest]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from tandem.core.settings import Settings

eval_app = typer.Typer(help="Evaluate model versions: offline suites and online metrics.")

BootstrapOpt = Annotated[
    int, typer.Option(min=0, max=10_000, help="Bootstrap rounds for the 95% intervals.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")]


@contextmanager
def _session() -> Iterator[Session]:
    from tandem.store import make_engine, make_session_factory, migrate

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = make_engine(Settings.from_env().database_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({m: r.to_dict() for m, r in ratings.items()}, indent=2))


@eval_app.command("online")
def online(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    bootstrap: BootstrapOpt = 100,
    seed: SeedOpt = 0,
) -> None:
    """Thumbs-up rates (Wilson intervals) and arena ratings from the database's signals."""
    from tandem.evals.online import format_report, online_report

    with _session() as session:
        report = online_report(session, bootstrap=bootstrap, seed=seed)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
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
        typer.echo(f"error: no IFEval input file at {input_path} (pass --input)", err=True)
        raise typer.Exit(1)
    try:
        results, scores, missing = grade_files(input_path, responses)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for result in results:
            f.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    typer.echo(json.dumps({**scores, "prompts": len(results), "missing": len(missing)}, indent=2))
