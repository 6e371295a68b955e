"""A job launcher for the hermetic job tests: stands where `accelerate launch` or `srun` would.

    LocalRunner(launcher=(sys.executable, "tests/fake_job_launcher.py"))

The worker runs it as `fake_job_launcher.py -m tandem.jobs.child JOB_ID`. Instead of training
it walks FAKE_JOB_STEPS steps of FAKE_JOB_STEP_S seconds through the real job context (the row
writes and the stop check the real child uses), continuing after the last step it recorded, as
a resumed training continues from its checkpoint. FAKE_JOB_FAIL_AT=N fails at step N.
"""

from __future__ import annotations

import os
import sys
import time

from tandem.core.settings import Settings
from tandem.jobs.context import JobContext, JobStopped, die_with_parent
from tandem.store import make_engine, make_session_factory
from tandem.store.jobs import JobRepo


def main() -> int:
    assert sys.argv[1:3] == ["-m", "tandem.jobs.child"], sys.argv
    job_id = sys.argv[3]
    die_with_parent()
    steps = int(os.environ.get("FAKE_JOB_STEPS", "4"))
    step_s = float(os.environ.get("FAKE_JOB_STEP_S", "0.2"))
    fail_at = int(os.environ.get("FAKE_JOB_FAIL_AT", "0"))
    settings = Settings.from_env()
    db = make_engine(settings.database_url)
    sessions = make_session_factory(db)
    context = JobContext(sessions, job_id, writes=True)
    with sessions() as session:
        row = JobRepo(session).get(job_id)
        start = max((int(p[0]) for p in row.points), default=0)
    print(f"fake job {job_id}: steps {start + 1}..{steps}", flush=True)
    try:
        context.progress(phase="training", step=start, total_steps=steps)
        for step in range(start + 1, steps + 1):
            time.sleep(step_s)
            if step == fail_at:
                raise RuntimeError(f"fake failure at step {step}")
            context.progress(step=step, points=[[step, 1.0 / step]])
            context.check()
        context.result(version="fake-trained", resumed_from_step=start)
        with sessions() as session:
            JobRepo(session).finish(job_id, "succeeded")
    except JobStopped:
        with sessions() as session:
            JobRepo(session).finish(job_id, "cancelled", error="cancelled from the console")
    except RuntimeError as exc:
        with sessions() as session:
            JobRepo(session).finish(job_id, "failed", error=str(exc))
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
