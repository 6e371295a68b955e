"""Raters over the API (docs/raters.md): an admin makes raters and tasks; raters see only their
own queue, blind and shuffled; the report's agreement, gold accuracy and disagreements; an
adjudication; snapshots from a task with their filters and provenance.

    .venv/bin/python -m pytest -q tests/test_raters.py
"""

from __future__ import annotations

import json

import krippendorff
import pytest

from conftest import log_in_as, new_user

GOLD_ANSWERS = ["Paris.", "Lyon.", "I don't know."]


def _ids(client, admin) -> dict[str, str]:
    return {u["email"]: u["id"] for u in client.get("/api/users", headers=admin).json()}


def _make_rater(client, admin, email: str) -> dict[str, str]:
    headers = new_user(client, email)
    r = client.patch(
        f"/api/users/{_ids(client, admin)[email]}", json={"is_rater": True}, headers=admin
    )
    assert r.status_code == 200 and r.json()["is_rater"] is True, r.text
    return headers


def _ranking_task(client, admin, **changes) -> dict:
    body = {
        "title": "Rank answers",
        "guideline": "Rank the **most helpful** answer first.",
        "kind": "ranking",
        "items": [
            {"prompt": "Say hi", "answers": ["Hi!", "Go away.", "Hello there."]},
            {"prompt": "Add 2+2", "answers": ["4", "5"]},
            {"prompt": "Capital of France?", "answers": GOLD_ANSWERS, "gold": [1, 3, 2]},
        ],
        **changes,
    }
    r = client.post("/api/admin/tasks", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def _rank(client, headers, assignment_id: str, by_text: dict[str, int]) -> dict:
    """Submit ranks given per answer text (whatever order the rater was shown)."""
    view = client.get(f"/api/rater/assignments/{assignment_id}", headers=headers).json()
    ranks = [by_text[a["text"]] for a in view["answers"]]
    r = client.post(
        f"/api/rater/assignments/{assignment_id}/submit", json={"ranks": ranks}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def _queue(client, headers) -> list[dict]:
    r = client.get("/api/rater/queue", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["assignments"]


def _by_prompt(client, headers) -> dict[str, str]:
    out = {}
    for a in _queue(client, headers):
        view = client.get(f"/api/rater/assignments/{a['id']}", headers=headers).json()
        out[view["prompt"][-1]["content"]] = a["id"]
    return out


def test_only_raters_have_a_queue_and_each_sees_only_their_own(client):
    admin = new_user(client, "admin@x.io")
    plain = new_user(client, "plain@x.io")
    one = _make_rater(client, admin, "one@x.io")
    two = _make_rater(client, admin, "two@x.io")
    three = _make_rater(client, admin, "three@x.io")
    task = _ranking_task(client, admin)
    for headers in (plain, admin):  # an admin is not a rater until made one
        assert client.get("/api/rater/queue", headers=headers).status_code == 403
    assert client.get("/rate", follow_redirects=False).status_code == 303
    q1, q2, q3 = _queue(client, one), _queue(client, two), _queue(client, three)
    assert len(q1) == len(q2) == 3
    # raters_per_item 2: the third rater gets the gold item only (gold goes to every rater).
    assert len(q3) == 1
    view = client.get(f"/api/rater/assignments/{q3[0]['id']}", headers=three).json()
    assert view["prompt"][-1]["content"] == "Capital of France?"
    assert set(view) == {"id", "status", "task", "prompt", "answers", "behaviors", "rule", "result"}
    assert set(view["answers"][0]) == {"key", "text"}  # no model, no gold flag
    assert view["task"]["guideline"].startswith("Rank the **most helpful**")
    # Another rater's assignment is as missing as a made-up one.
    other = client.get(f"/api/rater/assignments/{q1[0]['id']}", headers=two)
    missing = client.get(f"/api/rater/assignments/{'0' * 32}", headers=two)
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    r = client.post(
        f"/api/rater/assignments/{q1[0]['id']}/submit", json={"ranks": [1, 2]}, headers=two
    )
    assert r.status_code == 404
    # The shown order is the assignment's own and stable between visits.
    again = client.get(f"/api/rater/assignments/{q3[0]['id']}", headers=three).json()
    assert again["answers"] == view["answers"]
    assert sorted(a["text"] for a in view["answers"]) == sorted(GOLD_ANSWERS)
    assert client.get(f"/api/admin/tasks/{task['id']}", headers=one).status_code == 403


def test_rankings_make_a_report_an_adjudication_and_a_preference_snapshot(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    one = _make_rater(client, admin, "one@x.io")
    two = _make_rater(client, admin, "two@x.io")
    task = _ranking_task(client, admin)
    mine, yours = _by_prompt(client, one), _by_prompt(client, two)
    _rank(client, one, mine["Say hi"], {"Hello there.": 1, "Hi!": 2, "Go away.": 3})
    _rank(client, two, yours["Say hi"], {"Hi!": 1, "Hello there.": 2, "Go away.": 3})
    _rank(client, one, mine["Add 2+2"], {"4": 1, "5": 2})
    _rank(client, two, yours["Add 2+2"], {"4": 1, "5": 2})
    _rank(client, one, mine["Capital of France?"], {"Paris.": 1, "I don't know.": 2, "Lyon.": 3})
    _rank(client, two, yours["Capital of France?"], {"Lyon.": 1, "Paris.": 2, "I don't know.": 3})
    again = client.post(
        f"/api/rater/assignments/{mine['Add 2+2']}/submit", json={"ranks": [2, 1]}, headers=one
    )
    assert again.status_code == 409  # submitted work is never changed

    report = client.get(f"/api/admin/tasks/{task['id']}", headers=admin).json()["report"]
    assert report["progress"] == {"items": 3, "assigned": 6, "submitted": 6}
    assert report["alpha"]["level"] == "ordinal" and report["alpha"]["value"] is not None
    raters = {r["email"]: r for r in report["raters"]}
    assert raters["one@x.io"]["gold_accuracy"] == 1.0
    assert raters["two@x.io"]["gold_accuracy"] == 0.0
    assert raters["one@x.io"]["median_seconds"] is not None
    assert len(report["disagreements"]) == 2  # "Say hi" and the gold item
    hi = next(d for d in report["disagreements"] if d["answers"][0] == "Hi!")
    assert hi["agreement"] == pytest.approx(2 / 3)
    assert {r["rater"] for r in hi["rankings"]} == {"one@x.io", "two@x.io"}

    def build(**filters) -> list[tuple[dict, dict]]:
        body = {
            "kind": "preference",
            "source": "rater_task",
            "filters": {"task_id": task["id"], "test_fraction": 0, **filters},
        }
        r = client.post("/api/datasets", json=body, headers=admin)
        assert r.status_code in (200, 201), r.text
        path = tandem_home / "datasets" / r.json()["id"]
        data = [json.loads(x) for x in (path / "train.jsonl").read_text().splitlines()]
        prov = [json.loads(x) for x in (path / "provenance.jsonl").read_text().splitlines()]
        return list(zip(data, [p["sources"] for p in prov], strict=True))

    def pairs(rows) -> set[tuple[str, str, str]]:
        return {
            (r["prompt"][-1]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"])
            for r, _ in rows
        }

    ids = _ids(client, admin)
    everything = build()
    # "Say hi": the raters split on Hi! vs Hello there., so only the pairs both order alike.
    assert {p for p in pairs(everything) if p[0] == "Say hi"} == {
        ("Say hi", "Hi!", "Go away."),
        ("Say hi", "Hello there.", "Go away."),
    }
    assert ("Add 2+2", "4", "5") in pairs(everything)
    # The gold item: its known order, whatever the raters said.
    assert ("Capital of France?", "Paris.", "I don't know.") in pairs(everything)
    assert len(pairs(everything)) == 2 + 1 + 3
    add = next(s for r, s in everything if r["prompt"][-1]["content"] == "Add 2+2")
    assert add["rater_task"] == [task["id"]] and add["item_agreement"] == ["1.000"]
    assert add["rater"] == sorted(ids[e] for e in ("one@x.io", "two@x.io"))
    assert len(add["rater_item"]) == 1 and len(add["assignment"]) == 2

    # Rater two's gold accuracy is 0: at 0.5 only rater one's rankings count.
    strict = build(min_gold_accuracy=0.5)
    assert ("Say hi", "Hello there.", "Hi!") in pairs(strict)
    for _, sources in strict:
        assert sources["rater"] in ([ids["one@x.io"]], [])

    r = client.post(
        f"/api/admin/tasks/{task['id']}/items/{hi['item_id']}/resolve",
        json={"ranks": [1, 3, 2], "note": "friendlier first"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["resolution"]["ranks"] == [1, 3, 2]
    resolved = build()
    assert ("Say hi", "Hi!", "Hello there.") in pairs(resolved)
    said_hi = [s for row, s in resolved if row["prompt"][-1]["content"] == "Say hi"]
    assert all(s["adjudicated_by"] == [ids["admin@x.io"]] for s in said_hi)

    bad = client.post(
        "/api/datasets",
        json={"kind": "sft", "source": "rater_task", "filters": {"task_id": task["id"]}},
        headers=admin,
    )
    assert bad.status_code == 422 and "preference" in bad.json()["error"]["message"]


def test_min_agreement_leaves_out_items_raters_disagree_on(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    one = _make_rater(client, admin, "one@x.io")
    two = _make_rater(client, admin, "two@x.io")
    body = {
        "title": "t",
        "kind": "ranking",
        "items": [
            {"prompt": "a", "answers": ["x", "y", "z"]},
            {"prompt": "b", "answers": ["p", "q"]},
        ],
    }
    task = client.post("/api/admin/tasks", json=body, headers=admin).json()
    mine, yours = _by_prompt(client, one), _by_prompt(client, two)
    _rank(client, one, mine["a"], {"x": 1, "y": 2, "z": 3})
    _rank(client, two, yours["a"], {"x": 1, "y": 3, "z": 2})  # agree on 2 of 3 pairs
    _rank(client, one, mine["b"], {"p": 1, "q": 2})
    _rank(client, two, yours["b"], {"p": 1, "q": 2})
    for min_agreement, prompts in ((None, {"a", "b"}), (0.9, {"b"})):
        body = {
            "kind": "preference",
            "source": "rater_task",
            "filters": {"task_id": task["id"], "test_fraction": 0, "min_agreement": min_agreement},
        }
        snap = client.post("/api/datasets", json=body, headers=admin).json()
        lines = (tandem_home / "datasets" / snap["id"] / "train.jsonl").read_text().splitlines()
        assert {json.loads(x)["prompt"][-1]["content"] for x in lines} == prompts
        # "a": only the pairs both order alike (x over y, x over z); never y vs z.
        if min_agreement is None:
            a = [json.loads(x) for x in lines if json.loads(x)["prompt"][-1]["content"] == "a"]
            assert {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in a} == {
                ("x", "y"),
                ("x", "z"),
            }


def test_task_validation_is_a_clean_422(client):
    admin = new_user(client, "admin@x.io")
    cases = [
        {"kind": "ranking", "items": [{"prompt": "q", "answers": ["only one"]}]},
        {"kind": "ranking", "items": [{"prompt": "q", "answers": ["a", "b"], "gold": [1, 1]}]},
        {"kind": "ranking", "items": [{"prompt": "q", "answers": ["a", "b"], "gold": [1]}]},
        {"kind": "ranking", "items": [{"prompt": "q"}]},
        {"kind": "ranking", "models": ["nope"], "items": [{"prompt": "q"}]},
        {"kind": "demonstration", "items": [{"prompt": "q", "answers": ["a", "b"]}]},
        {"kind": "ranking", "items": [{"prompt": [{"role": "assistant", "content": "x"}]}]},
        {"kind": "ranking", "items": []},
    ]
    for case in cases:
        r = client.post("/api/admin/tasks", json={"title": "t", **case}, headers=admin)
        assert r.status_code in (404, 422), (case, r.text)


def test_ranking_answers_written_by_models(client):
    admin = new_user(client, "admin@x.io")
    body = {
        "title": "models",
        "kind": "ranking",
        "models": ["fake-model", "other-model"],
        "items": [{"prompt": "hello"}],
    }
    r = client.post("/api/admin/tasks", json=body, headers=admin)
    assert r.status_code == 201, r.text
    answers = r.json()["items"][0]["answers"]
    assert [a["model"] for a in answers] == ["fake-model", "other-model"]
    assert answers[0]["text"] == "You said: hello"


def test_a_demonstration_is_a_chat_with_rewritten_turns_and_an_sft_row(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    rater = _make_rater(client, admin, "one@x.io")
    body = {
        "title": "Teach greetings",
        "kind": "demonstration",
        "raters_per_item": 1,
        "items": [{"prompt": "Greet me"}],
    }
    task = client.post("/api/admin/tasks", json=body, headers=admin).json()
    assert task["model"] == "fake-model"
    (assignment,) = _queue(client, rater)
    url = f"/api/rater/assignments/{assignment['id']}"
    turns = [{"role": "user", "content": "Greet me"}]
    first = client.post(f"{url}/generate", json={"messages": turns}, headers=rater).json()
    assert first["text"] == "You said: Greet me"
    turns += [
        {"role": "assistant", "content": "Hello! Nice to meet you."},  # rewritten
        {"role": "user", "content": "And again"},
    ]
    second = client.post(f"{url}/generate", json={"messages": turns}, headers=rater).json()
    turns.append({"role": "assistant", "content": second["text"]})  # kept as the model wrote it
    wrong = client.post(
        f"{url}/submit",
        json={"messages": [{"role": "user", "content": "x"}, turns[1]]},
        headers=rater,
    )
    assert wrong.status_code == 422
    r = client.post(f"{url}/submit", json={"messages": turns}, headers=rater)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["rewritten"] == [1]
    build = {
        "kind": "sft",
        "source": "rater_task",
        "filters": {"task_id": task["id"], "test_fraction": 0},
    }
    snap = client.post("/api/datasets", json=build, headers=admin)
    assert snap.status_code == 201, snap.text
    path = tandem_home / "datasets" / snap.json()["id"]
    (row,) = [json.loads(x) for x in (path / "train.jsonl").read_text().splitlines()]
    assert row == {"messages": turns}
    (prov,) = [json.loads(x) for x in (path / "provenance.jsonl").read_text().splitlines()]
    assert prov["sources"]["rater_task"] == [task["id"]]
    assert prov["sources"]["assignment"] == [assignment["id"]]


def test_the_pages_follow_the_roles(client):
    admin = new_user(client, "admin@x.io")
    _make_rater(client, admin, "one@x.io")
    new_user(client, "plain@x.io")
    log_in_as(client, "plain@x.io")
    assert client.get("/rate").status_code == 403
    assert client.get("/admin/tasks").status_code == 403
    assert 'href="/rate"' not in client.get("/").text
    log_in_as(client, "one@x.io")
    assert client.get("/rate").status_code == 200
    assert 'href="/rate"' in client.get("/").text  # the sidebar links raters to their queue
    log_in_as(client, "admin@x.io")
    page = client.get("/admin/tasks")
    assert page.status_code == 200 and 'aria-current="page">Rater tasks<' in page.text
    assert client.get("/rate").status_code == 403  # an admin is not a rater


def test_a_rater_who_opts_out_of_training_is_never_read(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    keen = _make_rater(client, admin, "keen@x.io")
    shy = _make_rater(client, admin, "shy@x.io")
    body = {"title": "d", "kind": "demonstration", "items": [{"prompt": "Greet me"}]}
    task = client.post("/api/admin/tasks", json=body, headers=admin).json()
    for headers, answer in ((keen, "Hello there, welcome!"), (shy, "Good morning to you, friend.")):
        (assignment,) = _queue(client, headers)
        turns = [{"role": "user", "content": "Greet me"}, {"role": "assistant", "content": answer}]
        r = client.post(
            f"/api/rater/assignments/{assignment['id']}/submit",
            json={"messages": turns},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    assert (
        client.patch("/api/auth/me", json={"use_for_training": False}, headers=shy).status_code
        == 200
    )
    build = {
        "kind": "sft",
        "source": "rater_task",
        "filters": {"task_id": task["id"], "test_fraction": 0},
    }
    snap = client.post("/api/datasets", json=build, headers=admin).json()
    lines = (tandem_home / "datasets" / snap["id"] / "train.jsonl").read_text().splitlines()
    assert [json.loads(x)["messages"][-1]["content"] for x in lines] == ["Hello there, welcome!"]


def test_spec_labels_behavior_by_behavior_with_gold_and_alpha(client):
    admin = new_user(client, "admin@x.io")
    one = _make_rater(client, admin, "one@x.io")
    two = _make_rater(client, admin, "two@x.io")
    body = {
        "title": "Judge greetings",
        "kind": "spec_label",
        "behaviors": ["greeting", "personality"],
        "items": [
            {
                "prompt": "hi",
                "answers": ["Hello! How can I help?"],
                "gold_labels": ["pass", "pass"],
            },
            {"prompt": "hey there"},  # the first model writes the response
        ],
        "models": ["fake-model"],
    }
    r = client.post("/api/admin/tasks", json=body, headers=admin)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["items"][1]["answers"][0]["text"] == "You said: hey there"
    bad = {**body, "behaviors": ["no_such_behavior"]}
    assert client.post("/api/admin/tasks", json=bad, headers=admin).status_code == 422
    labels = {
        "one@x.io": {"hi": ["pass", "pass"], "hey there": ["fail", "na"]},
        "two@x.io": {"hi": ["fail", "pass"], "hey there": ["fail", "na"]},
    }
    for email, headers in (("one@x.io", one), ("two@x.io", two)):
        for prompt, assignment in _by_prompt(client, headers).items():
            url = f"/api/rater/assignments/{assignment}"
            view = client.get(url, headers=headers).json()
            assert [b["id"] for b in view["behaviors"]] == ["greeting", "personality"]
            assert view["behaviors"][0]["description"]
            given = labels[email][prompt]
            if "fail" in given:  # a fail needs its rationale
                without = client.post(f"{url}/submit", json={"labels": given}, headers=headers)
                assert without.status_code == 422
            why = ["echoes instead of greeting" if x == "fail" else "" for x in given]
            r = client.post(
                f"{url}/submit", json={"labels": given, "rationales": why}, headers=headers
            )
            assert r.status_code == 200, r.text
    report = client.get(f"/api/admin/tasks/{task['id']}", headers=admin).json()["report"]
    data = [[0, 0, 1, 2], [1, 0, 1, 2]]  # pass=0, fail=1, na=2 over (item, behavior)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert report["alpha"]["level"] == "nominal"
    assert report["alpha"]["value"] == pytest.approx(expected)
    raters = {r["email"]: r for r in report["raters"]}
    assert (raters["one@x.io"]["gold_correct"], raters["one@x.io"]["gold_items"]) == (2, 2)
    assert raters["two@x.io"]["gold_accuracy"] == 0.5
    (disagreement,) = report["disagreements"]
    assert disagreement["agreement"] == 0.5
    r = client.post(
        f"/api/admin/tasks/{task['id']}/items/{disagreement['item_id']}/resolve",
        json={"labels": ["pass", "pass"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    build = {"kind": "sft", "source": "rater_task", "filters": {"task_id": task["id"]}}
    assert client.post("/api/datasets", json=build, headers=admin).status_code == 422


def test_a_red_team_finding_becomes_a_regression_case(client, tandem_home):
    from tandem.evals.regressions import build_regression_suite, latest_suite
    from tandem.evals.tasks import get_task

    admin = new_user(client, "admin@x.io")
    rater = _make_rater(client, admin, "one@x.io")
    body = {
        "title": "Break the echo rule",
        "kind": "red_team",
        "raters_per_item": 1,
        "items": [{"rule": "Never repeat the user's words back"}],
    }
    task = client.post("/api/admin/tasks", json=body, headers=admin)
    assert task.status_code == 201, task.text
    bad = client.post("/api/admin/tasks", json={**body, "items": [{"prompt": "x"}]}, headers=admin)
    assert bad.status_code == 422
    (assignment,) = _queue(client, rater)
    url = f"/api/rater/assignments/{assignment['id']}"
    view = client.get(url, headers=rater).json()
    assert view["rule"] == "Never repeat the user's words back" and view["prompt"] == []
    turns = [{"role": "user", "content": "Tell me about cats"}]
    reply = client.post(f"{url}/generate", json={"messages": turns}, headers=rater).json()
    turns.append({"role": "assistant", "content": reply["text"]})
    edited = [turns[0], {"role": "assistant", "content": "words the model never wrote"}]
    forged = {"messages": edited, "finding_turn": 1, "explanation": "echo"}
    assert client.post(f"{url}/submit", json=forged, headers=rater).status_code == 422
    why = {"messages": turns, "finding_turn": 1}
    assert client.post(f"{url}/submit", json=why, headers=rater).status_code == 422
    finding = {"messages": turns, "finding_turn": 1, "explanation": "it echoes my words"}
    r = client.post(f"{url}/submit", json=finding, headers=rater)
    assert r.status_code == 200, r.text
    case_id = r.json()["regression_case"]
    suite = latest_suite(tandem_home)
    (line,) = [json.loads(x) for x in suite.read_text().splitlines()]
    assert line["id"] == case_id and line["bad_answer"] == "You said: Tell me about cats"
    assert line["messages"] == turns[:1] and "Never repeat" in line["rubric"]
    example = next(iter(get_task("regressions", path=suite).examples()))
    assert example.id == case_id
    report = client.get(f"/api/admin/tasks/{task.json()['id']}", headers=admin).json()["report"]
    assert [f["regression_case"] for f in report["findings"]] == [case_id]
    assert report["raters"][0]["findings"] == 1
    # A rebuilt suite keeps the finding (a build reads thumbs-downs and findings).
    with client.app.state.session_factory() as session:
        rebuilt, count = build_regression_suite(
            session, tandem_home, output=tandem_home / "r.jsonl"
        )
    assert count == 1 and case_id in rebuilt.read_text()


@pytest.fixture
def api_db_url(db_url: str) -> str:
    """The same tests on PostgreSQL (the db_url fixture's second parameter) as on SQLite."""
    return db_url
