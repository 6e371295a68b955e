"""The chat service: rendering, continuing, regenerating, editing, comparing, cancelling."""

import asyncio

import pytest

from fake_engine import FakeEngine
from tandem.chat import ChatService, render_messages, render_system_prompt
from tandem.core import Message
from tandem.core.errors import InvalidInput, NotFound
from tandem.engines import ModelCatalog, ModelNotFound
from tandem.store import (
    ConversationRepo,
    CustomInstructionsRepo,
    GenerationRepo,
    ProfileRepo,
    UserRepo,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def setup(session_factory):
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    catalog.add(FakeEngine("other-model", script=["Other answer here."]))
    with session_factory() as s:
        alice = UserRepo(s).create("alice@x.io", "pw-123456")
        bob = UserRepo(s).create("bob@x.io", "pw-123456")
        conv = ConversationRepo(s).create(alice.id)
    return ChatService(session_factory, catalog), session_factory, alice.id, bob.id, conv.id


def test_render_system_prompt_joins_sections_in_order():
    text = render_system_prompt("I teach.", "Be brief.", "You are a tutor.", "Use French.")
    assert text == (
        "About the user: I teach.\n\nHow to respond: Be brief.\n\nYou are a tutor.\n\nUse French."
    )
    assert render_system_prompt() is None
    msgs = render_messages("S", [Message.text("system", "old"), Message.text("user", "hi")])
    assert [m.role for m in msgs] == ["system", "user"] and msgs[0].content == "S"


async def test_send_streams_and_records_everything(setup):
    service, factory, alice, _, conv_id = setup
    turn = service.send(alice, conv_id, "hello there", sampling={"seed": 3, "temperature": 0})
    chunks = [c async for c in turn.stream()]
    assert "".join(c.text for c in chunks) == "You said: hello there"
    assert chunks[-1].finish_reason == "stop"
    gen = turn.generation
    assert gen.model_version == "fake-model" and gen.backend == "fake"
    assert gen.seed == 3 and gen.sampling["temperature"] == 0
    assert gen.rendered_prompt == "<user>hello there\n<assistant>"
    assert gen.completion_tokens == 4 and gen.finish_reason == "stop"
    assert gen.latency_s >= 0 and gen.time_to_first_token_s is not None
    assert turn.assistant_message.generation_id == gen.id
    assert turn.assistant_message.parent_id == turn.user_message.id
    with factory() as s:
        conv = ConversationRepo(s).get(alice, conv_id)
        assert conv.title == "hello there"  # first message names the chat
        assert conv.current_message_id == turn.assistant_message.id


async def test_instructions_profile_and_system_prompt_reach_the_model(setup):
    service, factory, alice, _, _ = setup
    with factory() as s:
        CustomInstructionsRepo(s).put(alice, "I am a nurse.", "Short answers.")
        profile = ProfileRepo(s).create(
            alice, "Tutor", instructions="Be Socratic.", sampling={"max_tokens": 2}
        )
        conv = ConversationRepo(s).create(
            alice, "t", profile_id=profile.id, system_prompt="Answer in French."
        )
    turn = await service.send(alice, conv.id, "one two three").run()
    system = turn.messages[0]
    assert system.role == "system"
    assert system.content == (
        "About the user: I am a nurse.\n\nHow to respond: Short answers.\n\n"
        "Be Socratic.\n\nAnswer in French."
    )
    assert turn.generation.finish_reason == "length"  # the profile's max_tokens applied
    with factory() as s:
        CustomInstructionsRepo(s).put(alice, "I am a nurse.", "Short answers.", enabled=False)
    turn = await service.send(alice, conv.id, "again").run()
    assert "nurse" not in turn.messages[0].content


async def test_multi_turn_regenerate_and_edit_branch(setup):
    service, factory, alice, _, conv_id = setup
    first = await service.send(alice, conv_id, "first").run()
    second = await service.send(alice, conv_id, "second").run()
    assert [m.content for m in second.messages] == ["first", "You said: first", "second"]

    regen = await service.regenerate(alice, second.assistant_message.id, model="other-model").run()
    assert regen.assistant_message.parent_id == second.user_message.id
    assert regen.user_message is None and regen.text == "Other answer here."

    edited = await service.edit(alice, second.user_message.id, "second, edited").run()
    assert edited.user_message.parent_id == first.assistant_message.id
    assert edited.messages[-1].content == "second, edited"
    with factory() as s:
        tree = ConversationRepo(s).tree(alice, conv_id)
    assert len(tree) == 2 + 3 + 2
    with pytest.raises(InvalidInput):
        service.regenerate(alice, second.user_message.id)
    with pytest.raises(InvalidInput):
        service.edit(alice, second.assistant_message.id, "x")


async def test_abandoned_stream_is_recorded_as_cancelled(session_factory):
    catalog = ModelCatalog(default_model="slow")
    catalog.add(FakeEngine("slow", script=["one two three four five six"], delay_s=0.01))
    with session_factory() as s:
        user = UserRepo(s).create("c@x.io", "pw-123456")
        conv = ConversationRepo(s).create(user.id)
    service = ChatService(session_factory, catalog)
    turn = service.send(user.id, conv.id, "go")
    stream = turn.stream()
    assert (await anext(stream)).text == "one"
    await stream.aclose()  # what a disconnecting client does
    assert turn.generation.finish_reason == "cancelled"
    assert turn.assistant_message.parts == [{"type": "text", "text": "one"}]

    # A cancelled task (server shutdown, client gone mid-await) records too.
    turn2 = service.send(user.id, conv.id, "again")
    task = asyncio.create_task(turn2.run())
    await asyncio.sleep(0.025)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turn2.generation.finish_reason == "cancelled"


async def test_foreign_or_unknown_things_fail_before_generating(setup):
    service, factory, alice, bob, conv_id = setup
    turn = await service.send(alice, conv_id, "mine").run()
    with pytest.raises(NotFound):
        service.send(bob, conv_id, "x")
    with pytest.raises(NotFound):
        service.regenerate(bob, turn.assistant_message.id)
    with pytest.raises(NotFound):
        service.edit(bob, turn.user_message.id, "x")
    with pytest.raises(ModelNotFound):
        service.send(alice, conv_id, "x", model="nope")
    with factory() as s:
        assert len(ConversationRepo(s).tree(alice, conv_id)) == 2  # nothing was stored


async def test_generate_outside_a_conversation(setup):
    service, factory, alice, bob, _ = setup
    turn = await service.generate(alice, [Message.text("user", "hi")], "fake-model").run()
    assert turn.assistant_message is None and turn.text == "You said: hi"
    with factory() as s:
        assert GenerationRepo(s).get(alice, turn.generation.id).output_text == "You said: hi"
        with pytest.raises(NotFound):
            GenerationRepo(s).get(bob, turn.generation.id)


async def test_compare_two_models(setup):
    service, factory, alice, _, conv_id = setup
    outcome = await service.compare(
        alice, conv_id, text="which?", models=("fake-model", "other-model")
    ).run()
    comp = outcome.comparison
    texts = {outcome.answer_a.text, outcome.answer_b.text}
    assert texts == {"You said: which?", "Other answer here."}
    assert comp.message_a_id == outcome.answer_a.assistant_message.id
    assert comp.parent_message_id == outcome.user_message.id
    # Until the vote, the chat continues from answer A (the sides are shuffled).
    with factory() as s:
        assert ConversationRepo(s).get(alice, conv_id).current_message_id == comp.message_a_id
