"""`tandem simulate run`: simulated users against a running server (docs/flywheel.md).

tandem simulate run --base-url http://127.0.0.1:8000 --users 32 --turns 4 \
    --opted-out 0.2 --noise 0.1 --max-events 2000 --events events.jsonl --summary summary.json

The options' help comes from `tandem.simulate.config.SimulationConfig`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tandem.simulate.config import field_help

simulate_app = typer.Typer(
    help="Simulated users: sign-ups, chats and ratings through the HTTP API.",
    no_args_is_help=True,
)

_HELP = field_help()


def _opt(name: str, **kwargs: object) -> typer.models.OptionInfo:
    flag = "--" + name.replace("_", "-")
    return typer.Option(flag, help=_HELP[name], **kwargs)  # type: ignore[arg-type]  # passed through to Typer unchanged


@simulate_app.command("run")
def run(
    base_url: Annotated[str, _opt("base_url")],
    users: Annotated[int, _opt("users", min=0)] = 16,
    turns: Annotated[int, _opt("turns", min=0)] = 4,
    opted_out: Annotated[float, _opt("opted_out", min=0.0, max=1.0)] = 0.2,
    concurrency: Annotated[int, _opt("concurrency", min=1)] = 16,
    seed: Annotated[int, _opt("seed")] = 0,
    noise: Annotated[float, _opt("noise", min=0.0, max=1.0)] = 0.1,
    rate_feedback: Annotated[float, _opt("rate_feedback", min=0.0, max=1.0)] = 1.0,
    rate_compare: Annotated[float, _opt("rate_compare", min=0.0, max=1.0)] = 0.0,
    regenerate_rate: Annotated[float, _opt("regenerate_rate", min=0.0, max=1.0)] = 0.1,
    max_events: Annotated[int | None, _opt("max_events", min=0)] = None,
    max_tokens: Annotated[int, _opt("max_tokens", min=1, max=4096)] = 128,
    temperature: Annotated[float | None, _opt("temperature", min=0.0, max=2.0)] = None,
    pass_threshold: Annotated[float | None, _opt("pass_threshold", min=0.0, max=1.0)] = None,
    task: Annotated[str, _opt("task")] = "instructions",
    split: Annotated[str | None, _opt("split")] = "train",
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help=_HELP["profiles"] + " Repeatable.")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help=_HELP["stream"])] = False,
    implicit: Annotated[
        bool, typer.Option("--implicit/--no-implicit", help=_HELP["implicit"])
    ] = False,
    taste: Annotated[
        list[str] | None, typer.Option("--taste", help=_HELP["tastes"] + " Repeatable.")
    ] = None,
    taste_profile: Annotated[
        list[str] | None,
        typer.Option("--taste-profile", help=_HELP["taste_profiles"] + " Repeatable."),
    ] = None,
    account_prefix: Annotated[str | None, _opt("account_prefix")] = None,
    timeout_s: Annotated[float, _opt("timeout_s", min=1.0)] = 600.0,
    events: Annotated[
        Path | None, typer.Option(help="Write every acknowledged thumbs/vote as a JSON line.")
    ] = None,
    summary: Annotated[
        Path | None, typer.Option(help="Also write the JSON summary to this file.")
    ] = None,
) -> None:
    """Sign up USERS accounts and have each send TURNS prompts from the task's examples,
    rating the answers as the task's grader says they deserve (flipped with --noise). Prints
    the JSON summary: accounts, turns, thumbs, votes, events acknowledged, errors, turns/s."""
    from tandem.simulate import SimulationConfig, run_simulation
    from tandem.simulate.driver import load_examples

    try:
        config = SimulationConfig(
            base_url=base_url.rstrip("/"),
            users=users,
            turns=turns,
            opted_out=opted_out,
            concurrency=concurrency,
            seed=seed,
            noise=noise,
            rate_feedback=rate_feedback,
            rate_compare=rate_compare,
            regenerate_rate=regenerate_rate,
            max_events=max_events,
            max_tokens=max_tokens,
            temperature=temperature,
            pass_threshold=pass_threshold,
            task=task,
            split=split or None,
            profiles=tuple(profile or ()),
            stream=stream,
            implicit=implicit,
            tastes=tuple(taste or ()),
            taste_profiles=tuple(taste_profile or ()),
            account_prefix=account_prefix,
            timeout_s=timeout_s,
        )
        load_examples(config)  # an unknown task or split is a usage error, said up front
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(str(exc).strip("'\"")) from None
    result = run_simulation(config, events_path=events)
    text = json.dumps(result.to_dict(), indent=2)
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(text + "\n")
    typer.echo(text)
