"""tandem.data without a server: PII scrubbing, dedup, snapshot files and resolving, imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.core.errors import InvalidInput, NotFound, PermissionDenied
from tandem.data import snapshots
from tandem.data.dedup import deduplicate
from tandem.data.importing import read_rows, refuse_benchmark_data, validate_rows
from tandem.data.scrub import luhn_valid, scrub_text
from tandem.data.snapshots import (
    content_hash,
    load_snapshot,
    resolve_dataset,
    verify_snapshot,
    write_snapshot,
)


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to ada.l+x@mail.example.co.uk today", "write to [EMAIL] today", "email"),
        ("call +44 20 7946 0958 now", "call [PHONE] now", "phone"),
        ("call (555) 123-4567", "call [PHONE]", "phone"),
        # PII at the end of a sentence: the full stop is not part of the number.
        ("my phone is +1 (555) 123-4567. Bye", "my phone is [PHONE]. Bye", "phone"),
        ("card 4111 1111 1111 1111.", "card [CARD].", "card"),
        ("pay with 4242-4242-4242-4242", "pay with [CARD]", "card"),
        ("my key tk-AbCdEfGh0123456789_-xyz", "my key [API_KEY]", "api_key"),
        ("export OPENAI=sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm", "export OPENAI=[API_KEY]", "api_key"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]", "api_key"),
        ("gh ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "gh [API_KEY]", "api_key"),
        ("t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-42", "t [JWT]", "jwt"),
        ("secret 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "secret [SECRET]", "secret"),
        ("b64 Zm9vYmFyQmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo==", "b64 [SECRET]", "secret"),
    ],
)
def test_scrub_replaces_each_kind_with_its_placeholder(text, expected, kind):
    clean, counts = scrub_text(text)
    assert clean == expected
    assert dict(counts) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 we sold 123456 units at version 3.14159265 on 2024-01-15.",
        "order 4242-4242-4242-4241 failed",  # fails the Luhn check: not a card
        "see /usr/local/lib/python3.11/site-packages and internationalization",
        "x = 12 * 34 + 56",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text):
    assert scrub_text(text) == (text, {})


def test_luhn():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_dedup_exact_near_and_first_wins():
    long = "the quick brown fox jumps over the lazy dog near the quiet river bank at dawn"
    keys = [long, long.upper() + "!", long.replace("dawn", "dusk"), "something else entirely"]
    keep, exact, near = deduplicate(keys, keys, threshold=0.9)
    assert keep == [0, 3] and exact == 1 and near == 1
    keep, exact, near = deduplicate(keys, keys, threshold=1.5)  # near-duplicate removal off
    assert keep == [0, 2, 3] and (exact, near) == (1, 0)


def _rows(n: int) -> list[tuple[dict, dict]]:
    return [
        (
            {
                "messages": [
                    {"role": "user", "content": f"q{i}"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            {"feedback": [f"f{i}"]},
        )
        for i in range(n)
    ]


def _write(home: Path, rows, fraction: float = 0.25):
    return write_snapshot(
        home, "sft", rows, test_fraction=fraction, manifest={}, card=lambda m: m["hash"]
    )


def test_hash_is_named_and_independent_of_row_order(tmp_path):
    a, created = _write(tmp_path / "a", _rows(12))
    b, _ = _write(tmp_path / "b", list(reversed(_rows(12))))
    assert created and a.hash == b.hash and a.hash.startswith("sha256:")
    expected = content_hash(a.train_file.read_bytes(), a.test_file.read_bytes())
    assert a.hash == expected and verify_snapshot(a)
    assert a.card_file.read_text() == a.hash  # the card is rendered from the final manifest


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(snapshots, "_write_parquet", broken)
    with pytest.raises(OSError):
        _write(tmp_path, _rows(3))
    assert list((tmp_path / "datasets").iterdir()) == []
    assert snapshots.list_snapshots(tmp_path) == []


def test_verify_detects_an_edited_file(tmp_path):
    snap, _ = _write(tmp_path, _rows(4), fraction=0)
    snap.train_file.chmod(0o644)
    snap.train_file.write_text(snap.train_file.read_text().replace("q1", "q9"))
    assert not verify_snapshot(snap)


def test_resolve_by_id_hash_prefix_directory_and_file(tmp_path):
    snap, _ = _write(tmp_path, _rows(5))
    hexdigest = snap.hash.split(":")[1]
    assert resolve_dataset(tmp_path, snap.id) == snap
    assert resolve_dataset(tmp_path, hexdigest[:8]).id == snap.id
    assert resolve_dataset(tmp_path, "sha256:" + hexdigest[:10]).id == snap.id
    assert resolve_dataset(tmp_path, snap.path).id == snap.id
    named, _ = write_snapshot(
        tmp_path, "sft", _rows(2), test_fraction=0, manifest={"name": "spec-v1"}, card=str
    )
    assert resolve_dataset(tmp_path, "spec-v1").id == named.id
    loose = resolve_dataset(tmp_path, snap.train_file)
    assert loose.kind == "sft" and loose.train_file == snap.train_file and loose.test_file is None
    assert load_snapshot(tmp_path, snap.id).manifest["counts"]["train"] == loose_rows(loose)
    for bad in ("nope", "abc", "../etc", "0000000000"):
        with pytest.raises(NotFound):
            resolve_dataset(tmp_path, bad)
    with pytest.raises(NotFound):
        load_snapshot(tmp_path, "../" + snap.id)


def loose_rows(snap) -> int:
    return len(snap.train_file.read_text().splitlines())


def test_import_validation(tmp_path):
    good = [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    assert validate_rows(good, "preference", "f") == good
    conversational = [
        {
            "prompt": [{"role": "user", "content": "p"}],
            "completion": [{"role": "assistant", "content": "c"}],
            "label": True,
        }
    ]
    assert validate_rows(conversational, "kto", "f") == conversational
    bad_cases = [
        ([{"prompt": "p", "chosen": "c"}], "preference"),  # a missing column
        ([{"prompt": "p", "chosen": "c", "rejected": "r", "id": 1}], "preference"),  # extra
        ([{"prompt": "p", "completion": "c", "label": "yes"}], "kto"),
        ([{"messages": "not a list"}], "sft"),
        (
            [
                {"prompt": "p", "chosen": "c", "rejected": "r"},
                {"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"},
            ],
            "preference",
        ),  # a column mixing text and messages
    ]
    for rows, kind in bad_cases:
        with pytest.raises(InvalidInput):
            validate_rows(rows, kind, "f")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\n{not json\n')
    with pytest.raises(InvalidInput, match=r"broken\.jsonl:2"):
        read_rows(broken)


def test_benchmark_files_and_their_copies_are_refused(tmp_path):
    bench = tmp_path / "shared" / "data" / "benchmarks"
    (bench / "suite").mkdir(parents=True)
    original = bench / "suite" / "test.jsonl"
    original.write_text(json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}) + "\n")
    with pytest.raises(PermissionDenied, match="evaluation-only"):
        refuse_benchmark_data(original, [bench])
    copy = tmp_path / "innocent.jsonl"
    copy.write_bytes(original.read_bytes())
    with pytest.raises(PermissionDenied, match="same bytes"):
        refuse_benchmark_data(copy, [bench])
    other = tmp_path / "mine.jsonl"
    other.write_text(json.dumps({"prompt": "q", "chosen": "c", "rejected": "r"}) + "\n")
    refuse_benchmark_data(other, [bench])  # not benchmark data: no error


def test_a_vote_between_answers_to_different_system_prompts_makes_no_pair():
    """A behavior experiment's prompt variants answer different messages: a DPO pair needs one
    prompt both answers saw, so such a vote counts in the experiment only."""
    from datetime import UTC, datetime

    from tandem.data.builders import build_preference_pairs
    from tandem.store.datasets import Answer, VotedPair

    question = {"role": "user", "content": "Explain recursion."}
    concise = [{"role": "system", "content": "Be brief."}, question]
    detailed = [{"role": "system", "content": "Be thorough."}, question]
    at = datetime(2026, 12, 1, tzinfo=UTC)

    def vote(a_messages: list, b_messages: list) -> VotedPair:
        a = Answer("g1", "m", a_messages, "A function calling itself.")
        b = Answer("g2", "m", b_messages, "Recursion is when a function calls itself, until...")
        return VotedPair("c1", "u1", "a", at, a, b)

    assert build_preference_pairs([vote(concise, detailed)], [], []) == []
    [same] = build_preference_pairs([vote(concise, concise)], [], [])
    assert same.row["chosen"][0]["content"] == "A function calling itself."
