"""Continuing conversations: store the user's turn, stream the engine's answer, record it.

    service = ChatService(session_factory, catalog)
    turn = service.send(user_id, conversation_id, "Hello!")   # raises NotFound / ModelNotFound
    async for chunk in turn.stream():                          # or: await turn.run()
        print(chunk.text, end="")
    turn.assistant_message, turn.generation                    # stored when the stream ends
    turn.memory_saved, turn.notice                             # "remember that …", no-images

Memory: while it is on for the user and the chat, the user's memories are listed in the
system message, and a user message that asks to remember something ("remember that …",
"don't forget …") saves the clause as a memory before the model answers. Attachments: image
parts reference the user's uploads; a model that cannot see images gets the text only, and the
turn carries a notice saying so.

Everything that can fail on bad input (a foreign conversation, an unknown model) fails in
`send`/`regenerate`/`edit`, before any token is generated, so an HTTP layer can answer 404
before it starts a stream. A stream the client abandons is still recorded, with
finish_reason "cancelled". No HTTP here.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.chat.comparison import ComparisonTurn
from tandem.chat.context import CONTEXT_NOTICE, STRATEGY, fit_to_context
from tandem.chat.memory_requests import memory_request
from tandem.chat.render import render_messages, render_system_prompt, without_images
from tandem.chat.titles import placeholder_title, write_title
from tandem.chat.tooling import (
    MAX_TOOL_ROUNDS,
    answer_parts,
    next_citation_index,
    parse_arguments,
    public_result,
    tool_call_messages,
    with_tool_results,
)
from tandem.core.generation import GenerationRecord, SamplingParams
from tandem.core.messages import Message, Part
from tandem.core.settings import Settings
from tandem.engines.base import Chunk, Engine
from tandem.engines.catalog import ModelCatalog
from tandem.engines.loops import cut_loops
from tandem.rollout.routing import applicable_rollout, served_version
from tandem.store import (
    Conflict,
    ConversationRepo,
    CustomInstructionsRepo,
    GenerationRepo,
    InvalidInput,
    MemoryRepo,
    NotFound,
    ProfileRepo,
    RolloutRepo,
    SessionFactory,
    SiteSettingsRepo,
    UploadRepo,
    UserRepo,
)
from tandem.store.models import (
    Conversation,
    CustomInstructions,
    Memory,
    Profile,
    StoredGeneration,
    StoredMessage,
    new_id,
)
from tandem.tools.base import Tool, ToolContext, ToolResult, get_tool, tool_names

MAX_ATTACHMENTS = 4
NO_IMAGES_NOTICE = "This model can't see images; it answered from your text only."


# A chat ends an answer that starts repeating itself (tandem.engines.loops): the person sees it
# was cut and can continue it; the /v1 API sends what the client asked for.
CHAT_SAMPLING: dict[str, Any] = {"stop_loops": True}


def resolve_sampling(
    defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> SamplingParams:
    """SamplingParams from profile defaults, then per-request overrides (None means unset)."""
    merged = {**(defaults or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return SamplingParams.from_dict(merged)


class Turn:
    """One answer being generated; records itself when its stream ends, however it ends."""

    def __init__(
        self,
        service: ChatService,
        user_id: str,
        engine: Engine,
        messages: Sequence[Message],
        params: SamplingParams,
        conversation_id: str | None = None,
        parent_id: str | None = None,
        user_message: StoredMessage | None = None,
        make_current: bool = True,
        notices: Sequence[str] = (),
        tools: Sequence[tuple[Tool, dict[str, Any]]] = (),
        native_tools: Sequence[Tool] = (),
        tool_context: ToolContext | None = None,
        client_tools: Sequence[dict[str, Any]] = (),
        history: ConversationHistory | None = None,
    ) -> None:
        # A chat turn (with `history`) fits a long conversation into the context and cuts
        # loops; an API request (/v1) is sent as the client wrote it.
        self.history = history
        self.continue_final = history is not None and history.continues is not None
        self.notices = list(notices)
        self.context: dict[str, Any] = {}
        if history is not None:
            messages = self._fit(messages, engine, params)
        # A request that cannot fit fails here, as the caller's error, before any streaming.
        engine.check_request(messages, params, self.continue_final)
        if (tools or native_tools) and tool_context is None:
            raise ValueError("tools need a tool context")
        # Tools to run before the model answers (switched on, arguments from the message) and
        # tools offered to a model that calls them itself.
        self.planned_tools = list(tools)
        self.native_tools = list(native_tools)
        # OpenAI function schemas from an API client that runs its tools itself (/v1): the
        # model's calls end the turn and go back to the client, nothing runs here.
        self.client_tools = list(client_tools)
        self.client_calls: list[dict[str, Any]] = []
        self.tool_context = tool_context
        self.tool_results: list[ToolResult] = []
        self.service = service
        self.user_id = user_id
        self.engine = engine
        self.messages = list(messages)
        self.params = params
        self.conversation_id = conversation_id
        self.parent_id = parent_id
        self.user_message = user_message
        self.make_current = make_current
        # The memory this turn's user message asked for, saved before the model answered.
        self.memory_saved: Memory | None = None
        self.text = ""
        self.assistant_message: StoredMessage | None = None
        self.generation: StoredGeneration | None = None
        # Known before generation starts, so a stream can name its record up front.
        self.generation_id = new_id()
        self._started = False
        self._recording: asyncio.Future[None] | None = None
        # The chat's new title, when this is the first answer of the chat (tandem.chat.titles).
        self.title: asyncio.Task[str | None] | None = None

    @property
    def model(self) -> str:
        return self.engine.model_id

    @property
    def notice(self) -> str | None:
        """What to show the user beside the answer (the model could not see their images,
        older messages no longer fit), as one text; None when there is nothing to say."""
        return " ".join(self.notices) or None

    def _fit(
        self, messages: Sequence[Message], engine: Engine, params: SamplingParams
    ) -> list[Message]:
        """Drop the oldest turns that no longer fit (tandem.chat.context); the record names
        them, and the first answer of a branch that lost some says so once."""
        assert self.history is not None
        fitted = fit_to_context(engine, messages, params.max_tokens, self.continue_final)
        if fitted.dropped:
            self.context = {
                "strategy": STRATEGY,
                "dropped_messages": fitted.dropped,
                "dropped_message_ids": list(self.history.message_ids[: fitted.dropped]),
            }
            if not self.history.already_dropped and CONTEXT_NOTICE not in self.notices:
                self.notices.append(CONTEXT_NOTICE)
        return fitted.messages

    async def _run_tool(self, tool: Tool, arguments: dict[str, Any], call_id: str | None = None):
        """Run one tool, yielding its start and end events; the result joins `tool_results`."""
        assert self.tool_context is not None
        yield Chunk(event={"type": "tool", "status": "running", "tool": tool.name})
        ctx = dataclasses.replace(
            self.tool_context, citation_start=next_citation_index(self.tool_results)
        )
        result = await tool.call(ctx, arguments)
        result.call_id = call_id
        self.tool_results.append(result)
        yield Chunk(event={"type": "tool", **public_result(result)})

    async def _model_tool_calls(self, calls: list[dict[str, Any]]):
        """Run the tools a model asked for; unknown tools and bad arguments are answered with
        an error the model reads, never run."""
        offered = {t.name: t for t in self.native_tools}
        results_before = len(self.tool_results)
        for call in calls:
            tool = offered.get(call.get("name", ""))
            arguments = parse_arguments(call.get("arguments"))
            if tool is None or arguments is None:
                why = "unknown tool" if tool is None else "arguments are not a JSON object"
                self.tool_results.append(
                    ToolResult(call.get("name", "?"), {}, error=why, call_id=call.get("id"))
                )
                continue
            async for chunk in self._run_tool(tool, arguments, call.get("id")):
                yield chunk
        self.messages += tool_call_messages(calls, self.tool_results[results_before:])

    def _client_calls(self, calls: list[dict[str, Any]]) -> None:
        """Record the calls a /v1 client will run itself: in the generation record (their
        outputs arrive as `tool` messages of the client's next request)."""
        self.client_calls = list(calls)
        for call in calls:
            arguments = parse_arguments(call.get("arguments"))
            self.tool_results.append(
                ToolResult(
                    call.get("name", "?"),
                    arguments if arguments is not None else {"raw": call.get("arguments")},
                    display={"run_by": "client"},
                    call_id=call.get("id"),
                )
            )

    async def stream(self) -> AsyncIterator[Chunk]:
        """Yield the engine's chunks; the final one carries finish_reason and usage. Tool
        events (`Chunk.event`) come first for switched-on tools, and between rounds for tools
        the model calls."""
        if self._started:
            raise RuntimeError("a turn streams once")
        self._started = True
        start = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        final: Chunk | None = None
        finish = "cancelled"  # unless the engine says otherwise before we stop
        try:
            for tool, arguments in self.planned_tools:
                async for chunk in self._run_tool(tool, arguments):
                    yield chunk
            # Recorded as sent: the prompt with the tools' results in it.
            self.messages = with_tool_results(self.messages, self.tool_results)
            if self.history is not None and self.tool_results:
                self.messages = self._fit(self.messages, self.engine, self.params)
            for round_ in range(MAX_TOOL_ROUNDS + 1):
                offer = self.native_tools if round_ < MAX_TOOL_ROUNDS else []
                schemas = [t.openai_schema() for t in offer] or self.client_tools
                extra = {"tools": schemas} if schemas else {}
                calls: list[dict[str, Any]] = []
                final = None
                if self.continue_final:
                    extra["continue_final"] = True
                stream = cut_loops(
                    self.engine,
                    self.messages,
                    self.params,
                    self.engine.stream(self.messages, self.params, **extra),
                    self.continue_final,
                )
                async with aclosing(stream) as chunks:
                    async for chunk in chunks:
                        if chunk.text:
                            if ttft is None:
                                ttft = time.perf_counter() - start
                            pieces.append(chunk.text)
                        calls += chunk.tool_calls or []
                        if chunk.finish_reason:
                            final, finish = chunk, chunk.finish_reason
                        if chunk.text or chunk.finish_reason != "tool_calls" or self.client_tools:
                            yield chunk
                if finish == "loop":
                    break
                if calls and self.client_tools:
                    self._client_calls(calls)
                    break
                if calls and not offer:
                    # Calls nobody offered (the last round offers none) are not run: the
                    # turn ends with what the model said.
                    finish = "stop"
                    yield Chunk(finish_reason=finish)
                if not calls or not offer:
                    break
                async for chunk in self._model_tool_calls(calls):
                    yield chunk
            if final is None:
                finish = "stop"
        except Exception:  # the engine's failure or any other: recorded as an error
            finish = "error"
            raise
        finally:
            # Runs on normal end, engine error, and a consumer that walked away (aclose or
            # task cancellation): what was generated is recorded either way.
            self.text = "".join(pieces)
            latency = time.perf_counter() - start
            # A commit (an fsync on SQLite) in a worker thread, not on the event loop every
            # other request waits on; shielded, so a cancelled turn still waits for its record.
            self._recording = asyncio.ensure_future(
                asyncio.to_thread(self._record, final, finish, pieces, latency, ttft)
            )
            await asyncio.shield(self._recording)
            if self.history is not None and self.make_current and finish != "error":
                self.title = self.service.name_chat(self)

    async def run(self) -> Turn:
        async for _ in self.stream():
            pass
        return self

    async def recorded(self) -> None:
        """Wait until the record is stored (also after the stream was cancelled mid-way);
        returns at once for a turn that never started."""
        if self._recording is not None:
            await self._recording

    def _record(
        self,
        final: Chunk | None,
        finish: str,
        pieces: list[str],
        latency: float,
        ttft: float | None,
    ) -> None:
        usage = final.usage if final is not None else None
        rendered = final.rendered_prompt if final is not None else None
        seed = final.seed if final is not None and final.seed is not None else self.params.seed
        record = GenerationRecord(
            model_version=self.engine.model_id,
            engine=self.engine.backend,
            sampling=self.params,
            seed=seed,
            rendered_prompt=rendered or self.engine.render_prompt(self.messages),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            # A cancelled stream has no usage; its chunk count is the best estimate.
            completion_tokens=usage.completion_tokens if usage else len(pieces),
            latency_s=latency,
            time_to_first_token_s=ttft,
            finish_reason=finish,
            tool_calls=[r.to_record() for r in self.tool_results],
            context=self.context,
            notices=self.notices,
        )
        with self.service.session_factory() as session:
            self.generation = GenerationRepo(session).add(
                self.user_id, record, self.messages, self.text, generation_id=self.generation_id
            )
            if self.conversation_id is not None:
                self.assistant_message = ConversationRepo(session).add_message(
                    self.user_id,
                    self.conversation_id,
                    self._answer_message(),
                    self.parent_id,
                    generation_id=self.generation.id,
                    make_current=self.make_current,
                )

    def _answer_message(self) -> Message:
        """The stored answer. A continuation is a new version of the answer it continues: that
        answer's text and then this turn's, with the sources and images it had."""
        continues = self.history.continues if self.history is not None else None
        if continues is None:
            return Message("assistant", answer_parts(self.text, self.tool_results))
        before = continues.to_message()
        kept = tuple(p for p in before.parts if p.type != "text")
        return Message("assistant", (Part("text", before.content + self.text), *kept))


@dataclass(frozen=True)
class ConversationHistory:
    """Where a chat turn stands in its conversation (the /v1 API has none)."""

    # The branch's messages as the model reads them (stored system turns left out), oldest
    # first: the generation record names the ones that no longer fit the context.
    message_ids: tuple[str, ...]
    # The previous answer on this branch already lost older messages: the user was told.
    already_dropped: bool = False
    # The answer this turn goes on writing (Continue), the last of the branch.
    continues: StoredMessage | None = None


@dataclass
class _Context:
    """Everything a turn in one conversation is built from, loaded once per request."""

    conv: Conversation
    profile: Profile | None
    custom: CustomInstructions
    memory_on: bool
    engine: Engine
    defaults: dict[str, Any]


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
        self._background: set[asyncio.Task[str | None]] = set()

    def _servable(self, version: str) -> bool:
        return version in self.catalog

    # -- building the model input ---------------------------------------------------------

    def _context(self, user_id: str, conversation_id: str, model: str | None) -> _Context:
        """The conversation, profile, custom instructions and the engine that answers."""
        with self.session_factory() as session:
            conv = ConversationRepo(session).get(user_id, conversation_id)
            profile = None
            if conv.profile_id:
                try:
                    profile = ProfileRepo(session).get(user_id, conv.profile_id)
                except NotFound:
                    profile = None  # the owner stopped sharing it; chat goes on without it
            custom = CustomInstructionsRepo(session).get(user_id)
            memory_on = UserRepo(session).get(user_id).memory_enabled and conv.use_memory
            rolled = None
            if not (model or conv.model):
                # No pin: the rollout decides (sticky per user), read per turn so a promotion
                # or rollback serves at once. The generation record names the version.
                rolled = served_version(
                    session,
                    user_id,
                    profile.id if profile else None,
                    profile.model_version if profile else None,
                    self._servable,
                )
        model_id = (
            model
            or conv.model
            or rolled
            or (profile.model_version if profile else None)
            or self.default_model
            or self.catalog.default_model
        )
        engine = self.catalog.get(model_id)  # ModelNotFound before anything is stored
        return _Context(
            conv,
            profile,
            custom,
            memory_on,
            engine,
            {**CHAT_SAMPLING, **(profile.sampling if profile else {})},
        )

    def _system(self, user_id: str, ctx: _Context) -> str | None:
        """The system message, rendered after any memory this turn saved."""
        memories: list[str] = []
        if ctx.memory_on:
            with self.session_factory() as session:
                memories = [m.text for m in MemoryRepo(session).list(user_id)]
        return render_system_prompt(
            about_user=ctx.custom.about_user if ctx.custom.enabled else "",
            response_style=ctx.custom.response_style if ctx.custom.enabled else "",
            profile_instructions=ctx.profile.instructions if ctx.profile else "",
            system_prompt=ctx.conv.system_prompt or "",
            memories=memories,
        )

    def _history(
        self, user_id: str, leaf_id: str, continues: StoredMessage | None = None
    ) -> tuple[list[Message], ConversationHistory]:
        """The branch up to `leaf_id` as the model reads it, and where the turn stands."""
        with self.session_factory() as session:
            rows = [
                m for m in ConversationRepo(session).branch(user_id, leaf_id) if m.role != "system"
            ]
            # Whether the user was already told that older messages no longer fit: the last
            # earlier answer on this branch lost some (its record says so).
            previous = next(
                (m for m in reversed(rows) if m.role == "assistant" and m.generation_id), None
            )
            already = False
            if previous is not None and previous.generation_id is not None:
                record = session.get(StoredGeneration, previous.generation_id)
                already = bool(record is not None and record.context)
        history = ConversationHistory(tuple(m.id for m in rows), already, continues)
        return [m.to_message() for m in rows], history

    def _image_parts(self, user_id: str, attachments: Sequence[str]) -> list[Part]:
        """Image parts for the user's own uploads; a foreign or unknown id is NotFound."""
        if len(attachments) > MAX_ATTACHMENTS:
            raise InvalidInput(f"at most {MAX_ATTACHMENTS} attachments per message")
        if not attachments:
            return []
        with self.session_factory() as session:
            uploads = UploadRepo(session).get_many(user_id, list(attachments))
        return [Part("image", data={"upload_id": u.id, "mime": u.mime}) for u in uploads]

    def _inline_images(self, user_id: str, messages: list[Message]) -> list[Message]:
        """Give image parts a `data:` URL with the upload's bytes, for a model that sees
        images (remote servers cannot read our files). Only this user's uploads resolve."""
        if self.uploads_root is None:
            return messages
        out = []
        with self.session_factory() as session:
            uploads = UploadRepo(session, self.uploads_root)
            for message in messages:
                parts = []
                for part in message.parts:
                    if part.type == "image" and "upload_id" in part.data:
                        row = uploads.get(user_id, part.data["upload_id"])
                        encoded = base64.b64encode(uploads.path(row).read_bytes()).decode()
                        url = f"data:{row.mime};base64,{encoded}"
                        part = Part("image", data={**part.data, "url": url})
                    parts.append(part)
                out.append(Message(message.role, tuple(parts)))
        return out

    def _remember(self, user_id: str, ctx: _Context, text: str) -> Memory | None:
        """Save what the message asks to remember, if it asks and memory is on."""
        clause = memory_request(text) if ctx.memory_on else None
        if clause is None:
            return None
        with self.session_factory() as session:
            try:
                return MemoryRepo(session).create(user_id, clause)
            except (Conflict, InvalidInput):
                return None  # at the cap, or nothing to keep: the chat goes on regardless

    def _add_user_message(
        self,
        user_id: str,
        conv: Conversation,
        text: str,
        parent_id: str | None,
        images: Sequence[Part] = (),
    ) -> StoredMessage:
        message = Message("user", (Part("text", text), *images))
        with self.session_factory() as session:
            convs = ConversationRepo(session)
            row = convs.add_message(user_id, conv.id, message, parent_id)
            if not conv.title:
                convs.rename(user_id, conv.id, placeholder_title(text))
            return row

    def name_chat(self, turn: Turn) -> asyncio.Task[str | None] | None:
        """After a chat's first answer, have its model title the exchange in the background;
        the task's result is the new title (None when the chat keeps the one it has)."""
        if self.settings is None or not self.settings.chat_titles:
            return None
        if turn.conversation_id is None or turn.parent_id is None or not turn.text.strip():
            return None
        task = asyncio.create_task(
            self._retitle(
                turn.user_id, turn.conversation_id, turn.parent_id, turn.engine, turn.text
            )
        )
        # Held until done: the event loop keeps only weak references to tasks.
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _retitle(
        self, user_id: str, conversation_id: str, question_id: str, engine: Engine, answer: str
    ) -> str | None:
        def first_question() -> str | None:
            """The question, when it opens the chat and the chat still has its placeholder."""
            with self.session_factory() as session:
                convs = ConversationRepo(session)
                row = convs.get_message(user_id, question_id)
                question = row.to_message().content
                conv = convs.get(user_id, conversation_id)
                opens = row.parent_id is None
                return question if opens and conv.title == placeholder_title(question) else None

        question = await asyncio.to_thread(first_question)
        title = await write_title(engine, question, answer) if question else None
        if title is None:
            return None

        def rename() -> bool:
            with self.session_factory() as session:
                convs = ConversationRepo(session)
                if convs.get(user_id, conversation_id).title != placeholder_title(question):
                    return False  # renamed by the user meanwhile
                convs.rename(user_id, conversation_id, title)
                return True

        return title if await asyncio.to_thread(rename) else None

    def _answer(
        self,
        user_id: str,
        ctx: _Context,
        engine: Engine,
        params: SamplingParams,
        user_message: StoredMessage,
        created_user_message: bool,
        make_current: bool = True,
        tools: Sequence[str] = (),
        continues: StoredMessage | None = None,
    ) -> Turn:
        """The answer to `user_message`, or (`continues`) more of an answer to it."""
        leaf = continues.id if continues is not None else user_message.id
        branch, history = self._history(user_id, leaf, continues)
        system = self._system(user_id, ctx)
        tooling: dict[str, Any] = {}
        if continues is None:
            tooling = self._tooling(user_id, ctx, engine, user_message, tools)
        else:
            # Going on writing an answer: its tools do not run again, and the model reads the
            # system message the answer was started with (tool results included).
            system = self._system_of(user_id, continues) or system
        messages = render_messages(system, branch)
        notices = []
        if not engine.info.accepts_images:
            messages, dropped = without_images(messages)
            if dropped:
                notices.append(NO_IMAGES_NOTICE)
        else:
            messages = self._inline_images(user_id, messages)
        return Turn(
            self,
            user_id,
            engine,
            messages,
            params,
            conversation_id=ctx.conv.id,
            parent_id=user_message.id,
            user_message=user_message if created_user_message else None,
            make_current=make_current,
            notices=notices,
            history=history,
            **tooling,
        )

    def _system_of(self, user_id: str, answer: StoredMessage) -> str | None:
        """The system message an answer's model read, from its generation record."""
        if answer.generation_id is None:
            return None
        with self.session_factory() as session:
            record = GenerationRepo(session).get(user_id, answer.generation_id)
        first = Message.from_dict(record.input_messages[0]) if record.input_messages else None
        return first.content if first is not None and first.role == "system" else None

    def _tooling(
        self,
        user_id: str,
        ctx: _Context,
        engine: Engine,
        user_message: StoredMessage,
        requested: Sequence[str],
    ) -> dict[str, Any]:
        """Turn arguments for the tools switched on for this message (by the user, plus the
        profile's): offered to a model that calls tools itself, otherwise run before it
        answers with arguments taken from the user's message."""
        names = list(dict.fromkeys([*(ctx.profile.tools if ctx.profile else []), *requested]))
        known = set(tool_names())
        tools = [get_tool(n) for n in names if n in known]
        if not tools:
            return {}
        if self.settings is None:
            raise RuntimeError("ChatService needs settings to run tools")
        # A profile's tool that cannot run here is left out (one the message asked for was
        # refused by `_check_tools` before anything was stored).
        tools = [t for t in tools if t.available(self.settings) is None]
        if not tools:
            return {}
        context = ToolContext(
            user_id=user_id,
            session_factory=self.session_factory,
            settings=self.settings,
            conversation_id=ctx.conv.id,
            profile_id=ctx.profile.id if ctx.profile else None,
            engine=engine,
            knowledge_file_ids=tuple(ctx.profile.knowledge_file_ids) if ctx.profile else (),
        )
        if engine.info.supports_tools:
            return {"native_tools": tools, "tool_context": context}
        text = user_message.to_message().content
        planned = [(t, t.arguments_for(context, text)) for t in tools]
        return {"tools": planned, "tool_context": context}

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
    ) -> Turn:
        """Add a user message under `parent_id` (default: the conversation's current message),
        with `attachments` (upload ids) as image parts, and prepare the answer, with `tools`
        (names) switched on for it besides the profile's."""
        self._check_tools(tools)
        ctx = self._context(user_id, conversation_id, model)
        if parent_id is None:
            parent_id = ctx.conv.current_message_id
        else:
            with self.session_factory() as session:
                parent = ConversationRepo(session).get_message(user_id, parent_id)
                if parent.conversation_id != ctx.conv.id:
                    raise NotFound("message", parent_id)
        images = self._image_parts(user_id, attachments)
        params = resolve_sampling(ctx.defaults, sampling)
        user_message = self._add_user_message(user_id, ctx.conv, text, parent_id, images)
        # Saved once the message is, and before the prompt is rendered, so it is in it.
        memory = self._remember(user_id, ctx, text)
        turn = self._answer(user_id, ctx, ctx.engine, params, user_message, True, tools=tools)
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
        with self.session_factory() as session:
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
        ctx = self._context(user_id, answer.conversation_id, model)
        params = resolve_sampling(ctx.defaults, sampling)
        return self._answer(user_id, ctx, ctx.engine, params, question, False, tools=tools)

    def continue_answer(
        self,
        user_id: str,
        message_id: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """More of assistant message `message_id` (one cut by the token cap or a loop): the
        model goes on writing it, and the whole answer becomes a new version beside it."""
        with self.session_factory() as session:
            convs = ConversationRepo(session)
            answer = convs.get_message(user_id, message_id)
            if answer.role != "assistant" or answer.parent_id is None:
                raise InvalidInput("only an assistant message can be continued")
            if not answer.to_message().content.strip():
                raise InvalidInput("an empty answer cannot be continued; regenerate it instead")
            question = convs.get_message(user_id, answer.parent_id)
        ctx = self._context(user_id, answer.conversation_id, model)
        params = resolve_sampling(ctx.defaults, sampling)
        return self._answer(user_id, ctx, ctx.engine, params, question, False, continues=answer)

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
        with self.session_factory() as session:
            original = ConversationRepo(session).get_message(user_id, message_id)
        if original.role != "user":
            raise InvalidInput("only a user message can be edited")
        ctx = self._context(user_id, original.conversation_id, model)
        params = resolve_sampling(ctx.defaults, sampling)
        images = [p for p in original.to_message().parts if p.type == "image"]
        user_message = self._add_user_message(user_id, ctx.conv, text, original.parent_id, images)
        memory = self._remember(user_id, ctx, text)
        turn = self._answer(user_id, ctx, ctx.engine, params, user_message, True)
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
        return Turn(
            self, user_id, engine, messages, sampling or SamplingParams(), client_tools=tools
        )

    def comparison_draw(
        self,
        user_id: str | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
    ) -> tuple[str | None, str | None] | None:
        """Whether the next user turn is answered as a blind comparison (admin setting
        `comparison_rate`, default 0), and with which two models (`comparison_models`;
        (None, None) means two samples of the turn's own model).

        Given the conversation, and when neither the request (`model`) nor the conversation
        pins a model: a rollout with a candidate `in_comparisons` pits that candidate against
        its production, at the rollout's own `comparison_rate` when it sets one."""
        with self.session_factory() as session:
            site = SiteSettingsRepo(session)
            rate = float(site.get("comparison_rate", 0.0) or 0.0)  # type: ignore[arg-type]
            models = site.get("comparison_models")
            pair = None
            if user_id is not None and conversation_id is not None and model is None:
                pair, rollout_rate = self._rollout_pair(session, user_id, conversation_id)
                rate = rollout_rate if pair is not None and rollout_rate is not None else rate
        if rate <= 0 or self.rng.random() >= rate:
            return None
        if pair is not None:
            return pair
        # A configured model that has since been removed must not break every chat: fall
        # back to two samples of the turn's own model.
        if isinstance(models, list) and len(models) == 2 and all(m in self.catalog for m in models):
            return str(models[0]), str(models[1])
        return None, None

    def _rollout_pair(
        self, session: Session, user_id: str, conversation_id: str
    ) -> tuple[tuple[str, str] | None, float | None]:
        """(production, candidate) of the conversation's rollout, and the rollout's own
        comparison rate; (None, None) when no rollout applies or none of its servable
        candidates is in comparisons."""
        conv = ConversationRepo(session).get(user_id, conversation_id)
        if conv.model:
            return None, None
        profile = None
        if conv.profile_id:
            try:
                profile = ProfileRepo(session).get(user_id, conv.profile_id)
            except NotFound:
                profile = None
        rollout = applicable_rollout(
            session, profile.id if profile else None, profile.model_version if profile else None
        )
        if rollout is None or not self._servable(rollout.production_version):
            return None, None
        compared = [
            c.version
            for c in RolloutRepo(session).candidates(rollout.id)
            if c.in_comparisons and self._servable(c.version)
        ]
        if not compared:
            return None, None
        return (rollout.production_version, self.rng.choice(compared)), rollout.comparison_rate

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
        ctx = self._context(user_id, conversation_id, models[0])
        engine_b = self._context(user_id, conversation_id, models[1] or models[0]).engine
        params = resolve_sampling(ctx.defaults, sampling)
        memory = None
        if text is not None:
            images = self._image_parts(user_id, attachments)
            question = self._add_user_message(
                user_id, ctx.conv, text, parent_id or ctx.conv.current_message_id, images
            )
            memory = self._remember(user_id, ctx, text)
            created = True
        else:
            if parent_id is None:
                raise InvalidInput("give either text or the id of a user message to answer")
            with self.session_factory() as session:
                question = ConversationRepo(session).get_message(user_id, parent_id)
            if question.role != "user" or question.conversation_id != ctx.conv.id:
                raise InvalidInput("parent_id must be a user message of this conversation")
            created = False
        engines = [ctx.engine, engine_b]
        self.rng.shuffle(engines)
        turns = []
        for i, engine in enumerate(engines):
            # Two samples of one model must differ: give the second its own seed.
            p = params
            if i == 1 and engines[0] is engines[1] and params.seed is not None:
                p = dataclasses.replace(params, seed=params.seed + 1)
            turns.append(self._answer(user_id, ctx, engine, p, question, created, False))
        return ComparisonTurn(
            self, user_id, ctx.conv.id, question, created, (turns[0], turns[1]), memory
        )
