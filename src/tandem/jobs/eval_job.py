"""An eval job: one suite on one or more versions, one stored run per version.

    {"suite": "ifeval", "versions": ["smollm2-135m-instruct", "smollm2-dpo-ab12"], "limit": 20}

Progress counts answered prompts over all versions. The result maps each version to its run id
as the run finishes, so a resumed job skips the versions it already evaluated.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

from tandem.core.settings import Settings
from tandem.jobs.context import JobContext


def run_eval_job(
    spec: dict[str, Any], owner_id: str | None, context: JobContext, settings: Settings
) -> None:
    from tandem.engines.setup import build_catalog
    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id, run_suite
    from tandem.evals.tasks import get_task
    from tandem.store import make_engine, make_session_factory

    task = get_task(str(spec["suite"]))
    limit = spec.get("limit")
    examples = list(itertools.islice(task.examples(), int(limit) if limit else None))
    versions = [str(v) for v in spec["versions"]]
    params = EVAL_SAMPLING
    if spec.get("max_tokens"):
        params = dataclasses.replace(EVAL_SAMPLING, max_tokens=int(spec["max_tokens"]))
    with context.sessions() as session:
        from tandem.store.jobs import JobRepo

        done: dict[str, str] = dict(JobRepo(session).get(context.job_id).result.get("runs") or {})
    total = len(examples) * len(versions)
    answered = len(examples) * sum(1 for v in versions if v in done)
    context.progress(phase="loading the models", step=answered, total_steps=total)
    catalog = build_catalog(settings)
    db = make_engine(settings.database_url)
    sessions = make_session_factory(db)
    try:
        for version in versions:
            if version in done:
                continue
            engine = catalog.get(version)
            context.progress(phase=f"{task.name} on {version}")
            last_write = 0.0

            def tick() -> None:
                nonlocal answered, last_write
                answered += 1
                # One row write per second at most: 16 answers can land in the same instant.
                if time.monotonic() - last_write > 1.0 or answered == total:
                    last_write = time.monotonic()
                    context.progress(step=answered, total_steps=total)
                    context.check()

            with sessions() as session:
                run = run_suite(
                    session,
                    task,
                    engine,
                    params,
                    owner_id=owner_id or eval_owner_id(session),
                    examples=examples,
                    on_done=tick,
                )
            done[version] = run.id
            context.result(runs=done)
            context.progress(step=answered, total_steps=total)
    finally:
        catalog.close()
        db.dispose()
