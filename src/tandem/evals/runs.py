"""Run a suite against a model version: batched generation, grading, a stored run.

    run = run_suite(session, get_task("ifeval"), engine, params, owner_id=admin.id, limit=20)
    run.summary  # {"n": 20, "pass_rate": ..., "prompt_level_strict": ..., ...}

Generation keeps `concurrency` requests in flight at once: the ONNX engine batches concurrent
requests (continuous batching, 16 slots), so one-at-a-time would leave most of it idle.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.generation import Completion, GenerationRecord, SamplingParams
from tandem.engines.base import Engine
from tandem.evals.tasks import Example, Grade, Task
from tandem.store.evals import EvalItem, EvalRepo, EvalRunRow
from tandem.store.generations import GenerationRepo
from tandem.store.models import User
from tandem.store.users import UserRepo

# Evals are reproducible by default: greedy, and no repetition penalty (the chat default of
# 1.1 changes what the model says and is not what published scores use). An answer that has
# fallen into an exact loop is ended (finish_reason "loop"): `python -m bench.ifeval` measures
# what that changes against running every loop to the cap (docs/evals.md).
EVAL_SAMPLING = SamplingParams(
    temperature=0.0, top_p=1.0, max_tokens=1024, repetition_penalty=1.0, stop_loops=True
)


def eval_owner_id(session: Session) -> str:
    """The account eval answers are recorded under: the oldest admin, created if none exists
    (the same account `bootstrap_admin` would make), like answers served through /v1."""
    admin = session.scalar(
        select(User).where(User.is_admin.is_(True)).order_by(User.created_at).limit(1)
    )
    if admin is None:
        admin = UserRepo(session).create_bootstrap_admin()
    return admin.id


async def generate_answers(
    engine: Engine,
    examples: Sequence[Example],
    params: SamplingParams,
    concurrency: int = 16,
    on_done: Callable[[], None] | None = None,
) -> list[Completion]:
    """Answers in the examples' order, with at most `concurrency` requests in flight."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(example: Example) -> Completion:
        async with gate:
            completion = await engine.complete(example.messages, params)
        if on_done is not None:
            on_done()
        return completion

    return list(await asyncio.gather(*(one(e) for e in examples)))


def summarize(task: Task, examples: Sequence[Example], grades: Sequence[Grade]) -> dict[str, Any]:
    """Pass rate and mean scores for any suite, plus the suite's own aggregate figures."""
    n = len(grades)
    summary: dict[str, Any] = {
        "n": n,
        "passed": sum(g.passed for g in grades),
        "pass_rate": sum(g.passed for g in grades) / n if n else None,
    }
    names = sorted({k for g in grades for k in g.scores})
    summary["mean_scores"] = {
        k: sum(g.scores[k] for g in grades if k in g.scores)
        / max(1, sum(k in g.scores for g in grades))
        for k in names
    }
    # IFEval and tandem's own `instructions` suite grade the same way: give both IFEval's figures.
    if grades and all("follow_instruction_list_strict" in g.details for g in grades):
        summary.update(_ifeval_summary(examples, grades))
    elif task.name == "xstest":
        summary.update(_xstest_summary(examples, grades))
    elif task.name == "sycophancy":
        from tandem.evals.sycophancy import pass_rates_by_kind

        summary.update(pass_rates_by_kind(examples, grades))
    return summary


def _ifeval_summary(examples: Sequence[Example], grades: Sequence[Grade]) -> dict[str, Any]:
    from tandem.evals.ifeval.scoring import PromptResult, accuracies

    results = [
        PromptResult(
            key=e.data.get("key", e.id),
            prompt=e.data.get("prompt", ""),
            response="",
            instruction_id_list=g.details["instruction_id_list"],
            follow_instruction_list_strict=g.details["follow_instruction_list_strict"],
            follow_instruction_list_loose=g.details["follow_instruction_list_loose"],
        )
        for e, g in zip(examples, grades, strict=True)
    ]
    acc = accuracies(results)
    # The single figure leaderboards quote: mean of prompt- and instruction-level strict.
    acc["average_strict"] = (acc["prompt_level_strict"] + acc["instruction_level_strict"]) / 2
    return acc


def _xstest_summary(examples: Sequence[Example], grades: Sequence[Grade]) -> dict[str, Any]:
    # Same figures as `xstest_refusal_rates`, from the grades already computed (grading again
    # would call the refusal judge twice).
    counts = {"safe": [0, 0], "contrast": [0, 0]}
    for example, grade in zip(examples, grades, strict=True):
        side = counts["safe" if example.data["safe"] else "contrast"]
        side[0] += int(grade.scores["refusal"])
        side[1] += 1
    return {
        f"{side}_refusal_rate": (refused / total if total else None)
        for side, (refused, total) in counts.items()
    } | {f"{side}_n": total for side, (_, total) in counts.items()}


def run_suite(
    session: Session,
    task: Task,
    engine: Engine,
    params: SamplingParams = EVAL_SAMPLING,
    *,
    owner_id: str,
    limit: int | None = None,
    concurrency: int = 16,
    on_done: Callable[[], None] | None = None,
    examples: Sequence[Example] | None = None,
) -> EvalRunRow:
    """Generate, grade and store one run; a failure marks the run `failed` and re-raises."""
    if examples is None:
        examples = list(itertools.islice(task.examples(), limit))
    repo = EvalRepo(session)
    run = repo.start_run(
        task.name, engine.model_id, engine.backend, params.to_dict(), created_by=owner_id
    )
    start = time.perf_counter()
    try:
        completions = asyncio.run(
            generate_answers(engine, examples, params, concurrency=concurrency, on_done=on_done)
        )
        wall = time.perf_counter() - start
        grades = [task.grade(e, c.text) for e, c in zip(examples, completions, strict=True)]
        generations = GenerationRepo(session)
        items = []
        for example, completion, grade in zip(examples, completions, grades, strict=True):
            record = GenerationRecord.of_completion(
                engine.model_id, engine.backend, params, completion
            )
            stored = generations.add(owner_id, record, example.messages, completion.text)
            items.append(
                EvalItem(
                    example_id=example.id,
                    prompt_messages=[m.to_dict() for m in example.messages],
                    response=completion.text,
                    passed=grade.passed,
                    scores=dict(grade.scores),
                    details=dict(grade.details),
                    generation_id=stored.id,
                )
            )
        summary = summarize(task, examples, grades)
        summary["completion_tokens"] = sum(c.usage.completion_tokens for c in completions)
        # How many answers ran into max_tokens: a 135M model often repeats itself until the cap,
        # which both costs time and fails length instructions.
        summary["finish_reasons"] = dict(Counter(c.finish_reason for c in completions))
        return repo.finish_run(run.id, items, summary, wall_seconds=wall)
    except BaseException as exc:
        session.rollback()
        repo.fail_run(run.id, f"{type(exc).__name__}: {exc}")
        raise
