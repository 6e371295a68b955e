"""The authorization matrix (docs/security.md, "Authorization matrix"): every route of the app
has a declared rule (tandem.api.access), and every route is called as {owner, other user,
admin, anonymous, revoked API key, disabled user} over real resources of each kind.

Expected: owner 2xx; another user 404 with the body a missing id gets (admins included: user
routes stay per-user, admins use admin routes); non-admins 403 on admin routes; anonymous,
revoked keys and disabled users 401. The owner's data is unchanged after all the attempts."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.api.access import ROUTE_RULES, Rule, _flatten, app_routes
from tandem.store.evals import EvalItem
from tandem.store.jobs import JobRepo
from tandem.voice import wav_bytes

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
MISSING = "0" * 32
WAV = wav_bytes(np.zeros(1600, dtype=np.int16), 16_000)  # 0.1 s of silence


def _dependency_names(route: object) -> set[str]:
    names: set[str] = set()
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        names.add(getattr(dep.call, "__name__", ""))
        stack.extend(dep.dependencies)
    return names


def test_every_route_has_exactly_one_rule(app):
    served = set(app_routes(app))
    missing = sorted(served - set(ROUTE_RULES))
    assert not missing, f"routes without an authorization rule in tandem.api.access: {missing}"
    stale = sorted(set(ROUTE_RULES) - served)
    assert not stale, f"rules for routes the app does not serve: {stale}"


def test_rules_match_the_dependencies_routes_declare(app):
    """A rule is a claim; the route's dependencies are what runs. They must agree."""
    for route in _flatten(app.routes):
        deps = _dependency_names(route)
        for method in set(getattr(route, "methods", None) or ()) - {"HEAD"}:
            rule = ROUTE_RULES[(method, route.path)]
            where = f"{method} {route.path} ({rule})"
            if rule is Rule.ADMIN:
                assert "get_admin_user" in deps, where
            elif rule is Rule.RATER:
                assert "get_rater_user" in deps and "get_admin_user" not in deps, where
            elif rule in (Rule.ANY_USER, Rule.OWNER):
                assert "get_current_user" in deps and "get_admin_user" not in deps, where
            else:  # public routes and pages read no API credential
                assert "get_current_user" not in deps, where


# -- the matrix ------------------------------------------------------------------------------


@pytest.fixture
def world(client: TestClient, app) -> dict:
    """One resource of every kind owned by `owner`, and a caller for every role."""
    admin = new_user(client, "admin@x.io")  # the first account is the admin
    owner = new_user(client, "owner@x.io")
    other = new_user(client, "other@x.io")
    disabled = new_user(client, "disabled@x.io")
    revoked = new_user(client, "revoked@x.io")
    for key in client.get("/api/keys", headers=revoked).json():
        assert client.delete(f"/api/keys/{key['id']}", headers=revoked).status_code == 204
    users = {u["email"]: u["id"] for u in client.get("/api/users", headers=admin).json()}
    r = client.patch(
        f"/api/users/{users['disabled@x.io']}", json={"is_disabled": True}, headers=admin
    )
    assert r.status_code == 200, r.text

    conv = client.post("/api/conversations", json={"title": "secret"}, headers=owner).json()
    turn = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "private"}, headers=owner
    ).json()
    answer = turn["assistant_message"]["id"]
    feedback = client.post(
        f"/api/messages/{answer}/feedback", json={"rating": "up"}, headers=owner
    ).json()
    comp = client.post(
        f"/api/conversations/{conv['id']}/comparisons", json={"content": "pick"}, headers=owner
    ).json()
    improvement = client.post(
        f"/api/messages/{comp['a']['message_id']}/improve",
        json={"content": "better"},
        headers=owner,
    ).json()["improvement"]
    v1 = client.post(
        "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "q"}]},
        headers=owner,
    ).json()
    profile = client.post("/api/profiles", json={"name": "mine"}, headers=owner).json()
    memory = client.post("/api/memories", json={"text": "secret"}, headers=owner).json()
    upload = client.post(
        "/api/uploads", files={"file": ("a.png", PNG, "image/png")}, headers=owner
    ).json()
    file = client.post(
        "/api/files",
        files={"file": ("notes.txt", b"private notes\n", "text/plain")},
        headers=owner,
    ).json()
    spare_key = client.post("/api/keys", json={"name": "spare"}, headers=owner).json()
    dataset = client.post("/api/datasets", json={"kind": "sft"}, headers=admin)
    assert dataset.status_code == 201, dataset.text
    rollout = client.post(
        "/api/admin/rollouts", json={"version": "fake-model", "reason": "r"}, headers=admin
    )
    assert rollout.status_code == 200, rollout.text
    from tandem.store import ModelVersionRepo
    from tandem.store.evals import EvalRepo
    from tandem.store.rollouts import RolloutRepo

    with app.state.session_factory() as session:
        # A candidate to remove, and eval runs the gates need to let other-model be promoted.
        RolloutRepo(session).add_candidate(rollout.json()["id"], "gone-model", 0, False, None)
        evals = EvalRepo(session)
        for model in ("fake-model", "other-model"):
            for suite, summary in (("ifeval", {"average_strict": 0.5}), ("xstest", {})):
                run = evals.start_run(suite, model, "fake", {})
                evals.finish_run(run.id, [], {"safe_refusal_rate": 0.1, **summary}, 1.0)
    r = client.put(
        f"/api/admin/rollouts/{rollout.json()['id']}/candidates",
        json={"version": "other-model", "traffic_share": 0.0},
        headers=admin,
    )
    assert r.status_code == 200, r.text

    variants = [
        {"name": "brief", "kind": "system_prompt", "prompt_addition": "Be brief."},
        {"name": "other", "kind": "model_version", "model_version": "other-model"},
    ]
    experiment = client.post(
        "/api/admin/experiments",
        json={"name": "e", "comparison_rate": 0.1, "variants": variants},
        headers=admin,
    )
    assert experiment.status_code == 201, experiment.text

    # A rater with a demonstration in their queue; an admin-made task and an item to resolve.
    rater = new_user(client, "rater@x.io")
    rater_id = client.get("/api/auth/me", headers=rater).json()["id"]
    r = client.patch(f"/api/users/{rater_id}", json={"is_rater": True}, headers=admin)
    assert r.status_code == 200, r.text
    ranking = {"title": "r", "kind": "ranking", "items": [{"prompt": "q", "answers": ["a", "b"]}]}
    task = client.post("/api/admin/tasks", json=ranking, headers=admin)
    assert task.status_code == 201, task.text
    demo_task = {"title": "d", "kind": "demonstration", "items": [{"prompt": "q"}]}
    assert client.post("/api/admin/tasks", json=demo_task, headers=admin).status_code == 201
    queue = client.get("/api/rater/queue", headers=rater).json()["assignments"]
    assignment = next(a["id"] for a in queue if a["kind"] == "demonstration")

    demo = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    body = {"kind": "sft", "demonstrations": [{"messages": demo}], "filters": {"test_fraction": 0}}
    demos = client.post("/api/datasets", json=body, headers=admin)
    assert demos.status_code == 201, demos.text
    base = app.state.settings.home / "models" / "matrix-base"  # a chat model to train from
    base.mkdir(parents=True)
    (base / "manifest.json").write_text('{"kind": "chat"}')

    with app.state.session_factory() as session:
        run_id = EvalRepo(session).start_run("test-says", "fake-model", "fake", {}).id
        # Two finished runs of one suite, to compare.
        compared = []
        for version, passed in (("fake-model", True), ("other-model", False)):
            run = EvalRepo(session).start_run("test-says", version, "fake", {})
            item = EvalItem(
                example_id="e1",
                prompt_messages=[{"role": "user", "parts": [{"type": "text", "text": "x"}]}],
                response="y",
                passed=passed,
                scores={},
                details={},
            )
            EvalRepo(session).finish_run(run.id, [item], {}, wall_seconds=0.1)
            compared.append(run.id)
        # A queued job (no worker runs in these tests): cancelled, then resumed, by the admin.
        job_id = (
            JobRepo(session)
            .create("eval", {"suite": "ifeval", "versions": []}, title="j", created_by=None)
            .id
        )
        # A registry version no rollout serves (archivable).
        ModelVersionRepo(session).upsert("matrix-model", status="candidate")
    ids = {
        "conversation_id": conv["id"],
        "message_id": answer,
        "user_message_id": turn["user_message"]["id"],
        "generation_id": v1["id"].removeprefix("chatcmpl-"),
        "feedback_id": feedback["id"],
        "comparison_id": comp["id"],
        "improvement_id": improvement["id"],
        "profile_id": profile["id"],
        "memory_id": memory["id"],
        "upload_id": upload["id"],
        "file_id": file["id"],
        "ordinal": "0",
        "key_id": spare_key["id"],
        "snapshot_id": dataset.json()["id"],
        "filename": "train.jsonl",
        "run_id": run_id,
        "compare_query": f"?a={compared[0]}&b={compared[1]}",
        "snapshot_for_training": demos.json()["id"],
        "job_id": job_id,
        "rollout_id": rollout.json()["id"],
        "experiment_id": experiment.json()["id"],
        "version": "matrix-model",
        "user_id": users["other@x.io"],
        "task_id": task.json()["id"],
        "item_id": task.json()["items"][0]["id"],
        "assignment_id": assignment,
    }
    roles = {
        "owner": owner,
        "other": other,
        "admin": admin,
        "anonymous": {},
        "revoked": revoked,
        "disabled": disabled,
        "rater": rater,
    }
    return {"ids": ids, "roles": roles}


def _body(method: str, path: str, ids: dict) -> dict | None:
    """A valid request body for each route that takes one."""
    bodies = {
        ("POST", "/v1/chat/completions"): {"messages": [{"role": "user", "content": "x"}]},
        ("POST", "/v1/audio/speech"): {"model": "tts-1", "input": "x", "voice": "alloy"},
        ("PATCH", "/api/auth/me"): {"display_name": "renamed"},
        # The same password again: later log-ins in these tests keep working.
        ("POST", "/api/auth/password"): {
            "current_password": "password-123",
            "new_password": "password-123",
        },
        ("POST", "/api/keys"): {"name": "k"},
        ("POST", "/api/conversations"): {"title": "t"},
        ("PATCH", "/api/conversations/{conversation_id}"): {"title": "renamed"},
        ("POST", "/api/conversations/{conversation_id}/messages"): {"content": "hi"},
        ("PUT", "/api/conversations/{conversation_id}/current"): {"message_id": ids["message_id"]},
        ("POST", "/api/messages/{message_id}/regenerate"): {},
        ("POST", "/api/messages/{message_id}/continue"): {},
        ("POST", "/api/messages/{message_id}/edit"): {"content": "edited"},
        ("POST", "/api/messages/{message_id}/improve"): {"content": "improved"},
        ("POST", "/api/messages/{message_id}/signals"): {"kind": "copy"},
        ("POST", "/api/messages/{message_id}/feedback"): {"rating": "down"},
        ("POST", "/api/generations/{generation_id}/feedback"): {"rating": "down"},
        ("POST", "/api/conversations/{conversation_id}/comparisons"): {"content": "x"},
        ("POST", "/api/comparisons/{comparison_id}/vote"): {"verdict": "a"},
        ("POST", "/api/profiles"): {"name": "p"},
        ("PATCH", "/api/profiles/{profile_id}"): {"name": "renamed"},
        ("PUT", "/api/custom-instructions"): {"about_user": "me"},
        ("POST", "/api/memories"): {"text": "m"},
        ("PATCH", "/api/memories/{memory_id}"): {"text": "changed"},
        ("PATCH", "/api/users/{user_id}"): {"is_disabled": False},
        # The same password again: the user's later log-ins in these tests keep working.
        ("POST", "/api/users/{user_id}/password"): {"new_password": "password-123"},
        ("PUT", "/api/admin/settings"): {"comparison_rate": 0},
        ("POST", "/api/datasets"): {"kind": "sft"},
        # In the order the matrix calls them: each leaves what the next needs.
        ("PATCH", "/api/admin/rollouts/{rollout_id}"): {"comparison_rate": None},
        ("POST", "/api/admin/rollouts"): {"version": "fake-model"},
        ("POST", "/api/admin/rollouts/{rollout_id}/candidates/remove"): {"version": "gone-model"},
        ("POST", "/api/admin/rollouts/{rollout_id}/check"): {"version": "other-model"},
        ("POST", "/api/admin/rollouts/{rollout_id}/promote"): {
            "version": "other-model",
            "reason": "r",
        },
        ("POST", "/api/admin/rollouts/{rollout_id}/rollback"): {"reason": "r"},
        ("PUT", "/api/admin/rollouts/{rollout_id}/candidates"): {"version": "other-model"},
        ("POST", "/api/admin/experiments"): {
            "name": "x",
            "comparison_rate": 0.5,
            "variants": [
                {"name": "a", "kind": "system_prompt", "prompt_addition": "A."},
                {"name": "b", "kind": "system_prompt", "prompt_addition": "B."},
            ],
        },
        ("POST", "/api/admin/jobs/train"): {
            "method": "sft",
            "dataset": ids.get("snapshot_for_training", "none"),
            "base": "matrix-base",
            "config": {"max_steps": 1},
        },
        ("POST", "/api/admin/jobs/eval"): {"suite": "ifeval", "versions": ["fake-model"]},
        ("POST", "/api/admin/tasks"): {
            "title": "t",
            "kind": "ranking",
            "items": [{"prompt": "q", "answers": ["a", "b"]}],
        },
        ("POST", "/api/admin/tasks/{task_id}/items/{item_id}/resolve"): {"ranks": [2, 1]},
        # The rater's demonstration: the model's turn first, then the conversation.
        ("POST", "/api/rater/assignments/{assignment_id}/generate"): {
            "messages": [{"role": "user", "content": "q"}]
        },
        ("POST", "/api/rater/assignments/{assignment_id}/submit"): {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
        },
        # A private address: refused by the SSRF guard after auth (hermetic tests fetch nothing).
        ("POST", "/api/files/from-url"): {"url": "http://127.0.0.1:9/doc.txt"},
    }
    return bodies.get((method, path))


def _call(client: TestClient, method: str, path: str, ids: dict, headers: dict, missing=False):
    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name == "message_id" and path.endswith("/edit"):
            name = "user_message_id"  # an edit rewrites the user's message
        if missing and name not in ("ordinal", "filename"):
            return MISSING
        return ids[name]

    url = re.sub(r"\{(\w+)\}", fill, path)
    if path == "/api/evals/compare":
        url += ids["compare_query"]
    files = None
    if (method, path) == ("POST", "/api/uploads"):
        files = {"file": ("b.png", PNG, "image/png")}
    elif (method, path) == ("POST", "/api/files"):
        files = {"file": ("more.txt", b"more notes\n", "text/plain")}
    elif (method, path) == ("POST", "/v1/audio/transcriptions"):
        files = {"file": ("a.wav", WAV, "audio/wav")}
        return client.request(
            method, url, files=files, data={"model": "whisper-1"}, headers=headers
        )
    body = _body(method, path, ids)
    return client.request(method, url, json=body, files=files, headers=headers)


def _snapshot(client: TestClient, owner: dict, ids: dict) -> tuple:
    gets = [
        "/api/auth/me",
        "/api/conversations",
        f"/api/conversations/{ids['conversation_id']}",
        "/api/feedback?history=true",
        f"/api/comparisons/{ids['comparison_id']}",
        "/api/profiles",
        "/api/memories",
        "/api/improvements?history=true",
        "/api/keys",
        "/api/custom-instructions",
        "/api/files",
        f"/api/uploads/{ids['upload_id']}",
    ]
    out = []
    for url in gets:
        r = client.get(url, headers=owner)
        assert r.status_code == 200, (url, r.text)
        out.append(r.json() if "json" in r.headers["content-type"] else r.content)
    return tuple(out)


API_ROUTES = sorted(
    (m, p)
    for (m, p), rule in ROUTE_RULES.items()
    if rule in (Rule.ANY_USER, Rule.OWNER, Rule.ADMIN, Rule.RATER)
)


def test_matrix(client: TestClient, world: dict):
    ids, roles = world["ids"], world["roles"]
    owner = roles["owner"]
    before = _snapshot(client, owner, ids)
    failures = []

    def expect(role: str, method: str, path: str, want: set[int], r) -> None:
        if r.status_code not in want:
            failures.append(f"{role} {method} {path}: {r.status_code} (want {want}) {r.text[:200]}")

    for method, path in API_ROUTES:
        rule = ROUTE_RULES[(method, path)]
        for role in ("anonymous", "revoked", "disabled"):
            r = _call(client, method, path, ids, roles[role])
            expect(role, method, path, {401}, r)
            if r.status_code == 401:
                assert r.json()["error"]["type"] == "authentication_error"
        if rule is Rule.ADMIN:
            for role in ("owner", "other", "rater"):
                expect(role, method, path, {403}, _call(client, method, path, ids, roles[role]))
        if rule is Rule.RATER:  # admins are no exception
            for role in ("owner", "other", "admin"):
                expect(role, method, path, {403}, _call(client, method, path, ids, roles[role]))
        if rule is Rule.OWNER:
            for role in ("other", "admin"):
                r = _call(client, method, path, ids, roles[role])
                expect(role, method, path, {404}, r)
                # ...indistinguishable from an id that never existed.
                gone = _call(client, method, path, ids, roles[role], missing=True)
                if r.status_code == 404 and (gone.status_code, gone.json()) != (404, r.json()):
                    failures.append(f"{role} {method} {path}: 404 body differs from a missing id")
    assert not failures, "\n".join(failures)
    assert _snapshot(client, owner, ids) == before, "forbidden attempts changed the owner's data"

    # The owner (and the admin, on admin routes) succeed: writes first, deletions last.
    ordered = sorted(API_ROUTES, key=lambda mp: (mp[0] == "DELETE", _DELETE_ORDER.get(mp[1], 0)))
    for method, path in ordered:
        if (method, path) == ("DELETE", "/api/auth/me/data"):
            continue  # wipes the owner's data: exercised last, below
        role = {Rule.ADMIN: "admin", Rule.RATER: "rater"}.get(ROUTE_RULES[(method, path)], "owner")
        if path == "/api/feedback/{feedback_id}":  # the rating above superseded the first one
            url = f"/api/messages/{ids['message_id']}/feedback"
            ids["feedback_id"] = client.post(url, json={"rating": "up"}, headers=owner).json()["id"]
        if path == "/api/admin/signals/{feedback_id}/regression":  # needs a current thumbs-down
            url = f"/api/messages/{ids['message_id']}/feedback"
            r = client.post(url, json={"rating": "down"}, headers=owner)
            ids["feedback_id"] = r.json()["id"]
        r = _call(client, method, path, ids, roles[role])
        if path == "/api/files/from-url":  # passed auth and validation; the URL is refused
            assert r.status_code == 422 and r.json()["error"]["code"] == "url_refused", r.text
            continue
        expect(role, method, path, set(range(200, 300)), r)
    r = client.delete("/api/auth/me/data", headers=owner)
    expect("owner", "DELETE", "/api/auth/me/data", set(range(200, 300)), r)
    assert not failures, "\n".join(failures)


# Deletions whose resource others still need go after those others.
_DELETE_ORDER = {
    "/api/conversations/{conversation_id}": 9,
    "/api/messages/{message_id}/feedback": 1,
    "/api/feedback/{feedback_id}": 2,
}


def test_pages_follow_the_session_cookie(client: TestClient):
    def login(email: str) -> None:
        client.cookies.clear()
        r = client.post("/api/auth/login", json={"email": email, "password": "password-123"})
        assert r.status_code == 200, r.text

    admin = new_user(client, "admin@x.io")
    new_user(client, "user@x.io")
    new_user(client, "off@x.io")
    pages = {(m, p): rule for (m, p), rule in ROUTE_RULES.items() if rule.name.endswith("PAGE")}
    concrete = {p: p.replace("{conversation_id}", MISSING) for _, p in pages}

    def outcomes() -> dict[str, int]:
        return {p: client.get(concrete[p], follow_redirects=False).status_code for _, p in pages}

    client.cookies.clear()
    assert set(outcomes().values()) == {303}
    login("user@x.io")
    for (_, p), rule in pages.items():
        assert outcomes()[p] == (200 if rule is Rule.PAGE else 403), p
    login("admin@x.io")
    seen = outcomes()
    for (_, p), rule in pages.items():  # an admin is not a rater until made one
        assert seen[p] == (403 if rule is Rule.RATER_PAGE else 200), p
    me = client.get("/api/auth/me").json()["id"]
    r = client.patch(f"/api/users/{me}", json={"is_rater": True}, headers=admin)
    assert r.status_code == 200
    assert set(outcomes().values()) == {200}
    login("off@x.io")
    users = {u["email"]: u["id"] for u in client.get("/api/users", headers=admin).json()}
    r = client.patch(f"/api/users/{users['off@x.io']}", json={"is_disabled": True}, headers=admin)
    assert r.status_code == 200
    assert set(outcomes().values()) == {303}  # the disabled user's live session is dead


# -- unknown body fields ---------------------------------------------------------------------

SMUGGLED = {"user_id": "someone-else", "owner_id": "someone-else", "is_admin": True}


def test_unknown_body_fields_are_refused(client: TestClient, app):
    """Every JSON body (from the OpenAPI schema) and every multipart form refuses a smuggled
    `user_id`, `owner_id` or `is_admin`: 422 (400 on /v1, as OpenAI clients expect), naming it."""
    admin = new_user(client, "admin@x.io")  # passes every route's auth, so the body decides
    me = client.get("/api/auth/me", headers=admin).json()["id"]
    r = client.patch(f"/api/users/{me}", json={"is_rater": True}, headers=admin)  # rater routes
    assert r.status_code == 200, r.text
    ids = {name: MISSING for name in re.findall(r"\{(\w+)\}", " ".join(p for _, p in ROUTE_RULES))}
    ids |= {"ordinal": "0", "filename": "train.jsonl"}
    checked = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            method = method.upper()
            headers = admin if (method, path) in ROUTE_RULES else {}
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            want = 400 if path.startswith("/v1/") else 422
            for field, value in SMUGGLED.items():
                if (method, path, field) == ("PATCH", "/api/users/{user_id}", "is_admin"):
                    continue  # a real field there: an admin setting another user's role
                if "application/json" in content:
                    body = dict(_body(method, path, ids) or _PUBLIC_BODIES.get(path, {}))
                    r = client.request(method, url, json=body | {field: value}, headers=headers)
                elif "multipart/form-data" in content:
                    files = {"file": ("a.txt", b"x", "text/plain")}
                    data = {field: str(value)}
                    r = client.request(method, url, files=files, data=data, headers=headers)
                else:
                    continue
                assert r.status_code == want, (method, path, field, r.status_code, r.text)
                assert field in r.text, (method, path, r.text)
                checked.append((method, path))
    assert len(set(checked)) >= 25  # the walk found the app's bodies (26 today)
    assert ("POST", "/api/files") in checked and ("POST", "/v1/chat/completions") in checked
    # Nothing the smuggled fields named happened: still one admin, no extra accounts.
    users = client.get("/api/users", headers=admin).json()
    assert [u["email"] for u in users] == ["admin@x.io"]


_PUBLIC_BODIES = {
    "/api/auth/signup": {"email": "new@x.io", "password": "password-123"},
    "/api/auth/login": {"email": "admin@x.io", "password": "password-123"},
}
