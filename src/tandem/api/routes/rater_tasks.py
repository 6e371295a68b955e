"""Rater tasks, the admin's side (docs/raters.md): create a task with its items, see progress,
agreement, gold accuracy and speed, adjudicate disagreements.

GET   /api/admin/tasks                              tasks, newest first, each with its report
POST  /api/admin/tasks                              create: title, guideline, kind, items
GET   /api/admin/tasks/{task_id}                    the task, its items (gold included), report
POST  /api/admin/tasks/{task_id}/items/{item_id}/resolve   adjudicate: {"ranks": [...]}

A ranking item without answers gets them from the listed model versions when the task is
created (in the request: tasks are small), and so does a spec-label item without its response
(the first model). The raters' side is `tandem.api.routes.rater`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import AdminUser, CatalogDep, SessionDep
from tandem.api.schemas import Body, Id, ModelId
from tandem.core.errors import InvalidInput
from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.core.signals import DATASET_KIND_FOR_TASK, RaterTaskKind, SpecLabel
from tandem.engines import ModelCatalog
from tandem.evals.behavior_spec import load_spec
from tandem.evals.rater_report import task_report
from tandem.store.rater_tasks import ItemSpec, RaterItem, RaterTask, RaterTaskRepo, TaskSpec

router = APIRouter(tags=["raters"])

MAX_ANSWERS = 8
MAX_BEHAVIORS = 50
BehaviorId = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Rank = Annotated[int, Field(ge=1, le=MAX_ANSWERS)]


class ChatTurn(Body):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class ItemIn(Body):
    """One item. `prompt`: a question, or the messages before the answer (ending with the
    user's). Ranking: `answers` (2–8), or none to have `models` write them; `gold` (the known
    ranks, exactly one 1) makes it a gold item."""

    prompt: Text | Annotated[list[ChatTurn], Field(min_length=1, max_length=50)] | None = Field(
        None, description="a question or a list of messages (red team: none)"
    )
    rule: str | None = Field(
        None, min_length=1, max_length=2000, description="red team: the rule to make it break"
    )
    answers: list[Text] = Field(default_factory=list, max_length=MAX_ANSWERS)
    gold: list[Rank] | None = Field(None, max_length=MAX_ANSWERS)
    gold_labels: list[SpecLabel] | None = Field(
        None, max_length=MAX_BEHAVIORS, description="spec labels: the known label per behavior"
    )


class TaskCreate(Body):
    title: str = Field(min_length=1, max_length=200)
    guideline: str = Field("", max_length=20_000, description="markdown, shown with each item")
    kind: RaterTaskKind
    raters_per_item: int = Field(2, ge=1, le=20)
    models: list[ModelId] = Field(
        default_factory=list,
        max_length=4,
        description="ranking, spec labels: the versions that answer items given without "
        "answers; demonstration, red team: the first is the version raters chat with (default: "
        "the site's)",
    )
    samples_per_model: int = Field(1, ge=1, le=4, description="answers each model writes")
    behaviors: list[BehaviorId] = Field(
        default_factory=list,
        max_length=MAX_BEHAVIORS,
        description="spec labels: the behavior spec's behaviors to judge (none: all of them)",
    )
    items: list[ItemIn] = Field(min_length=1, max_length=500)


class Resolution(Body):
    """Ranking: `ranks`; spec labels: `labels` (one per behavior)."""

    ranks: list[Rank] | None = Field(None, min_length=2, max_length=MAX_ANSWERS)
    labels: list[SpecLabel] | None = Field(None, min_length=1, max_length=MAX_BEHAVIORS)
    note: str = Field("", max_length=2000)


class TaskPublic(BaseModel):
    id: str
    title: str
    guideline: str
    kind: str
    raters_per_item: int
    model: str | None
    behaviors: list[str]
    dataset_kind: str
    created_at: Any
    report: dict[str, Any]


class TaskDetail(TaskPublic):
    items: list[dict[str, Any]]


def prompt_messages(prompt: str | list[ChatTurn]) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": t.role, "content": t.content} for t in prompt]


def _check_gold(where: str, gold: list[int], n_answers: int) -> None:
    if len(gold) != n_answers:
        raise InvalidInput(f"{where}: gold needs one rank per answer ({n_answers})")
    if max(gold) > n_answers:
        raise InvalidInput(f"{where}: gold ranks go from 1 to {n_answers}")
    if sorted(gold).count(1) != 1:
        raise InvalidInput(f"{where}: gold needs exactly one best answer (rank 1)")


async def _answers(
    catalog: ModelCatalog, body: TaskCreate, messages: list[dict[str, str]], number: int
) -> list[dict[str, Any]]:
    """The models' answers to one item: `samples_per_model` each, seeded by item and sample."""
    prompt = [Message.text(m["role"], m["content"]) for m in messages]  # type: ignore[arg-type]
    out = []
    for model in body.models:
        engine = catalog.get(model)
        for sample in range(body.samples_per_model):
            params = SamplingParams(seed=number * 10 + sample, max_tokens=512, stop_loops=True)
            completion = await engine.complete(prompt, params)
            out.append({"text": completion.text, "model": model, "seed": params.seed})
    return out


def task_behaviors(body: TaskCreate) -> list[str]:
    """Spec labels: the behaviors judged (checked against the spec); other kinds: none."""
    if body.kind != "spec_label":
        if body.behaviors:
            raise InvalidInput("behaviors belong to spec_label tasks")
        return []
    known = [b.id for b in load_spec()]
    unknown = sorted(set(body.behaviors) - set(known))
    if unknown:
        raise InvalidInput(f"behaviors: unknown {unknown}; the spec has {known}")
    return list(dict.fromkeys(body.behaviors)) or known


async def _spec_item(
    catalog: ModelCatalog,
    body: TaskCreate,
    item: ItemIn,
    messages: list[dict[str, str]],
    where: str,
    number: int,
    n: int,
) -> ItemSpec:
    if item.gold is not None:
        raise InvalidInput(f"{where}: spec labels take gold_labels, not gold ranks")
    if item.answers:
        if len(item.answers) != 1:
            raise InvalidInput(f"{where}: a spec label judges one response (answers: [it])")
        answers: list[dict[str, Any]] = [{"text": item.answers[0], "model": None}]
    elif item.gold_labels is not None:
        raise InvalidInput(f"{where}: a gold item needs the response its labels are about")
    elif not body.models:
        raise InvalidInput(f"{where}: give the response, or models to write it")
    else:
        first = body.model_copy(update={"models": body.models[:1], "samples_per_model": 1})
        answers = await _answers(catalog, first, messages, number)
    if item.gold_labels is not None and len(item.gold_labels) != n:
        raise InvalidInput(f"{where}: gold_labels needs one label per behavior ({n})")
    gold = list(item.gold_labels) if item.gold_labels is not None else None
    return ItemSpec(messages, answers, gold is not None, gold)


async def _items(catalog: ModelCatalog, body: TaskCreate, behaviors: list[str]) -> list[ItemSpec]:
    for model in body.models:
        if model not in catalog:
            raise InvalidInput(f"models: unknown model {model!r}")
    items = []
    for number, item in enumerate(body.items, 1):
        where = f"item {number}"
        if body.kind == "red_team":
            if item.prompt is not None or item.answers or item.gold or item.gold_labels:
                raise InvalidInput(f"{where}: a red-team item is a rule (and nothing else)")
            if not item.rule or not item.rule.strip():
                raise InvalidInput(f"{where}: a red-team item needs the rule to break")
            items.append(ItemSpec([], [], rule=item.rule.strip()))
            continue
        if item.rule is not None:
            raise InvalidInput(f"{where}: rules belong to red_team items")
        if item.prompt is None:
            raise InvalidInput(f"{where}: the item needs its prompt")
        messages = prompt_messages(item.prompt)
        if not messages or messages[-1]["role"] != "user":
            raise InvalidInput(f"{where}: the prompt must end with the user's message")
        if body.kind == "spec_label":
            n = len(behaviors)
            items.append(await _spec_item(catalog, body, item, messages, where, number, n))
            continue
        if item.gold_labels is not None:
            raise InvalidInput(f"{where}: gold_labels belong to spec_label tasks")
        if body.kind == "demonstration":
            if item.answers or item.gold:
                raise InvalidInput(f"{where}: demonstration items have a prompt only")
            items.append(ItemSpec(messages, []))
            continue
        if item.answers:
            answers: list[dict[str, Any]] = [{"text": t, "model": None} for t in item.answers]
        elif item.gold is not None:
            raise InvalidInput(f"{where}: a gold item needs the answers its ranks are about")
        elif not body.models:
            raise InvalidInput(f"{where}: give answers, or models to write them")
        else:
            answers = await _answers(catalog, body, messages, number)
        if len(answers) < 2:
            raise InvalidInput(f"{where}: a ranking needs at least 2 answers")
        if item.gold is not None:
            _check_gold(where, item.gold, len(answers))
        items.append(ItemSpec(messages, answers, item.gold is not None, item.gold))
    return items


def _public(session: Session, task: RaterTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "guideline": task.guideline,
        "kind": task.kind,
        "raters_per_item": task.raters_per_item,
        "model": task.model,
        "behaviors": task.behaviors,
        "dataset_kind": DATASET_KIND_FOR_TASK.get(task.kind, ""),  # type: ignore[call-overload]
        "created_at": task.created_at,
        "report": task_report(session, task.id),
    }


def _item(item: RaterItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "position": item.position,
        "prompt": item.prompt,
        "answers": item.answers,
        "is_gold": item.is_gold,
        "gold": item.gold,
        "resolution": item.resolution,
        "rule": item.rule,
    }


@router.get("/api/admin/tasks")
def list_tasks(_: AdminUser, session: SessionDep) -> list[TaskPublic]:
    return [TaskPublic(**_public(session, t)) for t in RaterTaskRepo(session).list()]


@router.post("/api/admin/tasks", status_code=201)
async def create_task(
    body: TaskCreate, admin: AdminUser, session: SessionDep, catalog: CatalogDep
) -> TaskDetail:
    behaviors = task_behaviors(body)
    items = await _items(catalog, body, behaviors)
    model = None
    if body.kind in ("demonstration", "red_team"):
        model = body.models[0] if body.models else catalog.default_model
    spec = TaskSpec(
        body.title, body.guideline, body.kind, body.raters_per_item, model, tuple(behaviors)
    )
    repo = RaterTaskRepo(session)
    task = repo.create_task(admin.id, spec, items)
    return TaskDetail(**_public(session, task), items=[_item(i) for i in repo.items(task.id)])


@router.get("/api/admin/tasks/{task_id}")
def get_task(task_id: Id, _: AdminUser, session: SessionDep) -> TaskDetail:
    repo = RaterTaskRepo(session)
    task = repo.get(task_id)
    return TaskDetail(**_public(session, task), items=[_item(i) for i in repo.items(task.id)])


@router.post("/api/admin/tasks/{task_id}/items/{item_id}/resolve")
def resolve_item(
    task_id: Id, item_id: Id, body: Resolution, admin: AdminUser, session: SessionDep
) -> dict[str, Any]:
    """The admin's answer for an item raters disagree on (a ranking's order, a spec label's
    labels); a dataset uses it instead of the raters' consensus. Raters' own submissions stay
    as they were."""
    repo = RaterTaskRepo(session)
    task = repo.get(task_id)
    item = repo.get_item(task_id, item_id)
    if task.kind == "ranking":
        n = len(item.answers)
        if body.ranks is None or len(body.ranks) != n or max(body.ranks) > n:
            raise InvalidInput(f"ranks: one per answer ({n}), each 1–{n}")
        resolution: dict[str, Any] = {"ranks": body.ranks, "note": body.note}
    elif task.kind == "spec_label":
        if body.labels is None or len(body.labels) != len(task.behaviors):
            raise InvalidInput(f"labels: one per behavior ({len(task.behaviors)})")
        resolution = {"labels": body.labels, "note": body.note}
    else:
        raise InvalidInput("only ranking and spec-label items are adjudicated")
    return _item(repo.resolve(admin.id, task_id, item_id, resolution))
