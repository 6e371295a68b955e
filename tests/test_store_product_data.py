"""Store and chat pieces of the product issue: memories, improvements (including what dataset
builders read), upload sniffing and storage, "remember that" detection, and prompt rendering.
Database tests run on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest

from tandem.chat.memory_requests import memory_request
from tandem.chat.render import MEMORIES_HEADING, render_system_prompt
from tandem.core import GenerationRecord, Message, SamplingParams
from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.images import sniff_image_mime
from tandem.store import (
    ConversationRepo,
    GenerationRepo,
    ImprovementRepo,
    MemoryRepo,
    UploadRepo,
    UserRepo,
)
from tandem.store.memories import MAX_MEMORIES
from tandem.store.models import utcnow
from tandem.store.uploads import sanitise_filename


@pytest.fixture
def users(session):
    repo = UserRepo(session)
    return repo.create("alice@x.io", "pw-123456"), repo.create("bob@x.io", "pw-123456")


def _answered(session, user_id, text="answer"):
    convs = ConversationRepo(session)
    conv = convs.create(user_id)
    question = convs.add_message(user_id, conv.id, Message.text("user", "q"), None)
    record = GenerationRecord(
        model_version="fake-model",
        engine="fake",
        sampling=SamplingParams(),
        seed=None,
        rendered_prompt="<user>q\n<assistant>",
        prompt_tokens=2,
        completion_tokens=1,
        latency_s=0.01,
        time_to_first_token_s=None,
        finish_reason="stop",
    )
    gen = GenerationRepo(session).add(user_id, record, output_text=text)
    answer = convs.add_message(
        user_id, conv.id, Message.text("assistant", text), question.id, generation_id=gen.id
    )
    return conv, answer, gen


def test_memories_are_per_user_soft_deleted_and_capped(session, users):
    alice, bob = users
    repo = MemoryRepo(session)
    first = repo.create(alice.id, "x" * 1200)
    assert len(first.text) == 1000
    with pytest.raises(NotFound):
        repo.update(bob.id, first.id, "mine")
    with pytest.raises(NotFound):
        repo.delete(bob.id, first.id)
    with pytest.raises(InvalidInput):
        repo.create(alice.id, "  ")
    repo.delete(alice.id, first.id)
    assert repo.list(alice.id) == [] and repo.count(alice.id) == 0
    for i in range(MAX_MEMORIES):
        repo.create(bob.id, f"fact {i}")
    with pytest.raises(Conflict):
        repo.create(bob.id, "one too many")
    assert [m.text for m in repo.list(bob.id)][:2] == ["fact 0", "fact 1"]


def test_improvements_for_datasets_span_users_and_skip_withdrawn(session, users):
    alice, bob = users
    repo = ImprovementRepo(session)
    start = utcnow() - timedelta(seconds=1)
    _, a_answer, a_gen = _answered(session, alice.id)
    _, b_answer, b_gen = _answered(session, bob.id)
    a_row, a_msg = repo.create(alice.id, a_answer.id, "better A")
    b_row, _ = repo.create(bob.id, b_answer.id, "better B")
    _, c_answer, _ = _answered(session, bob.id)
    c_row, _ = repo.create(bob.id, c_answer.id, "better C")
    repo.withdraw(bob.id, c_row.id)

    rows = repo.list_for_datasets()
    assert [r.id for r in rows] == [a_row.id, b_row.id]
    assert (rows[0].original_generation_id, rows[0].text) == (a_gen.id, "better A")
    assert rows[1].original_generation_id == b_gen.id
    assert repo.list_for_datasets(since=utcnow()) == []
    assert [r.id for r in repo.list_for_datasets(since=start, until=b_row.created_at)] == [a_row.id]
    # Withdrawn rows stay in the table.
    assert repo.get(bob.id, c_row.id).withdrawn_at is not None
    assert a_msg.generation_id is None and a_msg.parent_id == a_answer.parent_id
    with pytest.raises(NotFound):
        repo.create(bob.id, a_answer.id, "not mine")
    with pytest.raises(NotFound):
        repo.withdraw(bob.id, a_row.id)


def test_upload_sniffing_and_storage(session, users, tandem_home):
    alice, bob = users
    assert sniff_image_mime(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert sniff_image_mime(b"\xff\xd8\xff\xdb") == "image/jpeg"
    assert sniff_image_mime(b"GIF87a....") == "image/gif"
    assert sniff_image_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    for not_an_image in (b"<svg/>", b"<html>", b"RIFF\x00\x00\x00\x00WAVE", b"", b"BM6"):
        assert sniff_image_mime(not_an_image) is None
    assert sanitise_filename("../a b.png") == "a b.png" and sanitise_filename(None) == "image"

    repo = UploadRepo(session, tandem_home / "uploads")
    row = repo.create(alice.id, "a.png", b"\x89PNG\r\n\x1a\nrest")
    assert repo.path(row).read_bytes() == b"\x89PNG\r\n\x1a\nrest"
    assert [p.name for p in repo.path(row).parent.iterdir()] == [row.id]  # no temp files left
    with pytest.raises(NotFound):
        repo.get(bob.id, row.id)
    with pytest.raises(InvalidInput):
        repo.create(alice.id, "b.png", b"<svg onload=alert(1)>")
    assert repo.list(alice.id) == [row]


@pytest.mark.parametrize(
    "text, clause",
    [
        ("remember that I am vegan", "I am vegan"),
        ("Please remember: my name is Ada", "my name is Ada"),
        ("REMEMBER my dog is Rex", "my dog is Rex"),
        ("don't forget that I work nights", "I work nights"),
        ("Also, don’t forget my sister is Eve", "my sister is Eve"),
        ("Do you remember that film?", None),
        ("remember", None),
        ("What should I remember?", None),
        ("hello", None),
    ],
)
def test_memory_requests(text, clause):
    assert memory_request(text) == clause


def test_memories_come_after_custom_instructions_in_the_system_message():
    system = render_system_prompt(
        about_user="I am a nurse.",
        response_style="Short.",
        profile_instructions="You are a tutor.",
        system_prompt="Chat prompt.",
        memories=["I live in Lyon", "  ", "I have\na cat"],
    )
    assert system == (
        "About the user: I am a nurse.\n\nHow to respond: Short.\n\n"
        f"{MEMORIES_HEADING}\n- I live in Lyon\n- I have a cat\n\n"
        "You are a tutor.\n\nChat prompt."
    )
    assert render_system_prompt(memories=[]) is None
