"""`tandem flywheel`: one turn of the loop in one command (docs/flywheel.md, "One turn").

tandem flywheel run [--out DIR] [--home DIR] [--users N] [--max-events 2000] [--method dpo]
                    [--max-steps N] [--ifeval-limit N] [--seed S] [--restart]
tandem flywheel report DIR

The options' help comes from `tandem.flywheel.config.FlywheelConfig`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from tandem.flywheel.config import DEFAULT_OUT, field_help

flywheel_app = typer.Typer(
    help="One turn of the loop: simulate, build data, train, evaluate, gate, promote.",
    no_args_is_help=True,
)

_HELP = field_help()


def _opt(name: str, **kwargs: object) -> typer.models.OptionInfo:
    flag = "--" + name.replace("_", "-")
    return typer.Option(flag, help=_HELP[name], **kwargs)  # type: ignore[arg-type]


@flywheel_app.command("run")
def run(
    out: Annotated[
        Path, typer.Option(file_okay=False, help="Run directory: stage records and the report.")
    ] = DEFAULT_OUT,
    home: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="TANDEM_HOME of the turn's server (default: the run's earlier one, else a "
            "fresh temporary directory).",
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Where base-model eval runs are cached across turns."),
    ] = Path(".cache/flywheel"),
    users: Annotated[int, _opt("users", min=1)] = 64,
    turns: Annotated[int, _opt("turns", min=1)] = 40,
    max_events: Annotated[int, _opt("max_events", min=1, max=2000)] = 2000,
    opted_out: Annotated[float, _opt("opted_out", min=0.0, max=1.0)] = 0.2,
    noise: Annotated[float, _opt("noise", min=0.0, max=1.0)] = 0.1,
    rate_compare: Annotated[float, _opt("rate_compare", min=0.0, max=1.0)] = 0.5,
    regenerate_rate: Annotated[float, _opt("regenerate_rate", min=0.0, max=1.0)] = 0.3,
    max_tokens: Annotated[int, _opt("max_tokens", min=1, max=4096)] = 128,
    temperature: Annotated[float, _opt("temperature", min=0.01, max=2.0)] = 0.8,
    concurrency: Annotated[int, _opt("concurrency", min=1)] = 16,
    seed: Annotated[int, _opt("seed")] = 0,
    method: Annotated[str, _opt("method")] = "dpo",
    max_steps: Annotated[int, _opt("max_steps", min=-1)] = -1,
    epochs: Annotated[float, _opt("epochs", min=0.01)] = 1.0,
    learning_rate: Annotated[float | None, _opt("learning_rate", min=0.0)] = None,
    beta: Annotated[float, _opt("beta", min=0.0)] = 0.1,
    batch_size: Annotated[int, _opt("batch_size", min=1)] = 4,
    max_length: Annotated[int, _opt("max_length", min=16)] = 512,
    precompute_ref_log_probs: Annotated[
        bool,
        typer.Option(
            "--precompute-ref-log-probs/--no-precompute-ref-log-probs",
            help=_HELP["precompute_ref_log_probs"],
        ),
    ] = True,
    ifeval_limit: Annotated[int | None, _opt("ifeval_limit", min=1)] = None,
    xstest_limit: Annotated[int | None, _opt("xstest_limit", min=1)] = None,
    spec_limit: Annotated[int | None, _opt("spec_limit", min=1)] = None,
    eval_max_tokens: Annotated[int, _opt("eval_max_tokens", min=1, max=32_768)] = 1024,
    eval_concurrency: Annotated[int, _opt("eval_concurrency", min=1, max=256)] = 16,
    gate_margin: Annotated[float, _opt("gate_margin", min=0.0, max=1.0)] = 0.01,
    restart: Annotated[
        bool, typer.Option("--restart", help="Run every stage again, even recorded ones.")
    ] = False,
    keep_serving: Annotated[
        bool,
        typer.Option(
            "--keep-serving/--no-keep-serving",
            help="After the report, keep the server (now serving production) running until Ctrl-C.",
        ),
    ] = True,
) -> None:
    """Run (or resume) one turn and write report.md, summary.json and plots into --out."""
    from tandem.flywheel.config import FlywheelConfig
    from tandem.flywheel.run import run_turn

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = FlywheelConfig(
            users=users,
            turns=turns,
            max_events=max_events,
            opted_out=opted_out,
            noise=noise,
            rate_compare=rate_compare,
            regenerate_rate=regenerate_rate,
            max_tokens=max_tokens,
            temperature=temperature,
            concurrency=concurrency,
            seed=seed,
            method=method,
            max_steps=max_steps,
            epochs=epochs,
            learning_rate=learning_rate,
            beta=beta,
            batch_size=batch_size,
            max_length=max_length,
            precompute_ref_log_probs=precompute_ref_log_probs,
            ifeval_limit=ifeval_limit,
            xstest_limit=xstest_limit,
            spec_limit=spec_limit,
            eval_max_tokens=eval_max_tokens,
            eval_concurrency=eval_concurrency,
            gate_margin=gate_margin,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from tandem.flywheel.run import TurnMismatch

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
