"""Jobs (admin only): training and eval runs that run outside the request (tandem.jobs).

GET   /api/admin/jobs                 the newest jobs, newest first
POST  /api/admin/jobs/train           queue a training run: method, snapshot, base, config
POST  /api/admin/jobs/eval            queue an eval: a suite on one or more versions
GET   /api/admin/jobs/{id}            one job: status, progress, loss points, result, error
GET   /api/admin/jobs/{id}/log        the tail of its log
POST  /api/admin/jobs/{id}/cancel     stop a queued or running job
POST  /api/admin/jobs/{id}/resume     run an interrupted, failed or cancelled job again

Everything a job will need is checked here, before it is queued: the method's dataset kind, the
base version, every config field (the same coercion and checks as `tandem train`), a free name
for the new version. A job that cannot run is a 4xx now, not a failure minutes later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import AdminUser, CatalogDep, SessionDep, SettingsDep
from tandem.api.schemas import Body, Id, ModelId
from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.signals import DATASET_KIND_FOR_METHOD, TrainMethod
from tandem.evals.tasks import BUILTIN_TASK_MODULES, TASKS
from tandem.jobs.worker import job_log_path
from tandem.registry.embedded import model_root
from tandem.registry.versions import CHAT, version_exists, version_kind
from tandem.store.jobs import JobRepo, JobRow
from tandem.train.config import ConfigError, resolve_config
from tandem.train.run import default_version_name
from tandem.train.training_data import resolve_training_data

router = APIRouter(tags=["jobs"])

# A version name becomes a directory under TANDEM_HOME: letters, digits, dot, dash, underscore.
VersionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")]
ConfigValue = bool | int | float | str | None
MAX_LOG_BYTES = 64_000


class TrainJobIn(Body):
    method: TrainMethod
    dataset: Id
    base: VersionName  # a directory under TANDEM_HOME/models, never a URL
    output_version: VersionName | None = None
    config: dict[Annotated[str, Field(max_length=64)], ConfigValue] = Field(
        default_factory=dict, max_length=64
    )


class EvalJobIn(Body):
    suite: Annotated[str, Field(min_length=1, max_length=64)]
    versions: list[ModelId] = Field(min_length=1, max_length=8)
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=8192)] | None = None  # None: the eval default


class JobPublic(BaseModel):
    id: str
    kind: str
    title: str
    status: str
    phase: str
    step: int
    total_steps: int
    fraction: float
    attempts: int
    cancel_requested: bool
    result: dict[str, Any]
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(JobPublic):
    spec: dict[str, Any]
    points: list[list[float]]
    resumable_from_step: int | None


class JobLog(BaseModel):
    text: str
    size: int


def _checkpoint_step(home: Path, row: JobRow) -> int | None:
    """The newest checkpoint's step of a training job's run: where Resume continues."""
    from tandem.train.run import latest_checkpoint

    version = row.spec.get("output_version")
    if row.kind != "train" or not version:
        return None
    checkpoint = latest_checkpoint(home / "runs" / str(version))
    return int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint is not None else None


def _public(row: JobRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in JobPublic.model_fields}


def _detail(home: Path, row: JobRow) -> dict[str, Any]:
    return _public(row) | {
        "spec": row.spec,
        "points": row.points or [],
        "resumable_from_step": _checkpoint_step(home, row),
    }


def _check_base(home: Path, base: str) -> None:
    kind = version_kind(model_root(home, base))
    if kind is None:
        raise NotFound(f"model version {base!r} not found")
    if kind != CHAT:
        raise InvalidInput(f"{base} is a {kind} model; training starts from a chat model")


def _check_free_name(session: Session, home: Path, version: str) -> None:
    if version_exists(session, home, version):
        raise Conflict(f"model version {version!r} already exists; name another")
    for job in JobRepo(session).active_titles("train"):
        if job.spec.get("output_version") == version:
            raise Conflict(f"job {job.id} is already training {version!r}")


@router.get("/api/admin/jobs", response_model=list[JobPublic])
def list_jobs(_: AdminUser, session: SessionDep) -> list[dict[str, Any]]:
    return [_public(row) for row in JobRepo(session).list()]


@router.post("/api/admin/jobs/train", response_model=JobDetail, status_code=201)
def queue_training(
    body: TrainJobIn, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    home = settings.home
    try:
        config = resolve_config(body.method, None, dict(body.config))
        data = resolve_training_data(home, body.dataset, DATASET_KIND_FOR_METHOD[body.method])
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    _check_base(home, body.base)
    version = body.output_version or default_version_name(body.base, body.method, data, config)
    _check_free_name(session, home, version)
    spec = {
        "method": body.method,
        "dataset": data.snapshot_id or body.dataset,
        "base": body.base,
        "output_version": version,
        # What was given, not the resolved config: a resumed attempt resolves the same way.
        "config": {k: v for k, v in body.config.items() if v is not None},
    }
    title = f"{body.method.upper()} {version} from {body.base} on {data.rows} rows"
    row = JobRepo(session).create("train", spec, title=title, created_by=admin.id)
    return _detail(home, row)


@router.post("/api/admin/jobs/eval", response_model=JobDetail, status_code=201)
def queue_eval(
    body: EvalJobIn,
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
) -> dict[str, Any]:
    suites = set(TASKS) | set(BUILTIN_TASK_MODULES)
    if body.suite not in suites:
        raise InvalidInput(f"unknown suite {body.suite!r}; known: {', '.join(sorted(suites))}")
    versions = list(dict.fromkeys(body.versions))
    for version in versions:
        if version not in catalog:
            raise NotFound(f"model version {version!r} is not served here")
    spec = {
        "suite": body.suite,
        "versions": versions,
        "limit": body.limit,
        "max_tokens": body.max_tokens,
    }
    size = f"first {body.limit} prompts" if body.limit else "all prompts"
    title = f"{body.suite} ({size}) on {', '.join(versions)}"
    row = JobRepo(session).create("eval", spec, title=title, created_by=admin.id)
    return _detail(settings.home, row)


@router.get("/api/admin/jobs/{job_id}", response_model=JobDetail)
def get_job(job_id: Id, _: AdminUser, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    return _detail(settings.home, JobRepo(session).get(job_id))


@router.get("/api/admin/jobs/{job_id}/log", response_model=JobLog)
def get_job_log(
    job_id: Id,
    _: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[int, Query(ge=1, le=MAX_LOG_BYTES)] = 16_000,
) -> dict[str, Any]:
    row = JobRepo(session).get(job_id)
    path = job_log_path(settings.home, row.id)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - tail))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        size, text = 0, ""
    return {"text": text, "size": size}


@router.post("/api/admin/jobs/{job_id}/cancel", response_model=JobDetail)
def cancel_job(
    job_id: Id, _: AdminUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return _detail(settings.home, JobRepo(session).request_cancel(job_id))


@router.post("/api/admin/jobs/{job_id}/resume", response_model=JobDetail)
def resume_job(
    job_id: Id, _: AdminUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = JobRepo(session)
    row = repo.get(job_id)
    if row.kind == "train":
        version = str(row.spec.get("output_version"))
        if version_exists(session, settings.home, version):
            raise Conflict(f"{version!r} was registered: this job already finished its work")
    return _detail(settings.home, repo.resume(job_id))
