"""The dataset queries and snapshot records, on SQLite and PostgreSQL: consent, current
ratings only, deleted conversations, profiles, dates, and the signal ids a snapshot read."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tandem.core import GenerationRecord, Message, SamplingParams
from tandem.core.errors import NotFound
from tandem.data.build import BuildConfig, build_snapshot
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    DatasetRepo,
    FeedbackRepo,
    GenerationRepo,
    ImprovementRepo,
    ProfileRepo,
    UserRepo,
)
from tandem.store.datasets import SignalFilters, SnapshotRecord
from tandem.store.models import utcnow


def _record(model: str) -> GenerationRecord:
    return GenerationRecord(
        model_version=model,
        engine="fake",
        sampling=SamplingParams(),
        seed=1,
        rendered_prompt=None,
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.0,
        time_to_first_token_s=None,
        finish_reason="stop",
    )


def _turn(session, user_id, conv_id, question, answer, model="m1", parent=None):
    convs = ConversationRepo(session)
    q = convs.add_message(user_id, conv_id, Message.text("user", question), parent)
    gen = GenerationRepo(session).add(
        user_id, _record(model), [Message.text("user", question)], output_text=answer
    )
    a = convs.add_message(
        user_id, conv_id, Message.text("assistant", answer), q.id, generation_id=gen.id
    )
    return q, a


@pytest.fixture
def world(session):
    users = UserRepo(session)
    alice, bob = users.create("alice@x.io", "pw-123456"), users.create("bob@x.io", "pw-123456")
    convs, feedback = ConversationRepo(session), FeedbackRepo(session)
    profile = ProfileRepo(session).create(alice.id, name="tutor")
    conv = convs.create(alice.id, profile_id=profile.id)
    _, kept = _turn(session, alice.id, conv.id, "q1", "a1")
    feedback.rate_message(alice.id, kept.id, "down")
    up = feedback.rate_message(alice.id, kept.id, "up")  # supersedes the down
    _, withdrawn = _turn(session, alice.id, conv.id, "q2", "a2", model="m2")
    feedback.rate_message(alice.id, withdrawn.id, "up")
    feedback.withdraw_message(alice.id, withdrawn.id)
    gone = convs.create(alice.id)
    _, in_deleted = _turn(session, alice.id, gone.id, "q3", "a3")
    feedback.rate_message(alice.id, in_deleted.id, "up")
    convs.delete(alice.id, gone.id)
    q4, a4 = _turn(session, alice.id, conv.id, "q4", "a4", model="m1")
    gen_b = GenerationRepo(session).add(
        alice.id, _record("m2"), [Message.text("user", "q4")], output_text="b4"
    )
    b4 = convs.add_message(
        alice.id, conv.id, Message.text("assistant", "b4"), q4.id, generation_id=gen_b.id
    )
    comp = ComparisonRepo(session).create(alice.id, conv.id, q4.id, a4.id, b4.id)
    ComparisonRepo(session).vote(alice.id, comp.id, "b")
    improvement, _ = ImprovementRepo(session).create(alice.id, a4.id, "a better a4")
    bconv = convs.create(bob.id)
    _, bob_answer = _turn(session, bob.id, bconv.id, "bob q", "bob a")
    feedback.rate_message(bob.id, bob_answer.id, "up")
    users.update_me(bob.id, use_for_training=False)
    return {
        "alice": alice,
        "profile": profile,
        "up": up,
        "comparison": comp,
        "improvement": improvement,
    }


def test_signal_queries_enforce_consent_current_ratings_and_live_conversations(session, world):
    repo = DatasetRepo(session)
    rated = repo.rated_answers()
    # Only alice's current, non-withdrawn rating in a live conversation; bob opted out.
    assert [(r.feedback_id, r.rating) for r in rated] == [(world["up"].id, "up")]
    assert rated[0].answer.input_messages[-1]["parts"][0]["text"] == "q1"
    pairs = repo.voted_pairs()
    assert [(p.comparison_id, p.verdict, p.b.output_text) for p in pairs] == [
        (world["comparison"].id, "b", "b4")
    ]
    improved = repo.improved_answers()
    assert [(i.improvement_id, i.text, i.original.output_text) for i in improved] == [
        (world["improvement"].id, "a better a4", "a4")
    ]


def test_signal_filters(session, world):
    repo = DatasetRepo(session)
    assert repo.rated_answers(SignalFilters(model_version="m2")) == []
    assert len(repo.voted_pairs(SignalFilters(model_version="m2"))) == 1  # either answer
    assert len(repo.rated_answers(SignalFilters(profile_id=world["profile"].id))) == 1
    assert repo.rated_answers(SignalFilters(profile_id="elsewhere")) == []
    later = utcnow() + timedelta(minutes=1)
    assert repo.improved_answers(SignalFilters(since=later)) == []
    assert len(repo.improved_answers(SignalFilters(until=later))) == 1


def test_snapshot_records_and_signal_ids(session, world, tandem_home):
    result = build_snapshot(session, tandem_home, BuildConfig(kind="preference", test_fraction=0))
    repo = DatasetRepo(session)
    assert repo.get_snapshot(result.snapshot.id).hash == result.snapshot.hash
    signals = repo.snapshot_signals(result.snapshot.id)
    assert signals["comparison"] == [world["comparison"].id]
    assert signals["improvement"] == [world["improvement"].id]
    assert repo.snapshots_using("comparison", world["comparison"].id) == [result.snapshot.id]
    # Recording again is a no-op, not a duplicate-key error.
    again = build_snapshot(session, tandem_home, BuildConfig(kind="preference", test_fraction=0))
    assert not again.created and [r.id for r in repo.list_snapshots()] == [result.snapshot.id]
    repo.record_snapshot(
        SnapshotRecord(id=result.snapshot.id, kind="x", hash="x", path="x", source="x"), {}
    )
    assert repo.get_snapshot(result.snapshot.id).kind == "preference"
    with pytest.raises(NotFound):
        repo.snapshot_signals("missing")
