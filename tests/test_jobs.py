"""Training and eval jobs: the API that queues them (admin only, checked before queueing), and
the worker that runs them through a runner, with cancel, restart and resume. The job process
here is tests/fake_job_launcher.py (the real child's context, no training); the real training
job runs in tests/test_web_admin_loop.py."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import new_user
from tandem.jobs.runners import LocalRunner
from tandem.jobs.worker import HOST, JobWorker, owner_alive
from tandem.store.jobs import JobRepo

LAUNCHER = (sys.executable, str(Path(__file__).with_name("fake_job_launcher.py")))
DEMO = {
    "messages": [
        {"role": "user", "content": "What is tandem?"},
        {"role": "assistant", "content": "A chat assistant that learns from its users."},
    ]
}


def _register_base(home: Path, version: str = "fake-model") -> None:
    root = home / "models" / version
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"kind": "chat"}))


def _sft_snapshot(client, admin) -> str:
    body = {"kind": "sft", "demonstrations": [DEMO], "filters": {"test_fraction": 0}}
    r = client.post("/api/datasets", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait(sessions, job_id: str, statuses: tuple[str, ...], timeout_s: float = 30) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as session:
            row = JobRepo(session).get(job_id)
            if row.status in statuses:
                session.expunge(row)
                return row
        assert time.monotonic() < deadline, f"job stayed {row.status}, wanted {statuses}"
        time.sleep(0.1)


@pytest.fixture
def worker_for(settings, app, monkeypatch):
    """A worker over the app's database whose jobs run the fake launcher."""
    workers: list[JobWorker] = []

    def make(**env: str) -> JobWorker:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        worker = JobWorker(
            app.state.session_factory, settings, LocalRunner(launcher=LAUNCHER), poll_s=0.1
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def test_queueing_a_training_job_checks_everything_first(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    _register_base(tandem_home)
    snapshot = _sft_snapshot(client, admin)
    good = {"method": "sft", "dataset": snapshot, "base": "fake-model"}
    assert client.post("/api/admin/jobs/train", json=good).status_code == 401
    assert client.post("/api/admin/jobs/train", json=good, headers=user).status_code == 403
    assert client.get("/api/admin/jobs", headers=user).status_code == 403
    bad = [
        ({**good, "method": "ppo"}, 422),
        ({**good, "dataset": "no-such-snapshot"}, 422),
        ({**good, "method": "dpo"}, 422),  # an SFT snapshot cannot train DPO
        ({**good, "base": "no-such-model"}, 404),
        ({**good, "output_version": "../escape"}, 422),
        ({**good, "config": {"no_such_knob": 1}}, 422),
        ({**good, "config": {"batch_size": 0}}, 422),
        ({**good, "config": {"full": "maybe"}}, 422),
        ({**good, "unexpected": 1}, 422),
    ]
    for body, code in bad:
        r = client.post("/api/admin/jobs/train", json=body, headers=admin)
        assert r.status_code == code, (body, r.text)
        assert r.json()["error"]["message"]
    body = {**good, "config": {"max_steps": 2, "logging_steps": 1, "learning_rate": None}}
    r = client.post("/api/admin/jobs/train", json=body, headers=admin)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["kind"] == "train"
    version = job["spec"]["output_version"]
    assert version.startswith("fake-model-sft-")
    assert job["spec"]["config"] == {"max_steps": 2, "logging_steps": 1}
    # The same run again would train into the same version: refused while the first is queued.
    r = client.post("/api/admin/jobs/train", json=body, headers=admin)
    assert r.status_code == 409 and job["id"] in r.json()["error"]["message"]
    listed = client.get("/api/admin/jobs", headers=admin).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert client.get("/api/admin/jobs/nope", headers=admin).status_code == 404


def test_queueing_an_eval_job(client):
    admin = new_user(client, "admin@x.io")
    body = {"suite": "instructions", "versions": ["fake-model", "other-model"], "limit": 3}
    r = client.post("/api/admin/jobs/eval", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["spec"] == {**body, "max_tokens": None}
    assert "instructions" in r.json()["title"]
    for bad, code in [
        ({**body, "suite": "nope"}, 422),
        ({**body, "versions": []}, 422),
        ({**body, "versions": ["missing-model"]}, 404),
        ({**body, "limit": 0}, 422),
    ]:
        assert client.post("/api/admin/jobs/eval", json=bad, headers=admin).status_code == code


def test_two_workers_never_claim_one_job(client, app):
    admin = new_user(client, "admin@x.io")
    r = client.post("/api/admin/jobs/eval", json={"suite": "ifeval", "versions": ["fake-model"]},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    sessions = app.state.session_factory
    with sessions() as first, sessions() as second:
        # Both see the job queued; the conditional UPDATE lets only one of them take it.
        assert [row.id for row in JobRepo(first).list()] == [r.json()["id"]]
        assert JobRepo(second).get(r.json()["id"]).status == "queued"
        taken = JobRepo(first).claim_next("host:1:a")
        assert taken is not None and taken.owner == "host:1:a"
        assert JobRepo(second).claim_next("host:2:b") is None
        assert JobRepo(second).get(taken.id).owner == "host:1:a"


def test_a_job_runs_outside_the_request_with_progress_and_a_log(client, worker_for, app, settings):
    admin = new_user(client, "admin@x.io")
    with app.state.session_factory() as session:
        job = JobRepo(session).create("train", {}, title="fake", created_by=None)
    worker = worker_for(FAKE_JOB_STEPS="3", FAKE_JOB_STEP_S="0.05")
    worker.start()
    row = _wait(app.state.session_factory, job.id, ("succeeded", "failed"))
    assert row.status == "succeeded", row.error
    assert (row.step, row.total_steps, row.fraction) == (3, 3, 1.0)
    assert [p[0] for p in row.points] == [1, 2, 3]
    assert row.result == {"version": "fake-trained", "resumed_from_step": 0}
    detail = client.get(f"/api/admin/jobs/{job.id}", headers=admin).json()
    assert detail["points"] == [[1, 1.0], [2, 0.5], [3, 1 / 3]]
    log = client.get(f"/api/admin/jobs/{job.id}/log", headers=admin).json()
    assert "fake job" in log["text"] and log["size"] > 0


def test_a_failing_job_says_why_and_can_run_again(client, worker_for, app):
    admin = new_user(client, "admin@x.io")
    with app.state.session_factory() as session:
        job = JobRepo(session).create("train", {}, title="fake", created_by=None)
    worker_for(FAKE_JOB_STEPS="3", FAKE_JOB_STEP_S="0.05", FAKE_JOB_FAIL_AT="2").start()
    row = _wait(app.state.session_factory, job.id, ("failed", "succeeded"))
    assert row.status == "failed" and "fake failure at step 2" in row.error
    assert client.post(f"/api/admin/jobs/{job.id}/cancel", headers=admin).status_code == 409
    assert client.post(f"/api/admin/jobs/{job.id}/resume", headers=admin).status_code == 200


def test_cancel_stops_the_process(client, worker_for, app):
    admin = new_user(client, "admin@x.io")
    with app.state.session_factory() as session:
        job = JobRepo(session).create("train", {}, title="fake", created_by=None)
    worker = worker_for(FAKE_JOB_STEPS="200", FAKE_JOB_STEP_S="0.1")
    worker.start()
    row = _wait(app.state.session_factory, job.id, ("running",))
    while not row.handle or row.step < 1:
        row = _wait(app.state.session_factory, job.id, ("running",))
    r = client.post(f"/api/admin/jobs/{job.id}/cancel", headers=admin)
    assert r.status_code == 200 and r.json()["cancel_requested"]
    row = _wait(app.state.session_factory, job.id, ("cancelled",))
    assert row.step < 200
    pid = int(row.handle)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_stopped_server_interrupts_its_jobs_and_resume_continues(client, worker_for, app):
    admin = new_user(client, "admin@x.io")
    sessions = app.state.session_factory
    with sessions() as session:
        job = JobRepo(session).create("train", {}, title="fake", created_by=None)
    first = worker_for(FAKE_JOB_STEPS="6", FAKE_JOB_STEP_S="0.3")
    first.start()
    row = _wait(sessions, job.id, ("running",))
    while row.step < 2:
        row = _wait(sessions, job.id, ("running",))
    first.stop()
    row = _wait(sessions, job.id, ("interrupted",))
    assert "resume" in row.error and row.step >= 2
    stopped_at = row.step
    r = client.post(f"/api/admin/jobs/{job.id}/resume", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    worker_for(FAKE_JOB_STEPS="6", FAKE_JOB_STEP_S="0.05").start()
    row = _wait(sessions, job.id, ("succeeded",))
    assert row.attempts == 2 and row.result["resumed_from_step"] == stopped_at
    assert [p[0] for p in row.points] == [1, 2, 3, 4, 5, 6]


def test_a_killed_servers_jobs_are_marked_interrupted_when_a_worker_starts(client, app, settings):
    sessions = app.state.session_factory
    dead_pid = _dead_pid()
    with sessions() as session:
        repo = JobRepo(session)
        local = repo.create("train", {}, title="a", created_by=None)
        remote = repo.create("train", {}, title="b", created_by=None)
        fresh = repo.create("train", {}, title="c", created_by=None)
        assert repo.claim_next(f"{HOST}:{dead_pid}:gone").id == local.id
        assert repo.claim_next("other-host:1:x").id == remote.id
        assert repo.claim_next("other-host:2:y").id == fresh.id
        # Another host is judged by its heartbeat: `remote` was last heard long ago.
        repo.session.get(type(local), remote.id).heartbeat_at -= timedelta(minutes=5)
        repo.session.commit()
    assert owner_alive(f"{HOST}:{dead_pid}:gone") is False
    assert owner_alive("other-host:1:x") is None
    worker = JobWorker(sessions, settings, LocalRunner(launcher=LAUNCHER), poll_s=0.1)
    assert sorted(worker.recover()) == sorted([local.id, remote.id])
    with sessions() as session:
        repo = JobRepo(session)
        assert repo.get(local.id).status == "interrupted"
        assert repo.get(fresh.id).status == "running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A reaped child's pid is gone; an unreaped zombie counts as ended.
    try:
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") == -1
    except OSError:
        return False


def _dead_pid() -> int:
    import subprocess

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def api_db_url(db_url: str) -> str:
    """Claiming a job is a conditional UPDATE: run these on PostgreSQL too."""
    return db_url
