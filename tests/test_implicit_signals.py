"""Implicit signals (tandem.store.implicit, tandem.chat.implicit_signals): regenerate, stop,
copy, edit-and-resend and corrective follow-ups are each recorded on the answer they judge,
through the public API; a failure to record never breaks the chat turn; the admin log lists
them with their generation records under the consent rules; the follow-up classifier on a
few clear cases (its measured figures come from `python -m bench.corrective_followup`).

    .venv/bin/python -m pytest -q tests/test_implicit_signals.py
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import new_user
from fake_engine import FakeEngine
from tandem.chat import ChatService
from tandem.chat.corrections import classify_followup
from tandem.engines import ModelCatalog
from tandem.store import ConversationRepo, ImplicitSignalRepo, UserRepo

SIGNALS = "/api/admin/signals"


def _chat(client, headers, text):
    conv = client.post("/api/conversations", json={}, headers=headers).json()["id"]
    r = client.post(f"/api/conversations/{conv}/messages", json={"content": text}, headers=headers)
    assert r.status_code == 200, r.text
    return conv, r.json()


def _listed(client, admin, kind):
    r = client.get(SIGNALS, params={"kind": kind}, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["signals"]


@pytest.fixture
def people(client):
    admin = new_user(client, "admin@x.io")  # the first account administers the server
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    return admin, alice, bob


def test_regenerate_records_a_signal_on_the_answer_regenerated(client, people):
    admin, alice, _ = people
    _, turn = _chat(client, alice, "Name a color")
    answer = turn["assistant_message"]
    r = client.post(f"/api/messages/{answer['id']}/regenerate", json={}, headers=alice)
    assert r.status_code == 200, r.text
    [signal] = _listed(client, admin, "regenerate")
    assert signal["generations"][0]["id"] == turn["generation"]["id"]
    assert signal["generations"][0]["output_text"] == "You said: Name a color"
    assert signal["user_email"] == "alice@x.io"
    # Recorded with the new answer, which names it; the new answer carries nothing itself.
    assert signal["detail"] == {"replacement_message_id": r.json()["assistant_message"]["id"]}
    assert len(_listed(client, admin, "regenerate")) == 1


def test_edit_and_resend_records_a_signal_on_the_answer_that_followed(client, people):
    admin, alice, _ = people
    _, turn = _chat(client, alice, "Give me three bullets")
    question = turn["user_message"]["id"]
    r = client.post(
        f"/api/messages/{question}/edit", json={"content": "Two bullets"}, headers=alice
    )
    assert r.status_code == 200, r.text
    [signal] = _listed(client, admin, "edit_resend")
    assert signal["generations"][0]["id"] == turn["generation"]["id"]
    assert signal["detail"] == {"edited_message_id": question}


def test_a_corrective_follow_up_flags_the_previous_answer_and_a_thanks_does_not(client, people):
    admin, alice, _ = people
    conv, turn = _chat(client, alice, "List three fruits")
    r = client.post(
        f"/api/conversations/{conv}/messages",
        json={"content": "no, I asked for three bullets"},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    second = r.json()
    r = client.post(
        f"/api/conversations/{conv}/messages",
        json={"content": "no worries, thanks!"},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    [signal] = _listed(client, admin, "corrective_followup")
    assert signal["generations"][0]["id"] == turn["generation"]["id"]
    assert signal["detail"]["followup_message_id"] == second["user_message"]["id"]
    assert signal["detail"]["rule"]


def test_copy_is_recorded_once_per_window_owner_only_answers_only(client, people):
    admin, alice, bob = people
    _, turn = _chat(client, alice, "Write a haiku")
    answer = turn["assistant_message"]["id"]
    url = f"/api/messages/{answer}/signals"
    first = client.post(url, json={"kind": "copy"}, headers=alice)
    assert first.status_code == 201, first.text
    assert first.json()["generation_id"] == turn["generation"]["id"]
    again = client.post(url, json={"kind": "copy"}, headers=alice)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert client.post(url, json={"kind": "copy"}, headers=bob).status_code == 404
    question = turn["user_message"]["id"]
    r = client.post(f"/api/messages/{question}/signals", json={"kind": "copy"}, headers=alice)
    assert r.status_code == 422
    # Server-observed kinds cannot be reported by a client; unknown fields are refused.
    assert client.post(url, json={"kind": "regenerate"}, headers=alice).status_code == 422
    assert client.post(url, json={"kind": "copy", "user_id": "x"}, headers=alice).status_code == 422
    [signal] = _listed(client, admin, "copy")
    assert signal["id"] == first.json()["id"]


def test_opted_out_users_signals_are_recorded_but_never_listed(client, people):
    admin, alice, _ = people
    _, turn = _chat(client, alice, "Hello")
    r = client.post(
        f"/api/messages/{turn['assistant_message']['id']}/signals",
        json={"kind": "copy"},
        headers=alice,
    )
    assert r.status_code == 201
    assert len(_listed(client, admin, "copy")) == 1
    assert client.patch("/api/auth/me", json={"use_for_training": False}, headers=alice).is_success
    assert _listed(client, admin, "copy") == []


def test_the_signal_log_lists_every_kind_unfiltered_and_refuses_non_admins(client, people):
    admin, alice, _ = people
    _, turn = _chat(client, alice, "Hi")
    answer = turn["assistant_message"]["id"]
    client.post(f"/api/messages/{answer}/signals", json={"kind": "copy"}, headers=alice)
    client.post(f"/api/messages/{answer}/regenerate", json={}, headers=alice)
    kinds = {s["kind"] for s in client.get(SIGNALS, headers=admin).json()["signals"]}
    assert {"copy", "regenerate"} <= kinds
    assert client.get(SIGNALS, params={"kind": "copy"}, headers=alice).status_code == 403


@pytest.mark.anyio
async def test_stopping_a_stream_records_a_stop_on_the_partial_answer(session_factory):
    catalog = ModelCatalog(default_model="slow")
    catalog.add(FakeEngine("slow", script=["one two three four five six"], delay_s=0.01))
    with session_factory() as s:
        user = UserRepo(s).create("c@x.io", "pw-123456")
        conv = ConversationRepo(s).create(user.id)
    service = ChatService(session_factory, catalog)
    turn = service.send(user.id, conv.id, "go")
    stream = turn.stream()
    await anext(stream)
    await stream.aclose()  # what the web UI's Stop does: the request is aborted
    assert turn.generation.finish_reason == "cancelled"
    finished = await service.send(user.id, conv.id, "and then?").run()
    with session_factory() as s:
        stopped = ImplicitSignalRepo(s).for_message(user.id, turn.assistant_message.id)
        assert [(x.kind, x.generation_id) for x in stopped] == [("stop", turn.generation.id)]
        assert ImplicitSignalRepo(s).for_message(user.id, finished.assistant_message.id) == []


@pytest.mark.anyio
async def test_a_failure_to_record_is_logged_and_the_turn_goes_on(
    session_factory, monkeypatch, caplog
):
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    with session_factory() as s:
        user = UserRepo(s).create("d@x.io", "pw-123456")
        conv = ConversationRepo(s).create(user.id)
    service = ChatService(session_factory, catalog)
    first = await service.send(user.id, conv.id, "hello").run()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ImplicitSignalRepo, "record", broken)
    again = await service.regenerate(user.id, first.assistant_message.id).run()
    assert again.assistant_message is not None and again.text == "You said: hello"
    fixed = await service.send(user.id, conv.id, "that's wrong").run()
    assert fixed.text == "You said: that's wrong"
    assert "could not record a regenerate signal" in caplog.text
    assert "could not record a corrective_followup signal" in caplog.text
    with session_factory() as s:
        assert ImplicitSignalRepo(s).for_message(user.id, first.assistant_message.id) == []
        assert len(ConversationRepo(s).tree(user.id, conv.id)) == 5
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    "text",
    [
        "no, I asked for three bullets",
        "that's wrong",
        "shorter please",
        "you didn't answer my question",
    ],
)
def test_clear_corrections_are_found(text):
    assert classify_followup(text) is not None


@pytest.mark.parametrize(
    "text", ["no worries, thanks!", "now do the same for Python", "thanks, that helps", "why?"]
)
def test_clear_non_corrections_are_not(text):
    assert classify_followup(text) is None


@pytest.fixture
def api_db_url(db_url: str) -> str:
    """The same tests on PostgreSQL (the db_url fixture's second parameter) as on SQLite."""
    return db_url
