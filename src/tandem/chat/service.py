"""Continuing conversations: store the user's turn, stream the engine's answer, record it.

    service = ChatService(session_factory, catalog)
    turn = service.send(user_id, conversation_id, "Hello!")   # raises NotFound / ModelNotFound
    async for chunk in turn.stream():                          # or: await turn.run()
        print(chunk.text, end="")
    turn.assistant_message, turn.generation                    # stored when the stream ends
    turn.memory_saved, turn.notice                             # "remember that …", no-images

Each operation reads what it needs and stores the user's message in one transaction
(tandem.chat.context, tandem.chat.branch), then plans the answer: the prompt is fitted into the
model's context, encoded and checked once, and the stream uses that encoded prompt
(tandem.chat.turn). On a share of turns (`comparison_rate`) `send` answers with a blind
comparison instead (tandem.chat.comparison), decided in that same transaction.

Memory: while it is on for the user and the chat, the user's memories are listed in the
system message, and a user message that asks to remember something ("remember that …",
"don't forget …") saves the clause as a memory before the model answers.

Everything that can fail on bad input (a foreign conversation, an unknown model, a prompt too
long for the model) fails in `send`/`regenerate`/`edit`, before any token is generated, so an
HTTP layer can answer 4xx before it starts a stream. No HTTP here.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.chat.branch import (
    Branch,
    add_user_message,
    checked_parent,
    image_parts,
    read_branch,
    remember,
)
from tandem.chat.comparison import ComparisonTurn
from tandem.chat.context import ChatContext, load_context
from tandem.chat.implicit_signals import note_edit_resend, note_followup
from tandem.chat.titles import ChatTitles
from tandem.chat.tool_access import ConversationFiles, UserUploads
from tandem.chat.tool_rounds import ToolPlan
from tandem.chat.turn import Turn, plan_turn
from tandem.core.errors import InvalidInput
from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.core.settings import Settings
from tandem.engines.base import Engine
from tandem.engines.catalog import ModelCatalog
from tandem.rollout.routing import served_version
from tandem.store import ConversationRepo, GenerationRepo, SessionFactory, one_transaction
from tandem.store.models import Memory, StoredMessage
from tandem.tools.base import ToolContext, get_tool, tool_names


class ChatService:
    def __init__(
        self,
        session_factory: SessionFactory,
        catalog: ModelCatalog,
        default_model: str | None = None,
        rng: random.Random | None = None,
        uploads_root: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.catalog = catalog
        # Tools need it (where files live, which backends exist); chat without tools does not.
        self.settings = settings
        # Where uploaded images live, to hand their bytes to models that can see images.
        self.uploads_root = uploads_root
        self.default_model = default_model
        # Draws which turns become comparisons and shuffles their sides; seedable for tests.
        self.rng = rng or random.Random()
        self.titles = ChatTitles(session_factory) if settings and settings.chat_titles else None

    # -- the operations ---------------------------------------------------------------------

    def send(
        self,
        user_id: str,
        conversation_id: str,
        text: str,
        parent_id: str | None = None,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
        attachments: Sequence[str] = (),
        tools: Sequence[str] = (),
    ) -> Turn | ComparisonTurn:
        """Add a user message under `parent_id` (default: the conversation's current message),
        with `attachments` (upload ids) as image parts, and prepare the answer, with `tools`
        (names) switched on for it besides the profile's. On a share of turns (admin setting
        `comparison_rate`) the answer is a blind comparison: two answers, the profile's tools
        only."""
        with one_transaction(self.session_factory) as session:
            ctx = self._load(session, user_id, conversation_id, model, draw=self.rng)
            if ctx.compared is None:
                self._check_tools(tools)
            parent = checked_parent(session, ctx, parent_id)
            images = image_parts(session, user_id, attachments)
            question = add_user_message(session, ctx, text, parent, images)
            note_followup(session, user_id, parent, text, question.id)
            # Saved once the message is, and before the prompt is rendered, so it is in it.
            memory = remember(session, ctx, text)
            ctx = ctx.remembering(memory)
            branch = self._branch(session, ctx, question, created=True)
        if ctx.compared is not None:
            return self._comparison(ctx, branch, ctx.sampling(sampling), memory)
        turn = self._turn(ctx, ctx.engine, branch, ctx.sampling(sampling), tools=tools)
        turn.memory_saved = memory
        return turn

    def regenerate(
        self,
        user_id: str,
        message_id: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """A new answer to the same user message: a sibling of assistant message `message_id`."""
        with one_transaction(self.session_factory) as session:
            answer = ConversationRepo(session).get_message(user_id, message_id)
            if answer.role != "assistant" or answer.parent_id is None:
                raise InvalidInput("only an assistant message can be regenerated")
            question = ConversationRepo(session).get_message(user_id, answer.parent_id)
            # The tools of the answer being regenerated are switched on again: those that ran
            # before it and those its model called (offered, they were switched on too).
            record = answer.generation_id and GenerationRepo(session).get(
                user_id, answer.generation_id
            )
            tools = list(dict.fromkeys(c["tool"] for c in (record.tool_calls if record else [])))
            ctx = self._load(session, user_id, answer.conversation_id, model)
            branch = self._branch(session, ctx, question, created=False)
            branch = dataclasses.replace(branch, regenerates=answer)
        return self._turn(ctx, ctx.engine, branch, ctx.sampling(sampling), tools=tools)

    def continue_answer(
        self,
        user_id: str,
        message_id: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """More of assistant message `message_id` (one cut by the token cap or a loop): the
        model goes on writing it, and the whole answer becomes a new version beside it. Its
        tools do not run again."""
        with one_transaction(self.session_factory) as session:
            convs = ConversationRepo(session)
            answer = convs.get_message(user_id, message_id)
            if answer.role != "assistant" or answer.parent_id is None:
                raise InvalidInput("only an assistant message can be continued")
            if not answer.to_message().content.strip():
                raise InvalidInput("an empty answer cannot be continued; regenerate it instead")
            question = convs.get_message(user_id, answer.parent_id)
            ctx = self._load(session, user_id, answer.conversation_id, model)
            branch = self._branch(session, ctx, question, created=False, continues=answer)
        return self._turn(ctx, ctx.engine, branch, ctx.sampling(sampling))

    def edit(
        self,
        user_id: str,
        message_id: str,
        text: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Edit-and-branch: a new user message beside `message_id` (same parent), answered.
        The edited message keeps the original's images."""
        with one_transaction(self.session_factory) as session:
            original = ConversationRepo(session).get_message(user_id, message_id)
            if original.role != "user":
                raise InvalidInput("only a user message can be edited")
            ctx = self._load(session, user_id, original.conversation_id, model)
            images = [p for p in original.to_message().parts if p.type == "image"]
            shown = ctx.conversation.current_message_id  # before the edit moves it
            question = add_user_message(session, ctx, text, original.parent_id, images)
            note_edit_resend(session, user_id, original, shown)
            memory = remember(session, ctx, text)
            ctx = ctx.remembering(memory)
            branch = self._branch(session, ctx, question, created=True)
        turn = self._turn(ctx, ctx.engine, branch, ctx.sampling(sampling))
        turn.memory_saved = memory
        return turn

    def generate(
        self,
        user_id: str,
        messages: Sequence[Message],
        model: str | None = None,
        sampling: SamplingParams | None = None,
        tools: Sequence[dict[str, Any]] = (),
        uses_tools: bool = False,
    ) -> Turn:
        """An answer outside any conversation (the OpenAI-compatible API): only its generation
        record is stored, owned by `user_id`, so feedback can point at it. `tools` are the
        client's OpenAI function schemas: the model's calls come back in `turn.client_calls`
        for the client to run. A request with tools (or tool messages, `uses_tools`) for a
        model that cannot call them is InvalidInput."""
        if model is None:
            # The site default rollout replaces the configured default model.
            with self.session_factory() as session:
                model = served_version(session, user_id, None, None, self._servable)
        engine = self.catalog.get(model or self.default_model or self.catalog.default_model)
        if (tools or uses_tools) and not engine.info.supports_tools:
            raise InvalidInput(f"model {engine.model_id} does not support tool calls")
        plan = plan_turn(
            user_id,
            engine,
            messages,
            sampling or SamplingParams(),
            tools=ToolPlan(client_schemas=tuple(tools)),
        )
        return Turn(plan, self.session_factory)

    def compare(
        self,
        user_id: str,
        conversation_id: str,
        text: str | None = None,
        parent_id: str | None = None,
        models: tuple[str | None, str | None] = (None, None),
        sampling: Mapping[str, Any] | None = None,
        attachments: Sequence[str] = (),
    ) -> ComparisonTurn:
        """Two answers to one turn, in random order (the user votes blind), ready to stream
        side by side (tandem.chat.comparison). With `text`, a new user message is added under
        `parent_id` first; without it, `parent_id` must be a user message to answer again."""
        with one_transaction(self.session_factory) as session:
            ctx = self._load(session, user_id, conversation_id, versus=models)
            memory = None
            if text is not None:
                images = image_parts(session, user_id, attachments)
                parent = parent_id or ctx.conversation.current_message_id
                question = add_user_message(session, ctx, text, parent, images)
                memory = remember(session, ctx, text)
                ctx = ctx.remembering(memory)
            else:
                if parent_id is None:
                    raise InvalidInput("give either text or the id of a user message to answer")
                question = ConversationRepo(session).get_message(user_id, parent_id)
                if question.role != "user" or question.conversation_id != ctx.conversation.id:
                    raise InvalidInput("parent_id must be a user message of this conversation")
            branch = self._branch(session, ctx, question, created=text is not None)
        return self._comparison(ctx, branch, ctx.sampling(sampling), memory)

    # -- building the answers ---------------------------------------------------------------

    def _servable(self, version: str) -> bool:
        return version in self.catalog

    def _load(
        self,
        session: Session,
        user_id: str,
        conversation_id: str,
        model: str | None = None,
        *,
        versus: tuple[str | None, str | None] | None = None,
        draw: random.Random | None = None,
    ) -> ChatContext:
        return load_context(
            session,
            self.catalog,
            user_id,
            conversation_id,
            model,
            default_model=self.default_model,
            versus=versus,
            draw=draw,
        )

    def _branch(
        self,
        session: Session,
        ctx: ChatContext,
        question: StoredMessage,
        created: bool,
        continues: StoredMessage | None = None,
    ) -> Branch:
        engines = ctx.compared or (ctx.engine,)
        return read_branch(
            session,
            ctx,
            question,
            created=created,
            continues=continues,
            inline=any(e.info.accepts_images for e in engines),
            uploads_root=self.uploads_root,
        )

    def _turn(
        self,
        ctx: ChatContext,
        engine: Engine,
        branch: Branch,
        params: SamplingParams,
        tools: Sequence[str] = (),
        make_current: bool = True,
    ) -> Turn:
        """The answer to the branch's question, or (`branch.continues`) more of an answer."""
        messages, notices = branch.messages_for(engine)
        # Going on writing an answer: its tools do not run again.
        plan = plan_turn(
            ctx.user_id,
            engine,
            messages,
            params,
            branch=branch,
            make_current=make_current,
            notices=notices,
            tools=None if branch.continues else self._tools(ctx, engine, branch, tools),
        )
        return Turn(plan, self.session_factory, self.titles)

    def _comparison(
        self, ctx: ChatContext, branch: Branch, params: SamplingParams, memory: Memory | None
    ) -> ComparisonTurn:
        assert ctx.compared is not None
        # A behavior experiment's variants are shuffled with their engines: each side keeps
        # its own variant (and a system-prompt variant's text goes into that side's prompt).
        arms = ctx.experiment.arms if ctx.experiment else (None, None)
        sides = list(zip(ctx.compared, arms, strict=True))
        self.rng.shuffle(sides)
        turns = []
        for i, (engine, arm) in enumerate(sides):
            # Two samples of one model must differ: give the second its own seed.
            p = params
            if i == 1 and sides[0][0] is engine and params.seed is not None:
                p = dataclasses.replace(params, seed=params.seed + 1)
            side = branch.with_system_addition(arm.prompt_addition) if arm else branch
            turns.append(self._turn(ctx, engine, side, p, make_current=False))
        variants = None
        if ctx.experiment is not None:
            a, b = (arm.variant_id for _, arm in sides if arm is not None)
            variants = (ctx.experiment.experiment_id, a, b)
        return ComparisonTurn(
            self.session_factory,
            ctx.user_id,
            ctx.conversation.id,
            branch.question,
            branch.created_question,
            (turns[0], turns[1]),
            memory,
            variants,
        )

    def _tools(
        self, ctx: ChatContext, engine: Engine, branch: Branch, requested: Sequence[str]
    ) -> ToolPlan:
        """The tools switched on for this message (by the user, plus the profile's): offered
        to a model that calls tools itself, otherwise run before it answers with arguments
        taken from the user's message."""
        names = list(dict.fromkeys([*(ctx.profile.tools if ctx.profile else []), *requested]))
        known = set(tool_names())
        tools = [get_tool(n) for n in names if n in known]
        if not tools:
            return ToolPlan()
        if self.settings is None:
            raise RuntimeError("ChatService needs settings to run tools")
        # A profile's tool that cannot run here is left out (one the message asked for was
        # refused by `_check_tools` before anything was stored).
        tools = [t for t in tools if t.available(self.settings) is None]
        if not tools:
            return ToolPlan()
        home = self.settings.home
        context = ToolContext(
            user_id=ctx.user_id,
            settings=self.settings,
            files=ConversationFiles(
                self.session_factory, home, ctx.user_id, ctx.conversation.id, ctx.profile
            ),
            uploads=UserUploads(self.session_factory, home, ctx.user_id),
            engine=engine,
        )
        if engine.info.supports_tools:
            return ToolPlan(offered=tuple(tools), context=context)
        text = branch.question.to_message().content
        return ToolPlan(
            switched_on=tuple((t, t.arguments_for(context, text)) for t in tools),
            context=context,
        )

    def _check_tools(self, requested: Sequence[str]) -> None:
        """Refuse a message that switches on a tool that cannot run here (no search provider,
        no image backend), before anything is stored, rather than run it to tell the model it
        failed: the small model answers that by inventing results."""
        known = set(tool_names())
        for name in requested:
            if name not in known:
                raise InvalidInput(f"no tool {name!r}")
            reason = get_tool(name).available(self.settings) if self.settings else None
            if reason is not None:
                raise InvalidInput(f"the {name} tool is not available on this server: {reason}")
