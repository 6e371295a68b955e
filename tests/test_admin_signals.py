"""The admin signal log (GET /api/admin/signals, tandem.store.signals): every current thumbs,
vote and improved answer with the generation record it judges, each filter narrowing, keyset
paging, admins only; "Add to regressions" on a thumbs-down, once; and the /admin/signals page.

    .venv/bin/python -m pytest -q tests/test_admin_signals.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markupsafe import escape

from conftest import OTHER_ANSWER, new_user
from tandem.core.signals import FEEDBACK_REASON_LABELS, FEEDBACK_REASONS

SIGNALS = "/api/admin/signals"


@pytest.fixture
def api_db_url(db_url):
    return db_url  # every test here runs on SQLite and (marked postgres) on PostgreSQL


def _turn(client, headers, text, new_conversation=None, **body):
    """A new conversation (created with `new_conversation`) and one turn in it."""
    r = client.post("/api/conversations", json=new_conversation or {}, headers=headers)
    conv = r.json()["id"]
    r = client.post(
        f"/api/conversations/{conv}/messages", json={"content": text, **body}, headers=headers
    )
    assert r.status_code == 200, r.text
    return conv, r.json()


def _rate(client, headers, message_id, rating, reasons=(), comment=""):
    r = client.post(
        f"/api/messages/{message_id}/feedback",
        json={"rating": rating, "reasons": list(reasons), "comment": comment},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _world(client):
    """An admin; alice (a profile, a thumbs-down, an improvement, a vote on other-model) and
    bob (a thumbs-up through the chat and one through /v1)."""
    admin = new_user(client, "admin@x.io")  # the first account administers the server
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    profile = client.post("/api/profiles", json={"name": "Pirate"}, headers=alice).json()
    conv, turn = _turn(client, alice, "Tell me about ships", {"profile_id": profile["id"]})
    down = _rate(
        client, alice, turn["assistant_message"]["id"], "down", ["too_long", "not_factual"], "meh"
    )
    _, turn2 = _turn(client, alice, "Name a prime")
    r = client.post(
        f"/api/messages/{turn2['assistant_message']['id']}/improve",
        json={"content": "7 is prime."},
        headers=alice,
    )
    assert r.status_code == 201, r.text
    improvement = r.json()["improvement"]
    client.put(
        "/api/admin/settings",
        json={"comparison_rate": 1.0, "comparison_models": ["fake-model", "other-model"]},
        headers=admin,
    )
    _, compared = _turn(client, alice, "Compare me")
    comp = compared["comparison"]
    client.post(f"/api/comparisons/{comp['id']}/vote", json={"verdict": "tie"}, headers=alice)
    client.put("/api/admin/settings", json={"comparison_rate": 0.0}, headers=admin)
    _, turn3 = _turn(client, bob, "Hello", model="other-model")
    up = _rate(client, bob, turn3["assistant_message"]["id"], "up")
    completion = client.post(
        "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "via v1"}]},
        headers=bob,
    ).json()
    r = client.post(
        f"/api/generations/{completion['id']}/feedback", json={"rating": "up"}, headers=bob
    )
    assert r.status_code == 200, r.text
    return {
        "admin": admin,
        "alice": alice,
        "bob": bob,
        "profile": profile,
        "conv": conv,
        "down": down,
        "up": up,
        "v1_up": r.json(),
        "improvement": improvement,
        "comparison": comp,
    }


def _ids(client, headers, **params):
    r = client.get(SIGNALS, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["signals"]]


def test_every_kind_with_its_generation_record_newest_first(client):
    w = _world(client)
    r = client.get(SIGNALS, headers=w["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    rows = body["signals"]
    assert body["next_cursor"] is None
    assert [s["kind"] for s in rows] == ["thumbs", "thumbs", "vote", "improvement", "thumbs"]
    assert [s["at"] for s in rows] == sorted((s["at"] for s in rows), reverse=True)
    down = rows[-1]
    assert down["id"] == w["down"]["id"] and down["user_email"] == "alice@x.io"
    assert down["rating"] == "down" and sorted(down["reasons"]) == ["not_factual", "too_long"]
    assert down["comment"] == "meh" and down["in_regressions"] is False
    assert down["profile_id"] == w["profile"]["id"] and down["profile_name"] == "Pirate"
    assert down["conversation_id"] == w["conv"]
    (gen,) = down["generations"]
    assert gen["model_version"] == "fake-model" and gen["engine"]
    assert "Tell me about ships" in gen["rendered_prompt"]
    assert gen["output_text"] == "You said: Tell me about ships"
    assert gen["tool_calls"] == [] and "sampling" in gen and "seed" in gen
    vote = rows[2]
    assert vote["verdict"] == "tie" and vote["in_regressions"] is None
    assert {g["output_text"] for g in vote["generations"]} == {
        "You said: Compare me",
        OTHER_ANSWER,
    }
    improvement = rows[3]
    assert improvement["improved_text"] == "7 is prime."
    assert improvement["generations"][0]["output_text"] == "You said: Name a prime"
    v1 = rows[0]
    assert v1["id"] == w["v1_up"]["id"] and v1["conversation_id"] is None
    assert v1["rating"] == "up" and v1["in_regressions"] is None


def test_each_filter_narrows(client):
    w = _world(client)
    admin = w["admin"]
    down, up, v1 = w["down"]["id"], w["up"]["id"], w["v1_up"]["id"]
    assert _ids(client, admin, kind="thumbs") == [v1, up, down]
    assert _ids(client, admin, kind="vote") == [w["comparison"]["id"]]
    assert _ids(client, admin, kind="improvement") == [w["improvement"]["id"]]
    assert _ids(client, admin, rating="up") == [v1, up]
    assert _ids(client, admin, rating="down") == [down]
    assert _ids(client, admin, reason="too_long") == [down]
    assert _ids(client, admin, reason="not_factual", kind="thumbs") == [down]
    assert _ids(client, admin, reason="refused") == []
    # A vote is kept when either answer came from the version.
    assert _ids(client, admin, version="other-model") == [up, w["comparison"]["id"]]
    assert _ids(client, admin, version="no-such-model") == []
    assert _ids(client, admin, profile=w["profile"]["id"]) == [down]
    assert _ids(client, admin, user="bob@x.io") == [v1, up]
    assert _ids(client, admin, user="BOB@x.io", kind="thumbs", rating="up") == [v1, up]
    everything = _ids(client, admin)
    assert _ids(client, admin, since="2000-01-01", until="2999-01-01") == everything
    assert _ids(client, admin, until="2000-01-01T00:00:00Z") == []
    assert _ids(client, admin, since="2999-01-01T00:00:00+02:00") == []


def test_keyset_pages_cover_everything_once(client):
    w = _world(client)
    everything = _ids(client, w["admin"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(SIGNALS, params=params, headers=w["admin"]).json()
        assert len(page["signals"]) <= 2
        seen += [s["id"] for s in page["signals"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(everything) == 5


def test_bad_input_is_422_with_a_message(client):
    w = _world(client)
    cases = [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "since must be before until"),
        ({"kind": "emoji"}, "kind"),
        ({"rating": "sideways"}, "rating"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"reason": "too_long", "kind": "vote"}, "thumbs only"),
        ({"user": "x" * 321}, "user"),
    ]
    for params, words in cases:
        r = client.get(SIGNALS, params=params, headers=w["admin"])
        assert r.status_code == 422, (params, r.text)
        assert words in r.json()["error"]["message"], (params, r.text)
    # An unknown reason lists the allowed ones, from the one vocabulary.
    r = client.get(SIGNALS, params={"reason": "boring"}, headers=w["admin"])
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert all(reason in message for reason in FEEDBACK_REASONS), message


def test_admins_only_and_only_consenting_live_signals(client):
    w = _world(client)
    assert client.get(SIGNALS).status_code == 401
    assert client.get(SIGNALS, headers=w["alice"]).status_code == 403
    regression = f"{SIGNALS}/{w['down']['id']}/regression"
    assert client.post(regression).status_code == 401
    assert client.post(regression, headers=w["alice"]).status_code == 403
    # Admins see every user's signals; bob opting out of training hides his.
    assert {"alice@x.io", "bob@x.io"} <= {
        s["user_email"] for s in client.get(SIGNALS, headers=w["admin"]).json()["signals"]
    }
    r = client.patch("/api/auth/me", json={"use_for_training": False}, headers=w["bob"])
    assert r.status_code == 200, r.text
    emails = {s["user_email"] for s in client.get(SIGNALS, headers=w["admin"]).json()["signals"]}
    assert emails == {"alice@x.io"}
    # Deleting a conversation takes its signals with it.
    client.delete(f"/api/conversations/{w['conv']}", headers=w["alice"])
    assert w["down"]["id"] not in _ids(client, w["admin"])


def test_add_to_regressions_once(client, tandem_home: Path):
    w = _world(client)
    admin, down = w["admin"], w["down"]["id"]
    path = f"{SIGNALS}/{down}/regression"
    r = client.post(path, headers=admin)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["added"] is True and item["items"] == 1
    assert item["item_id"] == f"regression-{down}"
    suite = tandem_home / "evals" / item["suite"]
    lines = [json.loads(x) for x in suite.read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"regression-{down}"]
    assert lines[0]["bad_answer"] == "You said: Tell me about ships"
    assert sorted(lines[0]["reasons"]) == ["not_factual", "too_long"]
    # A second click says it is there already and adds nothing.
    again = client.post(path, headers=admin)
    assert again.status_code == 200 and again.json()["added"] is False
    assert len(suite.read_text().splitlines()) == 1
    (row,) = client.get(SIGNALS, params={"rating": "down"}, headers=admin).json()["signals"]
    assert row["in_regressions"] is True
    # Not a thumbs-down, not a rating, no longer current: refused with a reason.
    assert client.post(f"{SIGNALS}/{w['up']['id']}/regression", headers=admin).status_code == 422
    assert client.post(f"{SIGNALS}/nope/regression", headers=admin).status_code == 404
    message_id = w["down"]["message_id"]
    _rate(client, w["alice"], message_id, "up")  # supersedes the thumbs-down
    r = client.post(path, headers=admin)
    assert r.status_code == 409 and "changed or withdrawn" in r.json()["error"]["message"]


def test_add_to_regressions_refuses_an_opted_out_author(client):
    w = _world(client)
    client.patch("/api/auth/me", json={"use_for_training": False}, headers=w["alice"])
    r = client.post(f"{SIGNALS}/{w['down']['id']}/regression", headers=w["admin"])
    assert r.status_code == 409 and "opted out" in r.json()["error"]["message"]


def test_page_is_for_admins_and_renders_the_vocabulary(client):
    r = client.get("/admin/signals", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    w = _world(client)
    client.post("/api/auth/login", json={"email": "admin@x.io", "password": "password-123"})
    page = client.get("/admin/signals")
    assert page.status_code == 200
    for reason, label in FEEDBACK_REASON_LABELS.items():
        assert f'<option value="{reason}">{escape(label)}</option>' in page.text
    assert '<option value="other-model">other-model</option>' in page.text
    assert f'<option value="{w["profile"]["id"]}">Pirate</option>' in page.text
    assert 'aria-current="page"' in page.text and "/static/admin_signals.js?v=" in page.text
    client.cookies.clear()
    client.post("/api/auth/login", json={"email": "alice@x.io", "password": "password-123"})
    assert client.get("/admin/signals").status_code == 403
