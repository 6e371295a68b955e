"""Class 6, fuzzing: Schemathesis generates requests from the app's own OpenAPI document and
every answer must be a documented status, with a documented content type, matching its
documented schema, and never a 5xx.

The run goes over HTTP to a live server and is authenticated: a user who owns a conversation,
messages, feedback, a comparison, a profile, a memory and a file (so id-bearing routes hit real
rows as well as random ids), then an admin for the admin routes. Cases are valid and invalid
requests; generation is deterministic (`derandomize`), bounded per operation, and runs on the
FakeEngine catalog, streaming included; its engines seed an RNG from the request as the
embedded engine does, so a seed the real engine cannot take fails here too. `/v1/chat/
completions` also gets valid bodies built around the generated sampling parameters (its
message rules are not expressible in JSON Schema, so plain positive cases were all 400s), and
every event stream must end with a finish or an error. Figures and findings: docs/security.md,
"Fuzzing".

    .venv/bin/python -m pytest -q -m security_slow tests/security/test_fuzz_openapi.py
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck
from hypothesis import strategies as st
from pydantic import BaseModel
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import new_user
from strict_fake_engines import SeededFakeEngine
from tandem.web.app import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Routes only an admin passes; the user run sees their 403, the admin run fuzzes them.
ADMIN_ROUTES = re.compile(r"^/api/(users|admin|datasets|evals)(/|$)")
# Run last, so they do not take the seeded rows (or the caller's own account) away early.
DESTRUCTIVE = re.compile(r"^DELETE |^POST /api/auth/logout")


# Cases per operation and identity: about 3,600 in all, about a minute on 2 cores.
EXAMPLES = 50
# Events read from one stream; a longer one is cut short by the fuzzer and not judged.
MAX_STREAM_EVENTS = 2_000


@dataclass
class FuzzRun:
    operations: int = 0
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    successes: dict[str, int] = field(default_factory=dict)  # 2xx answers per operation

    def summary(self) -> str:
        return (
            f"{self.operations} operations, {self.cases} cases, {len(self.failures)} failures; "
            f"statuses {dict(sorted(self.statuses.items()))}; "
            f"/v1/chat/completions 2xx: {self.successes.get('POST /v1/chat/completions', 0)}"
        )


@dataclass
class Seeded:
    user: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, str]  # path parameter name -> an id the user owns


def seed(client: httpx.Client) -> Seeded:
    """One admin (the first sign-up) and one user with a row behind every id-bearing route."""
    admin = new_user(client, "fuzz-admin@example.com")
    user = new_user(client, "fuzz-user@example.com")

    def ok(r: Any) -> Any:
        assert r.status_code < 300, r.text
        return r.json()

    conv = ok(client.post("/api/conversations", json={"title": "fuzz"}, headers=user))
    turn = ok(
        client.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=user
        )
    )
    answer = turn["assistant_message"] if "assistant_message" in turn else turn["messages"][-1]
    message_id = answer["id"]
    feedback = ok(
        client.post(f"/api/messages/{message_id}/feedback", json={"rating": "up"}, headers=user)
    )
    comparison = ok(
        client.post(
            f"/api/conversations/{conv['id']}/comparisons",
            json={"content": "compare", "model_a": "fake-model", "model_b": "other-model"},
            headers=user,
        )
    )
    profile = ok(client.post("/api/profiles", json={"name": "fuzz"}, headers=user))
    memory = ok(client.post("/api/memories", json={"text": "likes tea"}, headers=user))
    improvement = ok(
        client.post(f"/api/messages/{message_id}/improve", json={"content": "better"}, headers=user)
    )
    file = ok(
        client.post(
            "/api/files",
            files={"file": ("notes.txt", b"tea is a drink\n" * 20, "text/plain")},
            headers=user,
        )
    )
    snapshot = ok(client.post("/api/datasets", json={"kind": "sft"}, headers=admin))
    me = ok(client.get("/api/auth/me", headers=user))
    # The user is also a rater with a demonstration to do (the rater routes' real rows).
    ok(client.patch(f"/api/users/{me['id']}", json={"is_rater": True}, headers=admin))
    task = {"title": "fuzz", "kind": "demonstration", "items": [{"prompt": "hi"}]}
    rater_task = ok(client.post("/api/admin/tasks", json=task, headers=admin))
    (assignment,) = ok(client.get("/api/rater/queue", headers=user))["assignments"]
    ids = {
        "conversation_id": conv["id"],
        "message_id": message_id,
        "generation_id": answer.get("generation_id") or "",
        "feedback_id": feedback.get("id", ""),
        "comparison_id": comparison.get("id", ""),
        "profile_id": profile["id"],
        "memory_id": memory["id"],
        "improvement_id": improvement.get("id", ""),
        "file_id": file["id"],
        "snapshot_id": snapshot["id"],
        "user_id": me["id"],
        "ordinal": 0,
        "task_id": rater_task["id"],
        "item_id": rater_task["items"][0]["id"],
        "assignment_id": assignment["id"],
    }
    return Seeded(user, admin, {k: v for k, v in ids.items() if v != ""})


def _label(op: Any) -> str:
    return f"{op.method.upper()} {op.path}"


def _strategy(op: Any, ids: dict[str, Any]) -> st.SearchStrategy:
    """Valid and invalid requests (negative cases must be a 4xx, never a 5xx), with random ids
    and just as often the seeded ones, so handlers past the 404 run too."""
    names = {p.name for p in op.path_parameters}
    known = {k: v for k, v in ids.items() if k in names}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    options = [op.as_strategy(mode) for mode in modes]
    if known:
        options += [op.as_strategy(mode, path_parameters=known) for mode in modes]
    # A random model name is a 404 before any generation: half the valid bodies name real ones.
    options.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters=known).map(_real_models))
    return st.one_of(options)


REAL_MODELS = {"model": "fake-model", "model_a": "fake-model", "model_b": "other-model"}


def _real_models(case: Any) -> Any:
    if isinstance(case.body, dict):
        for key, model in REAL_MODELS.items():
            if key in case.body:
                case.body[key] = model
        if case.body.get("comparison_models"):
            case.body["comparison_models"] = ["fake-model", "other-model"]
    return case


CHAT_ROLES = ("system", "developer", "user", "assistant")


def _valid_chat_completion(case: Any) -> Any:
    """A generated /v1/chat/completions body made acceptable past validation: plain text
    messages (the tool-message rules live in validators JSON Schema cannot express), a real
    model, no tools (the fake engines have none), a small max_tokens; every other generated
    parameter is kept as it came."""
    if not isinstance(case.body, dict):
        return case
    body = case.body
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    repaired = []
    for i, message in enumerate(messages[:8] or [{}]):
        message = message if isinstance(message, dict) else {}
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        role = message.get("role") if message.get("role") in CHAT_ROLES else "user"
        repaired.append({"role": role, "content": content if isinstance(content, str) else f"m{i}"})
    repaired.append({"role": "user", "content": repaired[-1]["content"]})
    body["messages"] = repaired
    body["model"] = REAL_MODELS["model"]
    for key in ("tools", "tool_choice"):
        body.pop(key, None)
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body:
            body[key] = min(body[key], 8) if isinstance(body[key], int) else 8
    body.setdefault("max_tokens", 8)
    return case


# Operations whose body rules JSON Schema cannot express: their positive cases made valid, run
# on top of the mixed ones, so what they carry (seed, n, stop, stream, ...) reaches the engine
# instead of stopping at a 400.
VALID_BODIES = {"POST /v1/chat/completions": _valid_chat_completion}
# How the native streams end when nothing failed: a turn (tandem.api.turns), a comparison.
NATIVE_FINAL_EVENTS = frozenset({"done", "comparison"})


def _stream_problem(response: Any) -> str | None:
    """Why an event stream ended badly: each choice (/v1) must get a finish_reason, or the
    stream must end with an error event (not a server error); a native stream ends with its
    final event or `error`."""
    content_type = response.headers.get("content-type") or [""]  # Schemathesis: a list
    if not content_type[0].startswith("text/event-stream") or response.stream_cut_short:
        return None
    events = [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")
    ]
    payloads = [json.loads(e) for e in events if e != "[DONE]"]
    if not payloads:
        return "an empty stream"
    last = payloads[-1]
    if "error" in last:
        # A stream's own 500: what not_a_server_error is for a plain answer.
        if last["error"].get("code") == "internal_error":
            return f"the stream ended with a server error: {last['error']}"
        return None
    if last.get("type") in NATIVE_FINAL_EVENTS:
        return None
    if "type" in last:
        return f"a native stream ended with {last['type']!r}, not its final event or an error"
    started = {c["index"] for p in payloads for c in p.get("choices", [])}
    finished = {
        c["index"] for p in payloads for c in p.get("choices", []) if c.get("finish_reason")
    }
    if started - finished:
        return f"choices {sorted(started - finished)} ended with no finish_reason and no error"
    return None


def fuzz(
    base_url: str,
    seeded: Seeded,
    examples: int,
    only: Callable[[str], bool] = lambda _: True,
) -> FuzzRun:
    """Every selected operation as the user, then the admin routes as the admin, over HTTP
    (a real server, so an unhandled exception is the 500 a client would get)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # Read event streams to their end (Schemathesis stops at 20 events by default), so the
    # stream check below sees how each one ended.
    schema.config.max_stream_events = MAX_STREAM_EVENTS
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if only(_label(op))]
    ops.sort(key=lambda op: bool(DESTRUCTIVE.match(_label(op))))
    run = FuzzRun()
    plan = [(op, seeded.user, _strategy(op, seeded.ids)) for op in ops]
    plan += [
        (op, seeded.user, op.as_strategy(GenerationMode.POSITIVE).map(VALID_BODIES[_label(op)]))
        for op in ops
        if _label(op) in VALID_BODIES
    ]
    plan += [
        (op, seeded.admin, _strategy(op, seeded.ids)) for op in ops if ADMIN_ROUTES.match(op.path)
    ]
    with requests.Session() as http:
        for op, headers, strategy in plan:
            run.operations += 1
            _fuzz_operation(op, strategy, http, base_url, headers, examples, run)
    return run


def _fuzz_operation(
    op: Any,
    strategy: st.SearchStrategy,
    http: requests.Session,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    run: FuzzRun,
) -> None:
    seen: set[str] = set()

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,  # the same cases every run
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        run.cases += 1
        response = case.call(base_url=base_url, session=http, headers=headers, timeout=60)
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        if response.status_code < 300:
            run.successes[_label(op)] = run.successes.get(_label(op), 0) + 1
        if problem := _stream_problem(response):
            _record(run, seen, op, case, response, AssertionError(f"UnfinishedStream: {problem}"))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:  # every failed check of this case
            for exc in group.exceptions:
                _record(run, seen, op, case, response, exc)
        except AssertionError as exc:
            _record(run, seen, op, case, response, exc)

    one()


def _record(
    run: FuzzRun, seen: set[str], op: Any, case: Any, response: Any, exc: BaseException
) -> None:
    """One line per distinct failure of an operation, with the curl that reproduces it."""
    first = [line for line in str(exc).strip().splitlines() if line.strip()]
    key = f"{_label(op)}: {type(exc).__name__} {response.status_code}"
    if key not in seen:
        seen.add(key)
        body = response.text[:300].replace("\n", " ")
        run.failures.append(
            f"{key}\n    {case.as_curl_command()}\n    -> {response.status_code} {body}"
            f"\n    {' | '.join(first[:6])}"
        )


def _seeding(catalog: Any) -> Any:
    """The fake catalog's models, seeding an RNG from each request like the embedded engine."""
    from tandem.engines import ModelCatalog

    seeding = ModelCatalog(default_model=catalog.get().model_id)
    for info in catalog.list():
        engine = catalog.get(info.id)
        seeding.add(SeededFakeEngine(engine.model_id, script=engine.script))
    return seeding


@pytest.fixture
def served(
    settings: Any, fake_catalog: Any, live_server: Callable[..., str]
) -> Iterator[tuple[str, Seeded]]:
    """The app on a real socket, seeded through its own API."""
    # Rate limits off: a fuzzer is one very busy user, and a 429 would stand in for the
    # handler it was meant to reach (the limits have their own tests).
    unlimited = dataclasses.replace(
        settings,
        rate_generation=None,
        rate_generation_per_key=None,
        rate_login_per_account=None,
        rate_login_per_ip=None,
    )
    base = live_server(create_app(unlimited, _seeding(fake_catalog)))
    with httpx.Client(base_url=base, timeout=60) as client:
        yield base, seed(client)


@pytest.mark.security_slow
def test_the_whole_api_survives_fuzzing(served: tuple[str, Seeded]) -> None:
    run = fuzz(*served, examples=EXAMPLES)
    print(run.summary())
    assert run.operations >= 69, run.summary()
    assert not run.failures, run.summary() + "\n" + "\n".join(run.failures)
    # The valid /v1 bodies reached the engine, their sampling parameters included.
    assert run.successes.get("POST /v1/chat/completions", 0) >= EXAMPLES // 2, run.successes


SMOKE = re.compile(
    r"^(POST /api/conversations$|GET /api/conversations/\{conversation_id\}$"
    r"|POST /api/conversations/\{conversation_id\}/messages$"
    r"|POST /api/messages/\{message_id\}/feedback$|POST /api/messages/\{message_id\}/regenerate$"
    r"|GET /api/files/\{file_id\}$|POST /v1/chat/completions$|PATCH /api/users/\{user_id\}$)"
)


def test_fuzz_smoke_a_few_cases_on_a_few_routes(served: tuple[str, Seeded]) -> None:
    """The fast version for `make test`: 3 cases on a handful of routes, streaming included."""
    run = fuzz(*served, examples=3, only=lambda s: bool(SMOKE.match(s)))
    assert run.operations >= 7, run.summary()
    assert run.successes.get("POST /v1/chat/completions", 0) >= 1, run.successes
    assert not run.failures, run.summary() + "\n" + "\n".join(run.failures)


class _Count(BaseModel):
    n: int


def _buggy_app() -> FastAPI:
    buggy = FastAPI()

    @buggy.get("/count/{x}", responses={200: {"model": _Count}})
    def count(x: int):
        if x % 2:
            raise RuntimeError("odd")
        return JSONResponse({"n": "not a number"})

    return buggy


def test_the_fuzzer_reports_a_server_error_and_a_schema_violation(
    live_server: Callable[..., str],
) -> None:
    """The harness itself: a 500 and an answer that breaks its documented schema are found."""
    run = fuzz(live_server(_buggy_app()), Seeded({}, {}, {}), examples=20)
    found = "\n".join(run.failures)
    assert "ServerError" in found and "JsonSchemaError" in found, found
