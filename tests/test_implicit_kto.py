"""Implicit signals as weak KTO labels (`BuildConfig.implicit_weight`, tandem.data.builders):
off by default; on, an answer regenerated (stopped, edited away, corrected) that no explicit
signal labels becomes one negative with `origin: implicit_<kind>`; a copy never does; opted-out
users are never read; the weight keeps a hash-chosen, nested fraction of them.

    .venv/bin/python -m pytest -q tests/test_implicit_kto.py
"""

from __future__ import annotations

import pytest

from conftest import new_user
from tandem.core.errors import InvalidInput
from tandem.data.build import BuildConfig, examples_from_signals
from tandem.data.builders import implicit_kept


def _answer(client, headers, text):
    conv = client.post("/api/conversations", json={}, headers=headers).json()["id"]
    r = client.post(f"/api/conversations/{conv}/messages", json={"content": text}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _kto(app, **options):
    with app.state.session_factory() as session:
        return examples_from_signals(session, BuildConfig(kind="kto", **options))


@pytest.fixture
def world(client):
    new_user(client, "admin@x.io")
    alice = new_user(client, "alice@x.io")
    rated = _answer(client, alice, "Rated and regenerated")
    client.post(
        f"/api/messages/{rated['assistant_message']['id']}/feedback",
        json={"rating": "up"},
        headers=alice,
    )
    client.post(
        f"/api/messages/{rated['assistant_message']['id']}/regenerate", json={}, headers=alice
    )
    regenerated = _answer(client, alice, "Only regenerated")
    answer = regenerated["assistant_message"]["id"]
    assert client.post(f"/api/messages/{answer}/regenerate", json={}, headers=alice).is_success
    copied = _answer(client, alice, "Only copied")
    url = f"/api/messages/{copied['assistant_message']['id']}/signals"
    assert client.post(url, json={"kind": "copy"}, headers=alice).status_code == 201
    return alice, rated, regenerated


def test_off_by_default_and_on_adds_one_negative_per_unlabelled_answer(app, client, world):
    alice, rated, regenerated = world
    off = _kto(app)
    assert [e.origin for e in off] == ["thumbs_up"]
    assert "implicit_weight" not in BuildConfig(kind="kto").filters()

    on = _kto(app, implicit_weight=1.0)
    implicit = [e for e in on if e.origin.startswith("implicit_")]
    [weak] = implicit
    assert weak.origin == "implicit_regenerate"
    assert weak.row["label"] is False
    assert weak.row["completion"] == [
        {"role": "assistant", "content": "You said: Only regenerated"}
    ]
    assert weak.sources["generation"] == [regenerated["generation"]["id"]]
    assert len(weak.sources["implicit"]) == 1
    # The rated answer keeps its explicit label only; the copied one is no negative.
    assert all(rated["generation"]["id"] not in e.sources["generation"] for e in implicit)
    assert sorted(e.origin for e in on) == ["implicit_regenerate", "thumbs_up"]
    assert BuildConfig(kind="kto", implicit_weight=0.5).filters()["implicit_weight"] == 0.5

    client.patch("/api/auth/me", json={"use_for_training": False}, headers=alice)
    assert _kto(app, implicit_weight=1.0) == []


def test_the_weight_keeps_a_deterministic_nested_fraction():
    ids = [f"{i:032x}" for i in range(4000)]
    kept = {w: {g for g in ids if implicit_kept(g, w)} for w in (0.0, 0.3, 0.6, 1.0)}
    assert kept[0.0] == set() and kept[1.0] == set(ids)
    assert 0.27 < len(kept[0.3]) / len(ids) < 0.33
    assert 0.57 < len(kept[0.6]) / len(ids) < 0.63
    assert kept[0.3] <= kept[0.6]
    assert kept[0.3] == {g for g in ids if implicit_kept(g, 0.3)}


@pytest.mark.parametrize(("kind", "weight"), [("kto", 1.5), ("kto", -0.1), ("sft", 0.5)])
def test_a_weight_out_of_range_or_for_another_kind_is_refused(kind, weight):
    with pytest.raises(InvalidInput):
        BuildConfig(kind=kind, implicit_weight=weight)
