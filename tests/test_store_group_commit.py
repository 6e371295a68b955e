"""Group commit (tandem.store.group_commit): concurrent writes share one commit, a bad write
fails alone, and nothing is acknowledged before its batch is committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, func, select

from tandem.core.errors import InvalidInput
from tandem.store import MemoryRepo, UserRepo, make_engine, migrate
from tandem.store.db import make_session_factory
from tandem.store.group_commit import BatchSession, GroupCommit
from tandem.store.models import Memory


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _user(factory) -> str:
    with factory() as session:
        return UserRepo(session).create("gc@example.com", "password-123").id


def _memories(factory, user_id: str) -> list[str]:
    with factory() as session:
        return sorted(m.text for m in MemoryRepo(session).list(user_id))


def _commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


def test_queued_writes_share_one_commit_and_each_gets_its_own_result(engine: Engine) -> None:
    factory = make_session_factory(engine)
    user_id = _user(factory)
    writes = GroupCommit(factory)
    started, release = threading.Event(), threading.Event()

    def first(session):
        started.set()
        release.wait(10)  # holds the writer so the next 20 queue up behind it
        return MemoryRepo(session).create(user_id, "first").text

    commits = _commits(engine)
    head = writes.submit(first)
    assert started.wait(10)
    queued = [
        writes.submit(lambda s, i=i: MemoryRepo(s).create(user_id, f"m{i:02d}").text)
        for i in range(20)
    ]
    assert not any(f.done() for f in queued)
    release.set()
    assert head.result(10) == "first"
    assert [f.result(10) for f in queued] == [f"m{i:02d}" for i in range(20)]
    writes.close()
    assert len(commits) == 2  # the held write's batch, then the 20 together
    assert _memories(factory, user_id) == ["first", *(f"m{i:02d}" for i in range(20))]


def test_a_failing_write_is_rolled_back_alone(engine: Engine) -> None:
    factory = make_session_factory(engine)
    user_id = _user(factory)
    writes = GroupCommit(factory)
    release = threading.Event()
    head = writes.submit(lambda s: release.wait(10))

    def half_then_fail(session):
        MemoryRepo(session).create(user_id, "half")  # written, then undone with its savepoint
        raise InvalidInput("bad item")

    before = writes.submit(lambda s: MemoryRepo(s).create(user_id, "before").text)
    bad = writes.submit(half_then_fail)
    after = writes.submit(lambda s: MemoryRepo(s).create(user_id, "after").text)
    release.set()
    head.result(10)
    assert before.result(10) == "before" and after.result(10) == "after"
    with pytest.raises(InvalidInput, match="bad item"):
        bad.result(10)
    writes.close()
    assert _memories(factory, user_id) == ["after", "before"]


def test_a_failed_commit_acknowledges_nothing_of_its_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = make_session_factory(engine)
    user_id = _user(factory)
    writes = GroupCommit(factory)

    def refuse(_session) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(BatchSession, "commit_batch", refuse)
    futures = [
        writes.submit(lambda s, i=i: MemoryRepo(s).create(user_id, f"x{i}")) for i in range(3)
    ]
    for future in futures:
        with pytest.raises(OSError, match="disk full"):
            future.result(10)
    writes.close()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Memory)) == 0


def test_writes_after_close_start_a_new_writer(engine: Engine) -> None:
    # An app's lifespan can run more than once (several TestClients on one app).
    factory = make_session_factory(engine)
    user_id = _user(factory)
    writes = GroupCommit(factory)
    assert writes.run(lambda s: MemoryRepo(s).create(user_id, "one").text) == "one"
    writes.close()
    assert writes.run(lambda s: MemoryRepo(s).create(user_id, "two").text) == "two"
    writes.close()
    assert _memories(factory, user_id) == ["one", "two"]


def test_a_batch_of_ratings_is_applied_as_one_rating_after_another(engine: Engine) -> None:
    # Ratings are applied together (Rating.apply_all: a few statements per batch, not per
    # rating); each gets what rate_message/rate_generation alone would give, in order.
    from tandem.core import GenerationRecord, Message, SamplingParams
    from tandem.core.errors import NotFound
    from tandem.store import ConversationRepo, FeedbackRepo, GenerationRepo
    from tandem.store.feedback import Rating

    factory = make_session_factory(engine)
    record = GenerationRecord(
        model_version="fake-model",
        engine="fake",
        sampling=SamplingParams(),
        seed=1,
        rendered_prompt="q",
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.01,
        time_to_first_token_s=0.001,
        finish_reason="stop",
    )
    with factory() as session:
        alice = UserRepo(session).create("alice@example.com", "password-123").id
        bob = UserRepo(session).create("bob@example.com", "password-123").id
        convs = ConversationRepo(session)
        conv = convs.create(alice, "c").id
        question = convs.add_message(alice, conv, Message.text("user", "q"), None).id
        answers, generations = [], []
        for text in ("a", "b"):
            gen = GenerationRepo(session).add(alice, record, output_text=text)
            generations.append(gen.id)
            answers.append(
                convs.add_message(
                    alice, conv, Message.text("assistant", text), question, generation_id=gen.id
                ).id
            )
        bob_gen = GenerationRepo(session).add(bob, record, output_text="x").id
        first = FeedbackRepo(session).rate_message(alice, answers[0], "down", (), "before")

    writes = GroupCommit(factory)
    release = threading.Event()
    head = writes.submit(lambda s: release.wait(10))
    ratings = [
        Rating(alice, "up", ("too_long", "too_long"), "one", message_id=answers[0]),
        Rating(bob, "up", message_id=answers[0]),  # not bob's: 404
        Rating(alice, "up", message_id=question),  # no model answered it: 422
        Rating(alice, "down", ("boring",), message_id=answers[1]),  # unknown reason: 422
        Rating(alice, "down", (), "two", message_id=answers[0]),  # the same answer again
        Rating(alice, "up", (), "three", generation_id=generations[1]),
        Rating(alice, "up", generation_id=bob_gen),  # bob's generation: 404
        Rating(alice, "up", message_id="nosuchmessage"),
    ]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    futures = [writes.submit(r) for r in ratings]
    release.set()
    head.result(10)
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(10))
        except Exception as exc:
            outcomes.append(exc)
    writes.close()
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "Feedback",
        "NotFound",
        "InvalidInput",
        "InvalidInput",
        "Feedback",
        "Feedback",
        "NotFound",
        "NotFound",
    ]
    assert isinstance(outcomes[1], NotFound) and isinstance(outcomes[7], NotFound)
    one, two, three = outcomes[0], outcomes[4], outcomes[5]
    assert one.reasons == ["too_long"] and one.generation_id == generations[0]
    assert one.superseded_at is not None and two.superseded_at is None  # two came after one
    assert two.created_at > one.created_at
    assert three.message_id is None and three.generation_id == generations[1]
    writes_sql = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert len(writes_sql) <= 4  # two rounds (answer 0 twice) of one UPDATE + one INSERT

    with factory() as session:
        fb = FeedbackRepo(session)
        assert sorted(f.comment for f in fb.list(alice)) == ["three", "two"]
        history = {f.comment: f for f in fb.list(alice, include_history=True)}
        assert set(history) == {"before", "one", "two", "three"}
        assert history["before"].superseded_at is not None
        assert history["one"].superseded_at == two.created_at
        assert history["two"].rating == "down" and history["two"].superseded_at is None
        assert fb.list(bob) == []
    assert first.id in {f.id for f in history.values()}
