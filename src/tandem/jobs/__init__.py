"""Jobs: training and eval runs started from the admin console, run outside the request.

    worker = JobWorker(session_factory, settings)   # tandem.jobs.worker; the app starts one
    worker.start()                                  # claims queued jobs, watches, heartbeats
    worker.stop()                                   # the jobs it ran become `interrupted`

A job's state lives in its database row (tandem.store.jobs). The worker hands each job to a
runner (tandem.jobs.runners): a local process by default, or any launcher a team already has
(`accelerate launch`, `srun`, `ray job submit`) through TANDEM_JOB_LAUNCHER. The process runs
`python -m tandem.jobs.child JOB_ID`, which trains or evaluates and writes progress to the row.
"""
