"""Group commit (tandem.store.group_commit): concurrent writes share one commit, a bad write
fails alone, and nothing is acknowledged before its batch is committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, func, select

from tandem.store import InvalidInput, MemoryRepo, UserRepo, make_engine, migrate
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
