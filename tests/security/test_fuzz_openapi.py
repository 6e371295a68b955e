"""Class 6, fuzzing: Schemathesis generates requests from the app's own OpenAPI document and
every answer must be a documented status, with a documented content type, matching its
documented schema, and never a 5xx.

The run goes over HTTP to a live server and is authenticated: a user who owns a conversation,
messages, feedback, a comparison, a profile, a memory and a file (so id-bearing routes hit real
rows as well as random ids), then an admin for the admin routes. Cases are valid and invalid
requests; generation is deterministic (`derandomize`), bounded per operation, and runs on the
FakeEngine catalog, streaming included. Figures and findings: docs/security.md, "Fuzzing".

    .venv/bin/python -m pytest -q -m security_slow tests/security/test_fuzz_openapi.py
"""

from __future__ import annotations

import dataclasses
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
from tandem.api.app import create_app

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


@dataclass
class FuzzRun:
    operations: int = 0
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.operations} operations, {self.cases} cases, {len(self.failures)} failures; "
            f"statuses {dict(sorted(self.statuses.items()))}"
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


def fuzz(
    base_url: str,
    seeded: Seeded,
    examples: int,
    only: Callable[[str], bool] = lambda _: True,
) -> FuzzRun:
    """Every selected operation as the user, then the admin routes as the admin, over HTTP
    (a real server, so an unhandled exception is the 500 a client would get)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if only(_label(op))]
    ops.sort(key=lambda op: bool(DESTRUCTIVE.match(_label(op))))
    run = FuzzRun()
    plan = [(op, seeded.user) for op in ops]
    plan += [(op, seeded.admin) for op in ops if ADMIN_ROUTES.match(op.path)]
    with requests.Session() as http:
        for op, headers in plan:
            run.operations += 1
            _fuzz_operation(op, http, base_url, headers, seeded.ids, examples, run)
    return run


def _fuzz_operation(
    op: Any,
    http: requests.Session,
    base_url: str,
    headers: dict[str, str],
    ids: dict[str, Any],
    examples: int,
    run: FuzzRun,
) -> None:
    seen: set[str] = set()

    @hypothesis.given(case=_strategy(op, ids))
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
    base = live_server(create_app(unlimited, fake_catalog))
    with httpx.Client(base_url=base, timeout=60) as client:
        yield base, seed(client)


@pytest.mark.security_slow
def test_the_whole_api_survives_fuzzing(served: tuple[str, Seeded]) -> None:
    run = fuzz(*served, examples=EXAMPLES)
    print(run.summary())
    assert run.operations >= 69, run.summary()
    assert not run.failures, run.summary() + "\n" + "\n".join(run.failures)


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
