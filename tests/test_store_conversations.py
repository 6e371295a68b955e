"""Store: conversation trees, branches, search, soft delete, profiles, custom instructions,
generation records, feedback, comparisons — and per-user isolation in every repository."""

import pytest

from tandem.core import GenerationRecord, Message, SamplingParams
from tandem.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    CustomInstructionsRepo,
    FeedbackRepo,
    GenerationRepo,
    ProfileRepo,
    UserRepo,
)


@pytest.fixture
def users(session):
    repo = UserRepo(session)
    return repo.create("alice@x.io", "pw-123456"), repo.create("bob@x.io", "pw-123456")


def _record(text: str = "hi", model: str = "fake-model") -> GenerationRecord:
    return GenerationRecord(
        model_version=model,
        engine="fake",
        sampling=SamplingParams(temperature=0.2, seed=7),
        seed=7,
        rendered_prompt="<user>hello\n<assistant>",
        prompt_tokens=2,
        completion_tokens=len(text.split()),
        latency_s=0.01,
        time_to_first_token_s=0.001,
        finish_reason="stop",
    )


def _answer(session, user_id, conv_id, parent_id, text):
    gen = GenerationRepo(session).add(user_id, _record(text), output_text=text)
    return ConversationRepo(session).add_message(
        user_id, conv_id, Message.text("assistant", text), parent_id, generation_id=gen.id
    )


def test_message_tree_and_branches(session, users):
    alice, _ = users
    convs = ConversationRepo(session)
    conv = convs.create(alice.id, "Trip planning", model="fake-model")
    u1 = convs.add_message(alice.id, conv.id, Message.text("user", "hello"), None)
    a1 = _answer(session, alice.id, conv.id, u1.id, "hi there")
    a1b = _answer(session, alice.id, conv.id, u1.id, "hello!")  # regenerate: a sibling
    u2 = convs.add_message(alice.id, conv.id, Message.text("user", "plan a trip"), a1.id)
    u2b = convs.add_message(alice.id, conv.id, Message.text("user", "plan a hike"), a1.id)

    assert len(convs.tree(alice.id, conv.id)) == 5
    assert [m.id for m in convs.branch(alice.id, u2.id)] == [u1.id, a1.id, u2.id]
    assert [m.id for m in convs.branch(alice.id, u2b.id)] == [u1.id, a1.id, u2b.id]
    assert [m.id for m in convs.branch(alice.id, a1b.id)] == [u1.id, a1b.id]
    assert convs.get(alice.id, conv.id).current_message_id == u2b.id
    branch = [m.to_message() for m in convs.branch(alice.id, u2.id)]
    assert branch[-1] == Message.text("user", "plan a trip")
    assert convs.get_message(alice.id, a1.id).generation_id is not None


def test_parent_must_belong_to_the_same_conversation(session, users):
    alice, _ = users
    convs = ConversationRepo(session)
    c1, c2 = convs.create(alice.id, "one"), convs.create(alice.id, "two")
    m = convs.add_message(alice.id, c1.id, Message.text("user", "x"), None)
    with pytest.raises(NotFound):
        convs.add_message(alice.id, c2.id, Message.text("user", "y"), m.id)


def test_list_newest_first_search_rename_soft_delete(session, users):
    alice, bob = users
    convs = ConversationRepo(session)
    a = convs.create(alice.id, "Python questions")
    b = convs.create(alice.id, "Cooking 100% pasta")
    convs.create(bob.id, "Bob's python chat")
    assert [c.id for c in convs.list(alice.id)] == [b.id, a.id]
    convs.add_message(alice.id, a.id, Message.text("user", "hi"), None)  # activity bumps it
    assert [c.id for c in convs.list(alice.id)] == [a.id, b.id]
    assert [c.id for c in convs.list(alice.id, query="PYTHON")] == [a.id]
    assert [c.id for c in convs.list(alice.id, query="100%")] == [b.id]
    assert convs.list(alice.id, query="_") == []  # LIKE wildcards are literal
    convs.rename(alice.id, a.id, "Renamed")
    assert convs.get(alice.id, a.id).title == "Renamed"
    convs.delete(alice.id, a.id)
    assert [c.id for c in convs.list(alice.id)] == [b.id]
    with pytest.raises(NotFound):
        convs.get(alice.id, a.id)


def test_foreign_conversations_behave_like_missing_ones(session, users):
    alice, bob = users
    convs = ConversationRepo(session)
    conv = convs.create(alice.id, "secret")
    msg = convs.add_message(alice.id, conv.id, Message.text("user", "my secret"), None)
    for call in (
        lambda: convs.get(bob.id, conv.id),
        lambda: convs.tree(bob.id, conv.id),
        lambda: convs.branch(bob.id, msg.id),
        lambda: convs.get_message(bob.id, msg.id),
        lambda: convs.rename(bob.id, conv.id, "pwned"),
        lambda: convs.delete(bob.id, conv.id),
        lambda: convs.add_message(bob.id, conv.id, Message.text("user", "x"), msg.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert convs.list(bob.id) == []
    assert convs.get(alice.id, conv.id).title == "secret"
    assert len(convs.tree(alice.id, conv.id)) == 1


def test_generation_records_round_trip_and_are_per_user(session, users):
    alice, bob = users
    gens = GenerationRepo(session)
    row = gens.add(alice.id, _record(), [Message.text("user", "hello")], "hi")
    assert row.to_record() == _record()
    assert row.input_messages == [{"role": "user", "parts": [{"type": "text", "text": "hello"}]}]
    assert gens.get(alice.id, row.id).output_text == "hi"
    with pytest.raises(NotFound):
        gens.get(bob.id, row.id)


def test_feedback_is_append_only(session, users):
    alice, bob = users
    convs = ConversationRepo(session)
    conv = convs.create(alice.id, "c")
    user_msg = convs.add_message(alice.id, conv.id, Message.text("user", "q"), None)
    answer = _answer(session, alice.id, conv.id, user_msg.id, "a")
    fb = FeedbackRepo(session)

    first = fb.rate_message(alice.id, answer.id, "down", ["too_long", "too_long"], "wordy")
    assert first.reasons == ["too_long"] and first.generation_id == answer.generation_id
    second = fb.rate_message(alice.id, answer.id, "up")
    session.refresh(first)
    assert first.superseded_at is not None and first.rating == "down"  # not rewritten
    assert [f.id for f in fb.list(alice.id)] == [second.id]
    assert len(fb.list(alice.id, include_history=True)) == 2
    assert fb.current_for_message(alice.id, answer.id).id == second.id

    with pytest.raises(InvalidInput):
        fb.rate_message(alice.id, answer.id, "down", ["boring"])
    with pytest.raises(InvalidInput):
        fb.rate_message(alice.id, user_msg.id, "up")  # nobody generated a user message
    for call in (
        lambda: fb.rate_message(bob.id, answer.id, "down"),
        lambda: fb.withdraw_message(bob.id, answer.id),
        lambda: fb.withdraw(bob.id, second.id),
        lambda: fb.rate_generation(bob.id, answer.generation_id, "down"),
    ):
        with pytest.raises(NotFound):
            call()
    assert fb.list(bob.id) == []

    withdrawn = fb.withdraw_message(alice.id, answer.id)
    assert withdrawn.id == second.id and withdrawn.withdrawn_at is not None
    assert fb.list(alice.id) == []
    with pytest.raises(NotFound):
        fb.withdraw_message(alice.id, answer.id)


def test_comparisons_vote_once_and_continue_the_branch(session, users):
    alice, bob = users
    convs = ConversationRepo(session)
    conv = convs.create(alice.id, "c")
    q = convs.add_message(alice.id, conv.id, Message.text("user", "q"), None)
    a = _answer(session, alice.id, conv.id, q.id, "answer a")
    b = _answer(session, alice.id, conv.id, q.id, "answer b")
    comps = ComparisonRepo(session)
    comp = comps.create(alice.id, conv.id, q.id, a.id, b.id)
    with pytest.raises(NotFound):
        comps.create(bob.id, conv.id, q.id, a.id, b.id)
    with pytest.raises(NotFound):
        comps.vote(bob.id, comp.id, "a")
    assert comps.list(bob.id) == []
    with pytest.raises(InvalidInput):
        comps.vote(alice.id, comp.id, "c")
    voted = comps.vote(alice.id, comp.id, "b")
    assert voted.verdict == "b" and voted.voted_at is not None
    assert convs.get(alice.id, conv.id).current_message_id == b.id
    with pytest.raises(Conflict):
        comps.vote(alice.id, comp.id, "a")


def test_profiles_are_private_unless_shared(session, users):
    alice, bob = users
    profiles = ProfileRepo(session)
    private = profiles.create(alice.id, "Tutor", instructions="Be Socratic.", starters=["Hi"])
    shared = profiles.create(alice.id, "Editor", shared=True, sampling={"temperature": 0.2})
    assert {p.id for p in profiles.list(alice.id)} == {private.id, shared.id}
    assert [p.id for p in profiles.list(bob.id)] == [shared.id]
    assert profiles.get(bob.id, shared.id).sampling == {"temperature": 0.2}
    with pytest.raises(NotFound):
        profiles.get(bob.id, private.id)
    # Bob sees the shared profile, so he is told no rather than that it does not exist.
    with pytest.raises(PermissionDenied):
        profiles.update(bob.id, shared.id, name="mine now")
    with pytest.raises(PermissionDenied):
        profiles.delete(bob.id, shared.id)
    with pytest.raises(NotFound):
        profiles.update(bob.id, private.id, name="mine now")
    assert profiles.update(alice.id, private.id, name="Math tutor").name == "Math tutor"
    profiles.delete(alice.id, private.id)
    assert [p.id for p in profiles.list(alice.id)] == [shared.id]


def test_custom_instructions_per_user(session, users):
    alice, bob = users
    repo = CustomInstructionsRepo(session)
    assert repo.get(alice.id).about_user == "" and repo.get(alice.id).enabled
    repo.put(alice.id, "I am a nurse.", "Short answers.", enabled=True)
    repo.put(alice.id, "I am a nurse.", "Bullet points.", enabled=False)
    got = repo.get(alice.id)
    assert (got.response_style, got.enabled) == ("Bullet points.", False)
    assert repo.get(bob.id).about_user == ""
