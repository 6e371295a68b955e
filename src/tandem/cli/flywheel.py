"""`tandem flywheel`: turns of the loop in one command (docs/flywheel.md).

tandem flywheel run [--turns 3] [--out DIR] [--home DIR] [--users N] [--method dpo]
                    [--online-max-events N] [--ifeval-limit N] [--seed S] [--restart]
tandem flywheel report DIR

The options' help comes from `tandem.flywheel.config` (one panel per group). Outputs go under
$TANDEM_HOME/flywheel unless --out says where.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.common import CommandError, ExitCode
from tandem.cli.options import dataclass_options
from tandem.flywheel.config import GROUPS, FlywheelConfig, field_help

flywheel_app = typer.Typer(
    help="Turns of the loop: simulate, build data, train, evaluate, meet users, gate, promote.",
    no_args_is_help=True,
)

HEADLINE_KEYS = (
    "ifeval_base",
    "ifeval_promoted",
    "xstest_safe_refusal_base",
    "xstest_safe_refusal_promoted",
    "xstest_contrast_refusal_base",
    "xstest_contrast_refusal_promoted",
    "sycophancy_base",
    "sycophancy_promoted",
    "feedback_events",
    "wall_seconds",
    "promoted",
    "production_version",
)


def flywheel_root() -> Path:
    """$TANDEM_HOME/flywheel: where runs and the eval cache go unless told otherwise."""
    from tandem.core.settings import Settings

    return Settings.from_env().home / "flywheel"


def run(
    out: Path | None = None,
    home: Path | None = None,
    cache: Path | None = None,
    models_from: Path | None = None,
    restart: bool = False,
    keep_serving: bool = True,
    **options: Any,
) -> None:
    """Run (or resume) the turns and write report.md, summary.json and plots into --out."""
    from tandem.flywheel.run import run_flywheel
    from tandem.flywheel.server import default_models_from
    from tandem.flywheel.workdir import TurnMismatch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = FlywheelConfig.from_flat(options)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    root = flywheel_root()
    out = out or root / "run"
    try:
        result = run_flywheel(
            config,
            out,
            home=home,
            restart=restart,
            cache_dir=cache or root / "eval-cache",
            models_from=models_from or default_models_from(),
        )
    except TurnMismatch as exc:  # resuming a run with other options: a usage mistake
        raise CommandError(str(exc), ExitCode.USAGE) from None
    summary = result.summary.to_dict()
    typer.echo(json.dumps({k: summary[k] for k in HEADLINE_KEYS}, indent=2))
    typer.echo(f"report: {out / 'report.md'}")
    server = result.server
    try:
        if keep_serving:
            typer.echo(
                f"serving {summary['production_version']} at {server.base} "
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
            None,
            Annotated[
                Path | None,
                typer.Option(
                    file_okay=False,
                    help="Run directory: stage records and the report (default: "
                    "$TANDEM_HOME/flywheel/run).",
                ),
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
            None,
            Annotated[
                Path | None,
                typer.Option(
                    file_okay=False,
                    help="Where base-model eval runs are cached across runs (default: "
                    "$TANDEM_HOME/flywheel/eval-cache).",
                ),
            ],
        ),
        keyword(
            "models_from",
            None,
            Annotated[
                Path | None,
                typer.Option(
                    file_okay=False,
                    help="A models/ directory of already prepared versions to link into the "
                    "server's home (default: $TANDEM_FLYWHEEL_MODELS_FROM; else the server "
                    "prepares the embedded model itself).",
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
    top = [
        p
        for p in dataclass_options(FlywheelConfig, field_help(), defaults=True, panel="Run")
        if p.name in ("turns", "seed")
    ]
    groups = [
        p
        for name, kind in GROUPS.items()
        for p in dataclass_options(kind, field_help(kind), defaults=True, panel=name.title())
    ]
    return own + top + groups


run.__signature__ = inspect.Signature(_run_parameters())  # type: ignore[attr-defined]  # Typer reads __signature__; functions do not declare it
flywheel_app.command("run")(run)


@flywheel_app.command("report")
def report(
    out: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A run directory.")],
) -> None:
    """Re-render report.md, summary.json and the plots from a run's stage records."""
    from tandem.flywheel.report import write_report

    if not (out / "run.json").exists():
        raise CommandError(f"{out} is not a flywheel run directory (no run.json)")
    summary = write_report(out).to_dict()
    typer.echo(json.dumps({k: summary[k] for k in HEADLINE_KEYS}, indent=2))
    typer.echo(f"wrote {out / 'report.md'}")
