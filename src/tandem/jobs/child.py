"""`python -m tandem.jobs.child JOB_ID`: the process that does one job's work.

It reads the job's spec from its row, trains (tandem.train.run.train) or evaluates
(tandem.evals.runs.run_suite), and writes phase, step, loss points and the result to the row as
it goes; the worker only watches. Under a multi-process launcher (`accelerate launch`) every
process trains and only the main one writes the row.

It stops on its own when the row says it should no longer run (cancelled, or marked
interrupted after its server was restarted), and, started directly by a server, it dies with
that server: the checkpoints it wrote stay, and Resume continues from the newest.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from tandem.core.offline import stay_offline
from tandem.core.settings import Settings
from tandem.jobs.context import JobContext, JobStopped, die_with_parent
from tandem.store import make_engine, make_session_factory
from tandem.store.jobs import JobRepo, JobRow

log = logging.getLogger("tandem.jobs.child")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_job(row: JobRow, context: JobContext, settings: Settings) -> None:
    if row.kind == "train":
        from tandem.jobs.train_job import run_train_job

        run_train_job(row.spec, context, settings)
    elif row.kind == "eval":
        from tandem.jobs.eval_job import run_eval_job

        run_eval_job(row.spec, row.created_by, context, settings)
    else:
        raise ValueError(f"unknown job kind {row.kind!r}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tandem.jobs.child JOB_ID", file=sys.stderr)
        return 2
    job_id = args[0]
    die_with_parent()
    stay_offline()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = Settings.from_env()
    db = make_engine(settings.database_url)
    sessions = make_session_factory(db)
    # Under `accelerate launch` only rank 0 writes the row (RANK is set by every launcher).
    writes = os.environ.get("RANK", "0") == "0"
    context = JobContext(sessions, job_id, writes=writes)
    try:
        with sessions() as session:
            row = JobRepo(session).get(job_id)
        log.info("job %s (%s): %s, attempt %d", job_id, row.kind, row.title, row.attempts)
        context.check()
        run_job(row, context, settings)
        if writes:
            with sessions() as session:
                JobRepo(session).finish(job_id, "succeeded")
        log.info("job %s succeeded", job_id)
        return 0
    except JobStopped as stopped:
        log.info("job %s stopped: %s", job_id, stopped)
        if writes:
            with sessions() as session:
                JobRepo(session).finish(job_id, "cancelled", error="cancelled from the console")
        return 0
    except Exception as exc:
        log.error("job %s failed", job_id, exc_info=True)
        if writes:
            with sessions() as session:
                summary = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()[-3000:]}"
                JobRepo(session).finish(job_id, "failed", error=summary)
        return 1
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
