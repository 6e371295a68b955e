"""Datasets built from signals made through the API: TRL columns, consent, PII, provenance,
pairing rules, dedup, per-user cap, split, hashing and immutability (FakeEngine, hermetic)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import OTHER_ANSWER, new_user
from tandem.data.snapshots import in_test_split, load_snapshot, verify_snapshot

SYSTEM = "You are a careful assistant."
PII = (
    "Reach me at alice.smith@example.com or +1 (555) 123-4567, card 4111 1111 1111 1111, "
    "key sk-proj-Abc123Def456Ghi789Jkl0"
)
BOB_MARKER = "BOBOPTEDOUTMARKER"


@dataclass
class World:
    admin: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    carol: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)
    client: Any = None
    home: Path | None = None


def _conversation(client, headers, system: str | None = SYSTEM) -> str:
    body = {"title": "t"} | ({"system_prompt": system} if system else {})
    r = client.post("/api/conversations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _ask(client, headers, conv: str, text: str, model: str | None = None) -> dict:
    body = {"content": text} | ({"model": model} if model else {})
    r = client.post(f"/api/conversations/{conv}/messages", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _rate(client, headers, turn: dict, rating: str, reasons=()) -> str:
    mid = turn["assistant_message"]["id"]
    r = client.post(
        f"/api/messages/{mid}/feedback",
        json={"rating": rating, "reasons": list(reasons)},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _compare(client, headers, conv: str, text: str, verdict: str) -> dict:
    r = client.post(
        f"/api/conversations/{conv}/comparisons",
        json={"content": text, "model_a": "fake-model", "model_b": "other-model"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = client.post(f"/api/comparisons/{cid}/vote", json={"verdict": verdict}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _improve(client, headers, turn: dict, text: str) -> str:
    mid = turn["assistant_message"]["id"]
    r = client.post(f"/api/messages/{mid}/improve", json={"content": text}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["improvement"]["id"]


def seed(client) -> World:
    """Three users with signals of every kind; bob opts out after giving his."""
    w = World(
        admin=new_user(client, "admin@x.io"),
        alice=new_user(client, "alice@x.io"),
        bob=new_user(client, "bob@x.io"),
        carol=new_user(client, "carol@x.io"),
    )
    ids: dict[str, Any] = {"up": [], "down": [], "improvement": [], "comparison": {}}
    a = w.alice
    conv = _conversation(client, a)
    t_pii = _ask(client, a, conv, PII)
    ids["up"].append(_rate(client, a, t_pii, "up"))
    t_math = _ask(client, a, conv, "What is 2 plus 2?")
    ids["down"].append(_rate(client, a, t_math, "down", ["not_factual"]))
    ids["improvement"].append(_improve(client, a, t_math, "2 plus 2 is 4."))
    ids["improved_text"] = "2 plus 2 is 4."
    # The same question in two fresh conversations: identical prompts, one answer up, one down.
    same = "Name a primary colour."
    t1 = _ask(client, a, _conversation(client, a), same)
    t2 = _ask(client, a, _conversation(client, a), same, model="other-model")
    ids["pair_up"] = _rate(client, a, t1, "up")
    ids["pair_down"] = _rate(client, a, t2, "down", ["too_long"])
    ids["up"].append(ids["pair_up"])
    ids["down"].append(ids["pair_down"])
    cconv = _conversation(client, a)
    for verdict in ("a", "tie", "both_bad"):
        ids["comparison"][verdict] = _compare(
            client, a, cconv, f"Compare {verdict} please", verdict
        )

    b = w.bob
    bconv = _conversation(client, b)
    tb = _ask(client, b, bconv, f"{BOB_MARKER} tell me a story")
    _rate(client, b, tb, "up")
    tb2 = _ask(client, b, bconv, f"{BOB_MARKER} again")
    _rate(client, b, tb2, "down")
    _improve(client, b, tb2, f"{BOB_MARKER} improved")
    _compare(client, b, bconv, f"{BOB_MARKER} compare", "a")
    r = client.patch("/api/auth/me", json={"use_for_training": False}, headers=b)
    assert r.status_code == 200 and r.json()["use_for_training"] is False

    c = w.carol
    for text in (
        "How do I boil an egg?",
        "How do I boil an egg?",  # an exact duplicate (another conversation)
        "Explain photosynthesis in simple words for a curious child who loves plants and gardens.",
        # A near duplicate (shingle Jaccard 0.91 with the question and answer above).
        "Explain photosynthesis in simple words for a curious child who loves plants and garden.",
        "Write a haiku about the sea.",
    ):
        ids["up"].append(_rate(client, c, _ask(client, c, _conversation(client, c), text), "up"))
    w.ids = ids
    return w


def build(client, admin, kind: str, expect: int | None = None, **filters) -> dict:
    """Build through the API; `expect` None accepts new (201) or already built (200)."""
    r = client.post("/api/datasets", json={"kind": kind, "filters": filters}, headers=admin)
    assert r.status_code == expect if expect else r.status_code in (200, 201), r.text
    return r.json()


def rows(home: Path, snapshot_id: str) -> list[dict]:
    snap = load_snapshot(home, snapshot_id)
    out = []
    for path in (snap.train_file, snap.test_file):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def all_text(home: Path, snapshot_id: str) -> str:
    """Every text file of the snapshot, and the Parquet files' rows as JSON."""
    import pyarrow.parquet as pq

    snap = load_snapshot(home, snapshot_id)
    texts = [p.read_text() for p in snap.path.iterdir() if p.suffix in (".jsonl", ".md", ".json")]
    texts += [json.dumps(pq.read_table(p).to_pylist()) for p in snap.path.glob("*.parquet")]
    return "\n".join(texts)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """One seeded app for the module's read-only tests (seeding is most of their cost). Builds
    are content-addressed, so tests that build the same thing share the snapshot."""
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from fake_engine import FakeEngine
    from tandem.core.settings import Settings
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    home = tmp_path_factory.mktemp("data-world")
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'tandem.db'}")
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    catalog.add(FakeEngine("other-model", script=[OTHER_ANSWER]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tandem.store.users._hasher", PasswordHasher(time_cost=1, memory_cost=64))
        with TestClient(create_app(settings, catalog)) as client:
            w = seed(client)
            w.client, w.home = client, home
            yield w


def test_sft_rows_are_trl_messages_without_opted_out_users_or_pii(world):
    client, tandem_home = world.client, world.home
    snap = build(client, world.admin, "sft", test_fraction=0)
    data = rows(tandem_home, snap["id"])
    assert data and all(list(r) == ["messages"] for r in data)
    for r in data:
        assert r["messages"][-1]["role"] == "assistant"
        assert all(set(m) == {"role", "content"} for m in r["messages"])
    # The conversation the model saw, system message included, then the answer.
    pii_row = next(r for r in data if "Reach me at" in r["messages"][-2]["content"])
    assert pii_row["messages"][0] == {"role": "system", "content": SYSTEM}
    assert any(r["messages"][-1]["content"] == world.ids["improved_text"] for r in data)

    blob = all_text(tandem_home, snap["id"])
    assert BOB_MARKER not in blob
    # Whole strings: fragments such as "555" also occur in random hex ids and hashes.
    for secret in ("alice.smith@example.com", "555) 123-4567", "4111 1111 1111 1111", "sk-proj-"):
        assert secret not in blob, secret
    assert "[EMAIL]" in pii_row["messages"][-2]["content"]
    manifest = load_snapshot(tandem_home, snap["id"]).manifest
    # The user message and its echoed answer carry one of every kind, and both appear twice:
    # in the thumbs-up row and as context of the improved answer that follows them.
    assert manifest["scrubbed"] == {"api_key": 4, "card": 4, "email": 4, "phone": 4}


def test_provenance_lists_exactly_the_signals_used(world):
    client, tandem_home = world.client, world.home
    snap = build(client, world.admin, "sft", test_fraction=0, near_duplicate_threshold=1.5)
    signals = client.get(f"/api/datasets/{snap['id']}/signals", headers=world.admin).json()
    # Every consenting thumbs-up except carol's exact duplicate (dropped), every improvement.
    ups = set(world.ids["up"])
    assert set(signals["improvement"]) == set(world.ids["improvement"])
    assert len(set(signals["feedback"]) & ups) == len(ups) - 1
    assert not set(signals["feedback"]) & set(world.ids["down"])
    prov = [
        json.loads(line)
        for line in load_snapshot(tandem_home, snap["id"]).provenance_file.read_text().splitlines()
    ]
    assert len(prov) == snap["counts"]["train"]
    per_row = {i for p in prov for i in p["sources"].get("feedback", [])}
    assert per_row == set(signals["feedback"])
    # The training file holds only TRL's columns; signal ids live only in the sidecar.
    assert all(list(r) == ["messages"] for r in rows(tandem_home, snap["id"]))


def test_preference_pairs_follow_the_tie_and_both_bad_rules(world):
    client, tandem_home = world.client, world.home
    snap = build(client, world.admin, "preference", test_fraction=0)
    data = rows(tandem_home, snap["id"])
    assert all(list(r) == ["chosen", "prompt", "rejected"] for r in data)  # keys sorted on disk
    for r in data:
        assert r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant"
        assert r["prompt"][-1]["role"] == "user"
    comps = world.ids["comparison"]
    voted = next(r for r in data if r["prompt"][-1]["content"] == "Compare a please")
    # The positions are shuffled (blind); the vote response reveals which answer was "a".
    assert voted["chosen"][0]["content"] == comps["a"]["a"]["content"]
    assert voted["rejected"][0]["content"] == comps["a"]["b"]["content"]
    assert {comps["a"]["a"]["content"], comps["a"]["b"]["content"]} == {
        "You said: Compare a please",
        OTHER_ANSWER,
    }
    prompts = {r["prompt"][-1]["content"] for r in data}
    assert "Compare tie please" not in prompts and "Compare both_bad please" not in prompts
    improved = next(r for r in data if r["chosen"][0]["content"] == world.ids["improved_text"])
    assert improved["rejected"][0]["content"] == "You said: What is 2 plus 2?"
    thumbs = next(r for r in data if r["prompt"][-1]["content"] == "Name a primary colour.")
    assert thumbs["chosen"][0]["content"] == "You said: Name a primary colour."
    assert thumbs["rejected"][0]["content"] == OTHER_ANSWER
    signals = client.get(f"/api/datasets/{snap['id']}/signals", headers=world.admin).json()
    assert signals["comparison"] == [comps["a"]["id"]]
    assert {world.ids["pair_up"], world.ids["pair_down"]} == set(signals["feedback"])
    assert BOB_MARKER not in all_text(tandem_home, snap["id"])
    card = load_snapshot(tandem_home, snap["id"]).card_file.read_text()
    assert "tie → no pair" in card and "both_bad → no pair" in card


def test_kto_labels(world):
    client, tandem_home = world.client, world.home
    snap = build(client, world.admin, "kto", test_fraction=0)
    data = rows(tandem_home, snap["id"])
    assert all(list(r) == ["completion", "label", "prompt"] for r in data)
    by_prompt: dict[str, list[bool]] = {}
    for r in data:
        by_prompt.setdefault(r["prompt"][-1]["content"], []).append(r["label"])
    assert sorted(by_prompt["Compare a please"]) == [False, True]
    assert by_prompt["Compare both_bad please"] == [False, False]  # both answers negatives
    assert "Compare tie please" not in by_prompt
    # The thumbs-down and the edited original are the same row (kept once), then the edit.
    assert sorted(by_prompt["What is 2 plus 2?"]) == [False, True]
    assert BOB_MARKER not in all_text(tandem_home, snap["id"])


def test_filters_reasons_model_version_and_dates(world):
    client, tandem_home = world.client, world.home

    def prompts(snap: dict) -> set[str]:
        return {r["prompt"][-1]["content"] for r in rows(tandem_home, snap["id"])}

    # Thumbs-down ratings count only with a listed reason: the colour pair's is "too_long".
    not_factual = build(client, world.admin, "preference", test_fraction=0, reasons=["not_factual"])
    assert "Name a primary colour." not in prompts(not_factual)
    assert (
        "feedback"
        not in client.get(f"/api/datasets/{not_factual['id']}/signals", headers=world.admin).json()
    )
    too_long = build(client, world.admin, "preference", test_fraction=0, reasons=["too_long"])
    assert "Name a primary colour." in prompts(too_long)

    # A comparison is kept when either answer came from the model version; a thumbs pair
    # needs both rated answers from it (here the thumbs-up answer is fake-model's).
    other = build(client, world.admin, "preference", test_fraction=0, model_version="other-model")
    assert prompts(other) == {"Compare a please"}

    voted_at = world.ids["comparison"]["a"]["voted_at"]
    # The same rows as `other`: content-addressed, so the existing snapshot comes back (200).
    recent = build(client, world.admin, "preference", 200, test_fraction=0, since=voted_at)
    assert prompts(recent) == {"Compare a please"} and recent["id"] == other["id"]
    old = build(client, world.admin, "preference", test_fraction=0, until=voted_at)
    assert "Compare a please" not in prompts(old)

    r = client.post(
        "/api/datasets",
        json={"kind": "sft", "filters": {"since": "2999-01-01T00:00:00Z"}},
        headers=world.admin,
    )
    assert r.status_code == 422 and "no examples" in r.json()["error"]["message"]


def test_dedup_and_per_user_cap(world):
    client, tandem_home = world.client, world.home
    full = build(client, world.admin, "sft", test_fraction=0)
    dropped = full["counts"]["dropped"]
    assert dropped["exact_duplicates"] == 1 and dropped["near_duplicates"] == 1
    texts = [r["messages"][-1]["content"] for r in rows(tandem_home, full["id"])]
    assert sum("boil an egg" in t for t in texts) == 1
    assert sum("photosynthesis" in t for t in texts) == 1

    capped = build(client, world.admin, "sft", test_fraction=0, per_user_cap=1)
    assert capped["counts"]["train"] == 2  # alice 1, carol 1; bob never read
    assert capped["counts"]["dropped"]["per_user_cap"] > 0
    signals = client.get(f"/api/datasets/{capped['id']}/signals", headers=world.admin).json()
    assert len(signals["feedback"]) + len(signals.get("improvement", [])) == 2


def test_split_is_deterministic_by_row_hash(world):
    client, tandem_home = world.client, world.home
    snap = load_snapshot(tandem_home, build(client, world.admin, "kto", test_fraction=0.5)["id"])
    train = [json.loads(x) for x in snap.train_file.read_text().splitlines()]
    test = [json.loads(x) for x in snap.test_file.read_text().splitlines()]
    assert train and test
    assert not any(in_test_split(r, 0.5) for r in train)
    assert all(in_test_split(r, 0.5) for r in test)


def test_same_signals_same_hash_and_nothing_rewritten(world):
    client, tandem_home = world.client, world.home
    first = build(client, world.admin, "preference", 201, test_fraction=0.2)
    snap = load_snapshot(tandem_home, first["id"])
    stamps = {p.name: p.stat().st_mtime_ns for p in snap.path.iterdir()}
    again = build(client, world.admin, "preference", 200, test_fraction=0.2)
    assert again["id"] == first["id"] and again["hash"] == first["hash"]
    assert first["hash"].startswith("sha256:") and len(first["hash"]) == 71
    assert {p.name: p.stat().st_mtime_ns for p in snap.path.iterdir()} == stamps
    assert verify_snapshot(snap)
    assert all(p.stat().st_mode & 0o222 == 0 for p in snap.path.iterdir())  # read-only
    listed = client.get("/api/datasets", headers=world.admin).json()
    assert [s["id"] for s in listed].count(first["id"]) == 1


def test_withdrawn_consent_excludes_from_later_snapshots_only(client, tandem_home):
    world = seed(client)  # its own world: alice withdraws consent here
    before = build(client, world.admin, "sft", test_fraction=0)
    r = client.patch("/api/auth/me", json={"use_for_training": False}, headers=world.alice)
    assert r.status_code == 200
    after = build(client, world.admin, "sft", test_fraction=0)
    assert after["hash"] != before["hash"]
    assert "2 plus 2 is 4." not in all_text(tandem_home, after["id"])
    old = load_snapshot(tandem_home, before["id"])
    assert verify_snapshot(old) and "2 plus 2 is 4." in old.train_file.read_text()


def test_load_dataset_reads_jsonl_and_parquet(world, tmp_path):
    client, tandem_home = world.client, world.home
    from datasets import load_dataset

    expected = {
        "sft": {"messages"},
        "preference": {"prompt", "chosen", "rejected"},
        "kto": {"prompt", "completion", "label"},
    }
    for kind, columns in expected.items():
        snap = load_snapshot(tandem_home, build(client, world.admin, kind, test_fraction=0.3)["id"])
        cache = str(tmp_path / "hf-cache")
        js = load_dataset("json", data_files=snap.data_files, cache_dir=cache)
        pq = load_dataset(
            "parquet",
            data_files={"train": str(snap.train_parquet), "test": str(snap.test_parquet)},
            cache_dir=cache,
        )
        assert set(js["train"].column_names) == columns == set(pq["train"].column_names)
        assert js["train"].num_rows == pq["train"].num_rows == snap.manifest["counts"]["train"]
        assert pq["train"][0] == js["train"][0]
