"""`tandem eval run|pairwise|runs|show|compare`: suites answered by model versions, graded and
stored as runs (docs/evals.md, "Running suites, stored runs and comparisons").

tandem eval run SUITE --model VERSION [--limit N] [--max-tokens 1024] [--concurrency 16]
tandem eval pairwise --model V --baseline B --suite S
    (--judge-url URL --judge-model M [--judge-api-key-env VAR] | --reward-model R)
tandem eval runs [--suite S] | show RUN [--items] | compare RUN_A RUN_B

The commands join `tandem eval` (tandem.cli.evals); the engines come from `prepared_catalog`,
which tests replace with fake engines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tandem.cli.common import CommandError, ExitCode, cli_session, prepared_catalog
from tandem.core.settings import Settings

if TYPE_CHECKING:
    from tandem.evals.pairwise import PairJudge
    from tandem.evals.tasks import Example, Task
    from tandem.store.evals import EvalRunRow

eval_runs_app = typer.Typer()

BootstrapOpt = Annotated[
    int, typer.Option(min=0, max=10_000, help="Bootstrap rounds for the 95% intervals.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Only the first N items.")]
MaxTokensOpt = Annotated[int, typer.Option(min=1, max=32_768)]
InputOpt = Annotated[
    Path | None,
    typer.Option("--input", exists=True, help="Suite data (IFEval input JSONL, XSTest directory)."),
]


def _suite_options(suite: str, input_file: Path | None) -> dict[str, object]:
    if input_file is None:
        return {}
    if suite == "ifeval":
        return {"input_path": input_file}
    if suite == "xstest":
        return {"data_dir": input_file}
    raise CommandError(f"--input is not supported for suite {suite!r}", ExitCode.USAGE)


def _suite_examples(
    suite: str, input_file: Path | None, limit: int | None
) -> tuple[Task, list[Example]]:
    """The suite's task and its first `limit` examples; a suite that is unknown or whose data
    cannot be read fails the command (exit 1)."""
    import itertools

    from tandem.evals.tasks import get_task

    try:
        task = get_task(suite, **_suite_options(suite, input_file))
        return task, list(itertools.islice(task.examples(), limit))
    except (KeyError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from None


@eval_runs_app.command("run")
def run_command(
    suite: Annotated[str, typer.Argument(help="Suite name: ifeval, xstest, or a plugin's.")],
    model: Annotated[str, typer.Option(help="Model version to evaluate.")],
    limit: LimitOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Requests in flight (the engine batches them).")
    ] = 16,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
    repetition_penalty: Annotated[float, typer.Option(min=0.5, max=2.0)] = 1.0,
    seed: Annotated[int | None, typer.Option()] = None,
    stop_loops: Annotated[
        bool | None,
        typer.Option(
            "--stop-loops/--no-stop-loops",
            help="End an answer that keeps repeating itself (finish_reason loop) instead of "
            "running it to the token cap. Default: the eval default (docs/evals.md).",
            show_default=False,
        ),
    ] = None,
    input_file: InputOpt = None,
) -> None:
    """Generate answers (batched), grade them, store the run; print the summary JSON."""
    import dataclasses

    from rich.progress import Progress

    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id, run_suite

    task, examples = _suite_examples(suite, input_file, limit)
    params = dataclasses.replace(
        EVAL_SAMPLING,
        max_tokens=max_tokens,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop_loops=EVAL_SAMPLING.stop_loops if stop_loops is None else stop_loops,
    )
    catalog = prepared_catalog(Settings.from_env())
    try:
        engine = catalog.get(model)
        with cli_session() as session, Progress(transient=True) as progress:
            bar = progress.add_task(f"{suite} · {model}", total=len(examples))
            run = run_suite(
                session,
                task,
                engine,
                params,
                owner_id=eval_owner_id(session),
                concurrency=concurrency,
                examples=examples,
                on_done=lambda: progress.advance(bar),
            )
            out = {"run_id": run.id, "suite": suite, "model": model, **run.summary}
            wall = run.wall_seconds or 0.0
    finally:
        catalog.close()
    typer.echo(json.dumps(out, indent=2))
    typer.echo(f"wall time: {wall:.1f}s for {len(examples)} items", err=True)


@eval_runs_app.command("pairwise")
def pairwise_command(
    model: Annotated[str, typer.Option(help="Candidate model version.")],
    baseline: Annotated[str, typer.Option(help="Baseline model version it is compared with.")],
    suite: Annotated[str, typer.Option(help="Suite whose prompts both versions answer.")],
    limit: LimitOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Requests in flight per version.")
    ] = 16,
    judge_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL of an LLM judge (…/v1)."),
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="The judge's model name (with --judge-url).")
    ] = None,
    judge_api_key_env: Annotated[
        str | None,
        typer.Option(help="Name of the environment variable holding the judge's API key."),
    ] = None,
    reward_model: Annotated[
        str | None,
        typer.Option(help="A reward version from `tandem train reward`, as the judge."),
    ] = None,
    bootstrap: BootstrapOpt = 1000,
    seed: SeedOpt = 0,
    input_file: InputOpt = None,
) -> None:
    """Win rate of --model against --baseline on a suite's prompts, each pair judged in both
    orders; stores the run (suite `pairwise:SUITE`) and prints the summary JSON.

    Exactly one judge: --judge-url with --judge-model (key read from the variable named by
    --judge-api-key-env, never from the command line), or --reward-model."""
    import dataclasses

    import httpx

    from tandem.evals.pairwise import openai_pair_judge, reward_model_judge, run_pairwise
    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id
    from tandem.registry.embedded import model_root
    from tandem.registry.versions import REWARD, version_kind

    def usage(message: str) -> CommandError:
        return CommandError(message, ExitCode.USAGE)

    if (judge_url is None) == (reward_model is None):
        raise usage("give exactly one judge: --judge-url (with --judge-model) or --reward-model")
    if judge_url is not None and not judge_model:
        raise usage("--judge-url needs --judge-model")
    if reward_model is not None and (judge_model or judge_api_key_env):
        raise usage("--judge-model/--judge-api-key-env only apply to --judge-url")
    api_key = None
    if judge_api_key_env:
        api_key = os.environ.get(judge_api_key_env)
        if not api_key:
            raise usage(f"environment variable {judge_api_key_env} is not set")
    _, examples = _suite_examples(suite, input_file, limit)
    if not examples:
        raise CommandError(f"suite {suite!r} has no items")
    settings = Settings.from_env()
    judge: PairJudge
    if reward_model is not None:
        root = model_root(settings.home, reward_model)
        if version_kind(root) != REWARD:
            raise CommandError(f"{reward_model!r} is not a registered reward model version")
        judge = reward_model_judge(root)
    else:
        judge = openai_pair_judge(judge_url, judge_model, api_key)  # type: ignore[arg-type]  # checked above: set unless --reward-model
    params = dataclasses.replace(EVAL_SAMPLING, max_tokens=max_tokens)
    catalog = prepared_catalog(settings)
    try:
        candidate, base = catalog.get(model), catalog.get(baseline)
        with cli_session() as session:
            run = run_pairwise(
                session,
                suite,
                examples,
                candidate,
                base,
                judge,
                params,
                owner_id=eval_owner_id(session),
                concurrency=concurrency,
                bootstrap=bootstrap,
                seed=seed,
            )
            out = {"run_id": run.id, "suite": run.suite, "model": model, **run.summary}
            wall = run.wall_seconds or 0.0
    except httpx.HTTPError as exc:
        raise CommandError(f"judge request failed: {exc}") from None
    finally:
        catalog.close()
    typer.echo(json.dumps(out, indent=2))
    typer.echo(f"wall time: {wall:.1f}s for {len(examples)} pairs", err=True)


def _run_public(run: EvalRunRow) -> dict[str, object]:
    return {
        "id": run.id,
        "suite": run.suite,
        "model_version": run.model_version,
        "backend": run.backend,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "wall_seconds": run.wall_seconds,
        "n_items": run.n_items,
        "sampling": run.sampling,
        "summary": run.summary,
    }


@eval_runs_app.command("runs")
def runs_command(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Stored runs, newest first, as JSON lines."""
    from tandem.store.evals import EvalRepo

    with cli_session() as session:
        for run in EvalRepo(session).list_runs(suite=suite, limit=limit):
            typer.echo(json.dumps(_run_public(run)))


@eval_runs_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="Run id (from `tandem eval runs`).")],
    items: Annotated[bool, typer.Option(help="Include every graded item.")] = False,
) -> None:
    """One stored run as JSON."""
    from tandem.store.evals import EvalRepo

    with cli_session() as session:
        repo = EvalRepo(session)
        out = _run_public(repo.get_run(run_id))
        if items:
            out["items"] = [
                {
                    "example_id": i.example_id,
                    "passed": i.passed,
                    "scores": i.scores,
                    "response": i.response,
                    "generation_id": i.generation_id,
                }
                for i in repo.items(run_id)
            ]
    typer.echo(json.dumps(out, indent=2))


@eval_runs_app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run id.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id.")],
) -> None:
    """Items that flipped between two runs and the exact McNemar p-value, as JSON."""
    from tandem.evals.paired import compare_outcomes
    from tandem.store.evals import EvalRepo

    with cli_session() as session:
        repo = EvalRepo(session)
        a, b = repo.get_run(run_a), repo.get_run(run_b)
        outcomes_a = {i.example_id: i.passed for i in repo.items(run_a)}
        outcomes_b = {i.example_id: i.passed for i in repo.items(run_b)}
        if a.suite != b.suite:
            raise CommandError(f"runs are of different suites ({a.suite}, {b.suite})")
        head = {"suite": a.suite, "run_a": run_a, "model_a": a.model_version}
        head |= {"run_b": run_b, "model_b": b.model_version}
    typer.echo(json.dumps(head | compare_outcomes(outcomes_a, outcomes_b), indent=2))
