"""`tandem eval`: offline suites and online metrics (docs/evals.md).

tandem eval arena-ratings --battles FILE.jsonl [--bootstrap 100] [--seed 0]
tandem eval online [--json] [--bootstrap 100] [--seed 0]
tandem eval report [--json] [--output DIR] [--x ifeval] [--y thumbs_up|arena]
tandem eval ifeval-grade --responses R.jsonl --output OUT.jsonl [--input input_data.jsonl]
tandem eval export-suite SUITE --output FILE.jsonl [--split train|dev]
tandem eval refusal-agreement [--dir ../shared/data/benchmarks/xstest]
tandem eval run SUITE --model VERSION [--limit N] [--max-tokens 1024] [--concurrency 16]
tandem eval runs | show RUN [--items] | compare RUN_A RUN_B
tandem eval pairwise --model V --baseline B --suite S
    (--judge-url URL --judge-model M [--judge-api-key-env VAR] | --reward-model R)
tandem eval build-regressions [--output FILE.jsonl]
tandem eval behavior-spec --responses R.jsonl [--spec FILE.yaml]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from tandem.cli.db import cli_session as _session
from tandem.core.settings import Settings

eval_app = typer.Typer(help="Evaluate model versions: offline suites and online metrics.")

BootstrapOpt = Annotated[
    int, typer.Option(min=0, max=10_000, help="Bootstrap rounds for the 95% intervals.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Only the first N items.")]
MaxTokensOpt = Annotated[int, typer.Option(min=1, max=32_768)]


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

    with _session() as session:
        report = gap_report(session, bootstrap=bootstrap, seed=seed)
    if output is not None:
        try:
            png = render_scatter(report, x, y)
        except UnknownMetric as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
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


def _eval_catalog(settings: Settings):  # type: ignore[no-untyped-def]
    """The catalog `tandem serve` would build, embedded model prepared; tests swap this out."""
    from tandem.cli.main import _prepare
    from tandem.engines.setup import build_catalog

    _prepare(settings)
    return build_catalog(settings)


def _suite_options(suite: str, input_file: Path | None) -> dict[str, object]:
    if input_file is None:
        return {}
    if suite == "ifeval":
        return {"input_path": input_file}
    if suite == "xstest":
        return {"data_dir": input_file}
    typer.echo(f"error: --input is not supported for suite {suite!r}", err=True)
    raise typer.Exit(2)


@eval_app.command("run")
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
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input", exists=True, help="Suite data (IFEval input JSONL, XSTest directory)."
        ),
    ] = None,
) -> None:
    """Generate answers (batched), grade them, store the run; print the summary JSON."""
    import dataclasses
    import itertools

    from rich.progress import Progress

    from tandem.engines.catalog import ModelNotFound
    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id, run_suite
    from tandem.evals.tasks import get_task

    try:
        task = get_task(suite, **_suite_options(suite, input_file))
        examples = list(itertools.islice(task.examples(), limit))
    except (KeyError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    params = dataclasses.replace(
        EVAL_SAMPLING,
        max_tokens=max_tokens,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop_loops=EVAL_SAMPLING.stop_loops if stop_loops is None else stop_loops,
    )
    settings = Settings.from_env()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    catalog = _eval_catalog(settings)
    try:
        engine = catalog.get(model)
    except ModelNotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        with _session() as session, Progress(transient=True) as progress:
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


@eval_app.command("pairwise")
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
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input", exists=True, help="Suite data (IFEval input JSONL, XSTest directory)."
        ),
    ] = None,
) -> None:
    """Win rate of --model against --baseline on a suite's prompts, each pair judged in both
    orders; stores the run (suite `pairwise:SUITE`) and prints the summary JSON.

    Exactly one judge: --judge-url with --judge-model (key read from the variable named by
    --judge-api-key-env, never from the command line), or --reward-model."""
    import dataclasses
    import itertools

    import httpx

    from tandem.engines.catalog import ModelNotFound
    from tandem.evals.pairwise import openai_pair_judge, reward_model_judge, run_pairwise
    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id
    from tandem.evals.tasks import get_task
    from tandem.registry.embedded import model_root
    from tandem.registry.versions import REWARD, version_kind

    def fail(message: str, code: int = 1) -> typer.Exit:
        typer.echo(f"error: {message}", err=True)
        return typer.Exit(code)

    if (judge_url is None) == (reward_model is None):
        raise fail("give exactly one judge: --judge-url (with --judge-model) or --reward-model", 2)
    if judge_url is not None and not judge_model:
        raise fail("--judge-url needs --judge-model", 2)
    if reward_model is not None and (judge_model or judge_api_key_env):
        raise fail("--judge-model/--judge-api-key-env only apply to --judge-url", 2)
    api_key = None
    if judge_api_key_env:
        api_key = os.environ.get(judge_api_key_env)
        if not api_key:
            raise fail(f"environment variable {judge_api_key_env} is not set", 2)
    try:
        task = get_task(suite, **_suite_options(suite, input_file))
        examples = list(itertools.islice(task.examples(), limit))
    except (KeyError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        raise fail(str(exc)) from None
    if not examples:
        raise fail(f"suite {suite!r} has no items")
    settings = Settings.from_env()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if reward_model is not None:
        root = model_root(settings.home, reward_model)
        if version_kind(root) != REWARD:
            raise fail(f"{reward_model!r} is not a registered reward model version")
        judge = reward_model_judge(root)
    else:
        judge = openai_pair_judge(judge_url, judge_model, api_key)  # type: ignore[arg-type]
    params = dataclasses.replace(EVAL_SAMPLING, max_tokens=max_tokens)
    catalog = _eval_catalog(settings)
    try:
        try:
            candidate, base = catalog.get(model), catalog.get(baseline)
        except ModelNotFound as exc:
            raise fail(str(exc)) from None
        with _session() as session:
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
        raise fail(f"judge request failed: {exc}") from None
    finally:
        catalog.close()
    typer.echo(json.dumps(out, indent=2))
    typer.echo(f"wall time: {wall:.1f}s for {len(examples)} pairs", err=True)


def _run_public(run) -> dict[str, object]:  # type: ignore[no-untyped-def]
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


@eval_app.command("runs")
def runs_command(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Stored runs, newest first, as JSON lines."""
    from tandem.store.evals import EvalRepo

    with _session() as session:
        for run in EvalRepo(session).list_runs(suite=suite, limit=limit):
            typer.echo(json.dumps(_run_public(run)))


@eval_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="Run id (from `tandem eval runs`).")],
    items: Annotated[bool, typer.Option(help="Include every graded item.")] = False,
) -> None:
    """One stored run as JSON."""
    from tandem.store import NotFound
    from tandem.store.evals import EvalRepo

    with _session() as session:
        repo = EvalRepo(session)
        try:
            out = _run_public(repo.get_run(run_id))
        except NotFound:
            typer.echo(f"error: no eval run {run_id!r}", err=True)
            raise typer.Exit(1) from None
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


@eval_app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run id.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id.")],
) -> None:
    """Items that flipped between two runs and the exact McNemar p-value, as JSON."""
    from tandem.evals.paired import compare_outcomes
    from tandem.store import NotFound
    from tandem.store.evals import EvalRepo

    with _session() as session:
        repo = EvalRepo(session)
        try:
            a, b = repo.get_run(run_a), repo.get_run(run_b)
            outcomes_a = {i.example_id: i.passed for i in repo.items(run_a)}
            outcomes_b = {i.example_id: i.passed for i in repo.items(run_b)}
        except NotFound as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if a.suite != b.suite:
            typer.echo(f"error: runs are of different suites ({a.suite}, {b.suite})", err=True)
            raise typer.Exit(1)
        head = {"suite": a.suite, "run_a": run_a, "model_a": a.model_version}
        head |= {"run_b": run_b, "model_b": b.model_version}
    typer.echo(json.dumps(head | compare_outcomes(outcomes_a, outcomes_b), indent=2))


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

    with _session() as session:
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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
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
        typer.echo(f"error: suite {suite!r} has no splits (drop --split)", err=True)
        raise typer.Exit(2) from None
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        examples = list(task.examples())
    except (KeyError, FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for example in examples:
            if all(field in example.data for field in IFEVAL_FIELDS):
                row = {field: example.data[field] for field in IFEVAL_FIELDS}
            else:
                row = {"id": example.id, "messages": [m.to_dict() for m in example.messages]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    typer.echo(f"wrote {len(examples)} examples of {suite} to {output}")
