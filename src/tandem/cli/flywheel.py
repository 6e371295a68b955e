"""`tandem flywheel`: one turn of the loop in one command (docs/flywheel.md, "One turn").

tandem flywheel run [--out DIR] [--home DIR] [--users N] [--max-events 2000] [--method dpo]
                    [--max-steps N] [--ifeval-limit N] [--seed S] [--restart]
tandem flywheel report DIR

The options' help comes from `tandem.flywheel.config.FlywheelConfig`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.options import dataclass_options
from tandem.flywheel.config import DEFAULT_OUT, FlywheelConfig, field_help

flywheel_app = typer.Typer(
    help="One turn of the loop: simulate, build data, train, evaluate, gate, promote.",
    no_args_is_help=True,
)

DEFAULT_CACHE = Path(".cache/flywheel")


def run(
    out: Path = DEFAULT_OUT,
    home: Path | None = None,
    cache: Path | None = DEFAULT_CACHE,
    restart: bool = False,
    keep_serving: bool = True,
    **options: Any,
) -> None:
    """Run (or resume) one turn and write report.md, summary.json and plots into --out."""
    from tandem.flywheel.run import TurnMismatch, run_turn

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = FlywheelConfig(**options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        result = run_turn(config, out, home=home, restart=restart, cache_dir=cache)
    except TurnMismatch as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    s = result.summary
    typer.echo(
        json.dumps(
            {
                k: s[k]
                for k in (
                    "ifeval_base",
                    "ifeval_promoted",
                    "xstest_safe_refusal_base",
                    "xstest_safe_refusal_promoted",
                    "feedback_events",
                    "wall_seconds",
                    "promoted",
                    "production_version",
                )
            },
            indent=2,
        )
    )
    typer.echo(f"report: {out / 'report.md'}")
    server = result.server
    try:
        if keep_serving:
            typer.echo(
                f"serving {s['production_version']} at {server.base} "
                f"(TANDEM_HOME={server.home}); Ctrl-C to stop"
            )
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _run_parameters() -> list[inspect.Parameter]:
    """`run`'s own options, then one option per FlywheelConfig field (its default and help)."""

    def keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=annotation)  # fmt: skip

    own = [
        keyword(
            "out",
            DEFAULT_OUT,
            Annotated[
                Path,
                typer.Option(file_okay=False, help="Run directory: stage records and the report."),
            ],
        ),
        keyword(
            "home",
            None,
            Annotated[
                Path | None,
                typer.Option(
                    file_okay=False,
                    help="TANDEM_HOME of the turn's server (default: the run's earlier one, else "
                    "a fresh temporary directory).",
                ),
            ],
        ),
        keyword(
            "cache",
            DEFAULT_CACHE,
            Annotated[
                Path | None,
                typer.Option(
                    file_okay=False, help="Where base-model eval runs are cached across turns."
                ),
            ],
        ),
        keyword(
            "restart",
            False,
            Annotated[
                bool, typer.Option("--restart", help="Run every stage again, even recorded ones.")
            ],
        ),
        keyword(
            "keep_serving",
            True,
            Annotated[
                bool,
                typer.Option(
                    "--keep-serving/--no-keep-serving",
                    help="After the report, keep the server (now serving production) running "
                    "until Ctrl-C.",
                ),
            ],
        ),
    ]
    return own + dataclass_options(FlywheelConfig, field_help(), defaults=True, panel="Turn")


run.__signature__ = inspect.Signature(_run_parameters())  # type: ignore[attr-defined]
flywheel_app.command("run")(run)


@flywheel_app.command("report")
def report(
    out: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A run directory.")],
) -> None:
    """Re-render report.md, summary.json and the plots from a run's stage records."""
    from tandem.flywheel.report import write_report
    from tandem.flywheel.stages import read_records

    if not read_records(out):
        typer.echo(f"error: no stage records in {out / 'stages'}", err=True)
        raise typer.Exit(1)
    summary = write_report(out)
    typer.echo(
        json.dumps(
            {k: summary[k] for k in ("ifeval_base", "ifeval_promoted", "promoted", "wall_seconds")},
            indent=2,
        )
    )
    typer.echo(f"wrote {out / 'report.md'}")
