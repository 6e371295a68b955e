"""Rater tasks, the raters' side (docs/raters.md): a rater's own queue and items. Raters only
(403 for everyone else, admins included until made raters); another rater's assignment
answers 404, like a missing one. A rater never sees another rater's answers, which model wrote
an answer, or whether an item is gold.

GET   /api/rater/queue                                hands out work, lists the rater's items
GET   /api/rater/assignments/{assignment_id}          one item with the task's guideline
POST  /api/rater/assignments/{assignment_id}/generate demonstration, red team: the model's next
                                                      turn
POST  /api/rater/assignments/{assignment_id}/submit   ranking {"ranks"}, demonstration
                                                      {"messages"}, spec labels {"labels",
                                                      "rationales"}, red team {"messages",
                                                      "finding_turn", "explanation"}: a finding
                                                      becomes a regression case

Rankings are shown in an order of the assignment's own (a shuffle seeded by its id), and the
ranks a rater sends are in that order; they are stored in the answers' own order.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from tandem.api.deps import CatalogDep, RaterUser, SessionDep, SettingsDep
from tandem.api.routes.rater_tasks import MAX_ANSWERS, MAX_BEHAVIORS, ChatTurn, Rank
from tandem.api.schemas import Body, Id
from tandem.core.errors import Conflict, InvalidInput
from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.core.signals import SpecLabel
from tandem.evals.behavior_spec import load_spec
from tandem.evals.regressions import add_case, finding_case
from tandem.store.models import utcnow
from tandem.store.rater_tasks import RaterTaskRepo, Work

router = APIRouter(tags=["raters"])
Rationale = Annotated[str, Field(max_length=2000)]


class Turns(Body):
    messages: list[ChatTurn] = Field(min_length=1, max_length=100)


class Submission(Body):
    """Ranking: `ranks` in the order shown (1 = best, equal ranks tie). Demonstration: the
    whole conversation, ending with the (possibly rewritten) assistant turn."""

    ranks: list[Rank] | None = Field(None, min_length=2, max_length=MAX_ANSWERS)
    messages: list[ChatTurn] | None = Field(None, min_length=2, max_length=100)
    labels: list[SpecLabel] | None = Field(None, min_length=1, max_length=MAX_BEHAVIORS)
    rationales: list[Rationale] | None = Field(None, max_length=MAX_BEHAVIORS)
    finding_turn: int | None = Field(
        None, ge=0, le=99, description="red team: the index of the answer that broke the rule"
    )
    explanation: Rationale = Field("", description="red team: how that answer breaks it")


def display_order(work: Work) -> list[int]:
    """Answer indices in the order this rater sees them (seeded by the assignment)."""
    n = len(work.item.answers)
    return random.Random(work.assignment.id).sample(range(n), n)


def _view(work: Work) -> dict[str, Any]:
    a, item, task = work.assignment, work.item, work.task
    view: dict[str, Any] = {
        "id": a.id,
        "status": a.status,
        "task": {
            "id": task.id,
            "title": task.title,
            "kind": task.kind,
            "guideline": task.guideline,
        },
        "prompt": item.prompt,
        "answers": [],
        "behaviors": [],
        "rule": item.rule,
        "result": None,
    }
    if task.kind == "spec_label":
        described = {b.id: b.description for b in load_spec()}
        view["answers"] = [{"key": 0, "text": item.answers[0]["text"]}]
        view["behaviors"] = [{"id": b, "description": described.get(b, "")} for b in task.behaviors]
        view["result"] = a.result
    elif task.kind == "ranking":
        order = display_order(work)
        view["answers"] = [{"key": k, "text": item.answers[i]["text"]} for k, i in enumerate(order)]
        if a.result:
            view["result"] = {"ranks": [a.result["ranks"][i] for i in order]}
    elif a.result:
        view["result"] = a.result
    return view


def _continues_prompt(work: Work, messages: list[dict[str, str]]) -> None:
    prompt = work.item.prompt
    if messages[: len(prompt)] != prompt:
        raise InvalidInput("the conversation must start with the item's prompt, unchanged")
    # After a prompt that ends with the user's turn the model speaks first; else the user.
    roles = (
        ("assistant", "user") if prompt and prompt[-1]["role"] == "user" else ("user", "assistant")
    )
    for n, m in enumerate(messages[len(prompt) :]):
        if m["role"] != roles[n % 2]:
            raise InvalidInput(f"after the prompt, turns alternate: {roles[0]}, {roles[1]}, …")


def _spec_labels(work: Work, body: Submission) -> dict[str, Any]:
    n = len(work.task.behaviors)
    if body.labels is None or body.ranks is not None or body.messages is not None:
        raise InvalidInput("spec labels send labels (and rationales)")
    rationales = [r.strip() for r in body.rationales or []]
    if len(body.labels) != n or len(rationales) not in (0, n):
        raise InvalidInput(f"labels and rationales: one per behavior ({n})")
    rationales = rationales or [""] * n
    if any(label == "fail" and not why for label, why in zip(body.labels, rationales, strict=True)):
        raise InvalidInput("say why for every behavior you fail (a rationale)")
    return {"labels": list(body.labels), "rationales": rationales}


@router.get("/api/rater/queue")
def queue(rater: RaterUser, session: SessionDep) -> dict[str, Any]:
    work = RaterTaskRepo(session).claim(rater.id)
    items = [
        {
            "id": w.assignment.id,
            "status": w.assignment.status,
            "task_id": w.task.id,
            "task_title": w.task.title,
            "kind": w.task.kind,
        }
        for w in work
    ]
    pending = sum(1 for i in items if i["status"] == "pending")
    return {"assignments": items, "pending": pending, "submitted": len(items) - pending}


@router.get("/api/rater/assignments/{assignment_id}")
def get_assignment(assignment_id: Id, rater: RaterUser, session: SessionDep) -> dict[str, Any]:
    return _view(RaterTaskRepo(session).open(rater.id, assignment_id))


@router.post("/api/rater/assignments/{assignment_id}/generate")
async def generate(
    assignment_id: Id, body: Turns, rater: RaterUser, session: SessionDep, catalog: CatalogDep
) -> dict[str, Any]:
    """The model's next turn in a demonstration; every generated turn is kept on the
    assignment (model, seed, text), so the dataset can tell model turns from rewritten ones."""
    repo = RaterTaskRepo(session)
    work = repo.work(rater.id, assignment_id)
    if work.task.kind not in ("demonstration", "red_team"):
        raise InvalidInput("only demonstrations and red-team tasks generate turns")
    if work.assignment.status == "submitted":
        raise Conflict("this item is already submitted")
    messages = [{"role": t.role, "content": t.content} for t in body.messages]
    _continues_prompt(work, messages)
    if messages[-1]["role"] != "user":
        raise InvalidInput("the model answers a user's turn: end with one")
    model = work.task.model or catalog.default_model or ""
    seed = len(work.assignment.generations)
    params = SamplingParams(seed=seed, max_tokens=512, stop_loops=True)
    prompt = [Message.text(m["role"], m["content"]) for m in messages]  # type: ignore[arg-type]
    completion = await catalog.get(model).complete(prompt, params)
    record = {
        "model": model,
        "seed": seed,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "turn": len(messages),
        "latency_s": round(completion.latency_s, 3),
        "at": utcnow().isoformat(),
    }
    repo.add_generation(rater.id, assignment_id, record)
    return {"text": completion.text, "finish_reason": completion.finish_reason, "model": model}


def _ranks(work: Work, body: Submission) -> dict[str, Any]:
    """The ranks sent in the order shown, stored in the answers' own order."""
    n = len(work.item.answers)
    if body.ranks is None or body.messages is not None or body.labels is not None:
        raise InvalidInput("a ranking sends ranks (and nothing else)")
    if len(body.ranks) != n or max(body.ranks) > n:
        raise InvalidInput(f"ranks: one per answer, each 1–{n}")
    ranks = [0] * n
    for shown, index in enumerate(display_order(work)):
        ranks[index] = body.ranks[shown]
    return {"ranks": ranks}


def _demonstration(work: Work, body: Submission) -> dict[str, Any]:
    """The conversation, and which assistant turns are not the model's own words."""
    if body.messages is None or body.ranks is not None or body.labels is not None:
        raise InvalidInput("a demonstration sends the conversation as messages")
    messages = [{"role": t.role, "content": t.content} for t in body.messages]
    _continues_prompt(work, messages)
    prompt = work.item.prompt
    if messages[-1]["role"] != "assistant" or len(messages) <= len(prompt):
        raise InvalidInput("a demonstration ends with the assistant's turn")
    if any(not m["content"].strip() for m in messages):
        raise InvalidInput("every turn needs text")
    generated = {g["text"] for g in work.assignment.generations}
    rewritten = [
        n
        for n, m in enumerate(messages)
        if n >= len(prompt) and m["role"] == "assistant" and m["content"] not in generated
    ]
    return {"messages": messages, "rewritten": rewritten}


def _red_team(work: Work, body: Submission) -> dict[str, Any]:
    """A finding (the conversation up to the model's answer that broke the rule, and why), or
    none: the rater found no break."""
    if body.ranks is not None or body.labels is not None:
        raise InvalidInput("a red-team result sends messages (and a finding)")
    messages = [{"role": t.role, "content": t.content} for t in body.messages or []]
    _continues_prompt(work, messages)
    if body.finding_turn is None:
        return {"messages": messages, "finding": None}
    turn = body.finding_turn
    generated = {g["text"] for g in work.assignment.generations}
    if turn != len(messages) - 1 or messages[turn]["role"] != "assistant":
        raise InvalidInput("the finding is the conversation's last turn, the model's answer")
    if messages[turn]["content"] not in generated:
        raise InvalidInput("the finding must be the model's own answer, as it wrote it")
    if not body.explanation.strip():
        raise InvalidInput("say how the answer breaks the rule (explanation)")
    return {"messages": messages, "finding": {"turn": turn, "explanation": body.explanation}}


@router.post("/api/rater/assignments/{assignment_id}/submit")
def submit(
    assignment_id: Id,
    body: Submission,
    rater: RaterUser,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Submit once. A red-team finding is added to the newest regression suite at once."""
    repo = RaterTaskRepo(session)
    work = repo.work(rater.id, assignment_id)
    if work.assignment.status == "submitted":
        raise Conflict("this item is already submitted")
    readers = {"ranking": _ranks, "spec_label": _spec_labels, "red_team": _red_team}
    work = repo.submit(
        rater.id, assignment_id, readers.get(work.task.kind, _demonstration)(work, body)
    )
    view = _view(work)
    if work.task.kind == "red_team" and (work.assignment.result or {}).get("finding"):
        case = finding_case(work)
        add_case(settings.home, case)
        view["regression_case"] = case["id"]
    return view
