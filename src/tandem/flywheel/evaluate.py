"""Offline evals of one version for the flywheel, with the base's results cached.

    examples = suite_examples("xstest", limit=8)   # 4 safe + 4 contrast
    runs = evaluate_version(session, catalog, "smollm2-135m-instruct", suites, params_by_suite,
                            cache_dir=home / "flywheel" / "eval-cache", owner_id=admin_id)
    runs["ifeval"]["summary"]["average_strict"], runs["ifeval"]["cached"]

The base model does not change between turns, so its runs are cached under a key of model
version + engine backend + the prepared model's layout (a new served format is new answers) +
sampling + the suite's items (ids and prompts): a later turn, even
in a fresh home, copies the cached run into its database (so the gates find it) instead of
generating 1,000-odd answers again. A trained candidate is new every turn and is never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.generation import SamplingParams
from tandem.engines.catalog import ModelCatalog
from tandem.evals.runs import run_suite
from tandem.evals.tasks import Example, Task, get_task
from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.workdir import Database, home_settings
from tandem.registry.embedded import LAYOUT_VERSION
from tandem.store.evals import EvalItem, EvalRepo

SUITES = ("ifeval", "xstest", "behavior_spec", "sycophancy")
# The project's own held-out data: what chooses among candidates (never the benchmarks).
DEV_SUITE = "instructions"


def flywheel_task(suite: str) -> Task:
    """The task behind a flywheel suite: the instruction suite means its dev split."""
    return get_task(suite, split="dev") if suite == DEV_SUITE else get_task(suite)


def suite_examples(task: Task, limit: int | None) -> list[Example]:
    """The first `limit` items; for XSTest half safe and half contrast prompts, so a short run
    still measures both refusal rates."""
    if limit is None:
        return list(task.examples())
    if task.name != "xstest":
        return list(itertools.islice(task.examples(), limit))
    safe = [e for e in task.examples() if e.data.get("safe")]
    contrast = [e for e in task.examples() if not e.data.get("safe")]
    half = (limit + 1) // 2
    return safe[:half] + contrast[: limit - half]


def items_hash(examples: Sequence[Example]) -> str:
    payload = [[e.id, [m.to_dict() for m in e.messages]] for e in examples]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_key(
    version: str, backend: str, params: SamplingParams, suite: str, examples: Sequence[Example]
) -> str:
    key = [version, backend, LAYOUT_VERSION, params.to_dict(), suite, items_hash(examples)]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _cache_file(cache_dir: Path, suite: str, key: str) -> Path:
    return cache_dir / f"{suite}-{key}.json"


def _save_cache(path: Path, run: Any, items: Sequence[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "suite": run.suite,
        "model_version": run.model_version,
        "backend": run.backend,
        "sampling": run.sampling,
        "summary": run.summary,
        "wall_seconds": run.wall_seconds,
        "items": [
            {
                "example_id": i.example_id,
                "prompt_messages": i.prompt_messages,
                "response": i.response,
                "passed": i.passed,
                "scores": i.scores,
                "details": i.details,
            }
            for i in items
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def _import_cached(session: Session, path: Path, owner_id: str) -> Any:
    """The cached run as a new finished run in this database (items without generation rows:
    the answers were generated in another turn's home)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    repo = EvalRepo(session)
    run = repo.start_run(
        data["suite"], data["model_version"], data["backend"], data["sampling"], owner_id
    )
    items = [EvalItem(**item) for item in data["items"]]
    summary = {**data["summary"], "cached_from": path.name}
    return repo.finish_run(run.id, items, summary, wall_seconds=data["wall_seconds"] or 0.0)


def item_record(item: Any, example: Example | None) -> dict[str, Any]:
    """What the paired statistics need of one graded item (tandem.flywheel.stats): pass/fail,
    IFEval's instructions followed, XSTest's refusal and which side the prompt is on."""
    out: dict[str, Any] = {"passed": bool(item.passed)}
    strict = (item.details or {}).get("follow_instruction_list_strict")
    if strict is not None:
        out["followed"], out["instructions"] = sum(bool(s) for s in strict), len(strict)
    scores = item.scores or {}
    if "refusal" in scores:
        out["refused"] = bool(scores["refusal"])
    if example is not None and "safe" in example.data:
        out["safe"] = bool(example.data["safe"])
    return out


def evaluate_version(
    session: Session,
    catalog: ModelCatalog,
    version: str,
    suites: Mapping[str, int | None],
    params: Mapping[str, SamplingParams],
    *,
    owner_id: str,
    cache_dir: Path | None = None,
    concurrency: int = 16,
    tasks: Callable[[str], Task] = flywheel_task,
) -> dict[str, dict[str, Any]]:
    """{suite: {run_id, summary, wall_seconds, seconds, cached, n, passed}} for `version`;
    suites maps a suite name to its item limit (None: all), params to its sampling. With
    `cache_dir`, reads and writes the cache."""
    engine = catalog.get(version)
    out: dict[str, dict[str, Any]] = {}
    for suite, limit in suites.items():
        task = tasks(suite)
        examples = suite_examples(task, limit)
        key = cache_key(version, engine.backend, params[suite], suite, examples)
        path = _cache_file(cache_dir, suite, key) if cache_dir is not None else None
        start = time.perf_counter()
        cached = path is not None and path.exists()
        if path is not None and cached:
            run = _import_cached(session, path, owner_id)
        else:
            run = run_suite(
                session,
                task,
                engine,
                params[suite],
                owner_id=owner_id,
                concurrency=concurrency,
                examples=examples,
            )
        items = EvalRepo(session).items(run.id)
        by_id = {e.id: e for e in examples}
        if path is not None and not cached:
            _save_cache(path, run, items)
        out[suite] = {
            "run_id": run.id,
            "n": len(examples),
            "summary": run.summary,
            "wall_seconds": run.wall_seconds,
            "seconds": round(time.perf_counter() - start, 3),
            "cached": cached,
            "cache_key": key,
            # Per item, so the report can pair two versions prompt by prompt.
            "items": {i.example_id: item_record(i, by_id.get(i.example_id)) for i in items},
        }
    return out


def eval_sampling(config: FlywheelConfig) -> dict[str, SamplingParams]:
    """Greedy for every suite; XSTest's and sycophancy's answers are capped shorter (the
    verdict is in the opening; a 135M model often runs on to the cap)."""
    from tandem.evals.runs import EVAL_SAMPLING

    answers = dataclasses.replace(EVAL_SAMPLING, max_tokens=config.eval.eval_max_tokens)
    short = dataclasses.replace(EVAL_SAMPLING, max_tokens=config.eval.refusal_max_tokens)
    return {
        "ifeval": answers,
        "xstest": short,
        "behavior_spec": answers,
        "sycophancy": short,
        "instructions": answers,
    }


def stage_eval(
    config: FlywheelConfig,
    home: Path,
    versions: list[str],
    cache_dir: Path | None,
    cached: frozenset[str] = frozenset(),
    choose: bool = False,
) -> dict[str, Any]:
    """Every suite on every version; the versions in `cached` (the base: it never changes) read
    and write the eval cache. With `choose` (several candidates to choose among), the
    instruction suite's dev split too: the project's own data, which does the choosing."""
    from tandem.engines.setup import build_catalog
    from tandem.evals.runs import eval_owner_id
    from tandem.registry.embedded import ONNX_PRECISION

    params = eval_sampling(config)
    suites = config.eval.limits()
    if choose:
        suites[DEV_SUITE] = None
    catalog = build_catalog(home_settings(home))
    results: dict[str, Any] = {}
    try:
        with Database(home) as session:
            owner = eval_owner_id(session)
            for version in versions:
                results[version] = evaluate_version(
                    session,
                    catalog,
                    version,
                    suites,
                    params,
                    owner_id=owner,
                    concurrency=config.eval.eval_concurrency,
                    cache_dir=cache_dir if version in cached else None,
                )
            backend = catalog.get(versions[0]).backend if versions else "onnx"
    finally:
        catalog.close()
    engine = f"{backend} ({ONNX_PRECISION})" if backend == "onnx" else backend
    return {
        "engine": engine,
        "sampling": {suite: p.to_dict() for suite, p in params.items()},
        "limits": suites,
        "versions": results,
    }


def ifeval_figure(runs: dict[str, Any]) -> float | None:
    run = runs.get("ifeval")
    return None if run is None else run["summary"].get("average_strict")


def dev_figure(runs: dict[str, Any]) -> float | None:
    """The instruction suite's dev-split pass rate (None when it was not run)."""
    run = runs.get("instructions")
    return None if run is None else run["summary"].get("pass_rate")
