"""A chat turn's place in its conversation: the question it answers and the branch up to it,
as the model reads it. Every function here runs inside the request's one transaction.

    question = add_user_message(session, ctx, "Hello!", parent_id, images)
    branch = read_branch(session, ctx, question, created=True, inline=True, uploads_root=root)
    messages, notices = branch.messages_for(engine)

Attachments: image parts reference the user's uploads. A model that cannot see images gets the
text only, and the turn carries a notice saying so; one that can gets each image's bytes as a
`data:` URL (remote servers cannot read our files).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from tandem.chat.context import ChatContext
from tandem.chat.memory_requests import memory_request
from tandem.chat.render import add_to_system, render_messages, without_images
from tandem.chat.titles import placeholder_title
from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.messages import Message, Part
from tandem.engines.base import Engine
from tandem.store import ConversationRepo, GenerationRepo, MemoryRepo, UploadRepo
from tandem.store.models import Memory, StoredGeneration, StoredMessage

MAX_ATTACHMENTS = 4
NO_IMAGES_NOTICE = "This model can't see images; it answered from your text only."


@dataclass(frozen=True)
class Branch:
    """Where a chat turn stands in its conversation (the /v1 API has none)."""

    conversation_id: str
    # The user message answered, and whether this request added it.
    question: StoredMessage
    created_question: bool
    # The branch's messages as the model reads them (stored system turns left out), oldest
    # first: the generation record names the ones that no longer fit the context.
    message_ids: tuple[str, ...]
    # The previous answer on this branch already lost older messages: the user was told.
    already_dropped: bool
    # The model input: the system message, then the branch; `inlined` is the same with the
    # images' bytes in it, for models that see images (None when no model of this turn does).
    messages: tuple[Message, ...]
    inlined: tuple[Message, ...] | None = None
    # The answer this turn goes on writing (Continue), the last of the branch.
    continues: StoredMessage | None = None
    # The answer this turn replaces (Regenerate): an implicit signal on it is stored with the
    # new answer, in the same transaction (tandem.chat.implicit_signals).
    regenerates: StoredMessage | None = None

    def with_system_addition(self, addition: str) -> Branch:
        """This branch as a behavior experiment's system-prompt variant reads it
        (tandem.chat.render.add_to_system)."""
        if not addition.strip():
            return self
        inlined = self.inlined
        return dataclasses.replace(
            self,
            messages=tuple(add_to_system(self.messages, addition)),
            inlined=tuple(add_to_system(inlined, addition)) if inlined is not None else None,
        )

    def messages_for(self, engine: Engine) -> tuple[list[Message], list[str]]:
        """What `engine` reads, and the notices that go with it."""
        if not engine.info.accepts_images:
            messages, dropped = without_images(self.messages)
            return messages, [NO_IMAGES_NOTICE] if dropped else []
        return list(self.inlined if self.inlined is not None else self.messages), []


def checked_parent(session: Session, ctx: ChatContext, parent_id: str | None) -> str | None:
    """The message a new user message goes under: `parent_id`, which must be in this
    conversation (NotFound otherwise), or by default the conversation's current message."""
    if parent_id is None:
        return ctx.conversation.current_message_id
    parent = ConversationRepo(session).get_message(ctx.user_id, parent_id)
    if parent.conversation_id != ctx.conversation.id:
        raise NotFound("message", parent_id)
    return parent_id


def image_parts(session: Session, user_id: str, attachments: Sequence[str]) -> list[Part]:
    """Image parts for the user's own uploads; a foreign or unknown id is NotFound."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidInput(f"at most {MAX_ATTACHMENTS} attachments per message")
    uploads = UploadRepo(session).get_many(user_id, list(attachments)) if attachments else []
    return [Part("image", data={"upload_id": u.id, "mime": u.mime}) for u in uploads]


def add_user_message(
    session: Session,
    ctx: ChatContext,
    text: str,
    parent_id: str | None,
    images: Sequence[Part] = (),
) -> StoredMessage:
    """Store the user's message; the first one names the chat until its model titles it."""
    message = Message("user", (Part("text", text), *images))
    convs = ConversationRepo(session)
    row = convs.add_message(ctx.user_id, ctx.conversation.id, message, parent_id)
    if not ctx.conversation.title:
        convs.rename(ctx.user_id, ctx.conversation.id, placeholder_title(text))
    return row


def remember(session: Session, ctx: ChatContext, text: str) -> Memory | None:
    """Save what the message asks to remember ("remember that …"), if it asks and memory is
    on; saved before the prompt is rendered, so the answer already knows it."""
    clause = memory_request(text) if ctx.memory_on else None
    if clause is None:
        return None
    try:
        return MemoryRepo(session).create(ctx.user_id, clause)
    except (Conflict, InvalidInput):
        return None  # at the cap, or nothing to keep: the chat goes on regardless


def read_branch(
    session: Session,
    ctx: ChatContext,
    question: StoredMessage,
    *,
    created: bool,
    continues: StoredMessage | None = None,
    inline: bool = False,
    uploads_root: Path | None = None,
) -> Branch:
    """The branch up to `question` (or up to the answer it `continues`) as the model reads
    it, with the images inlined when `inline` and the uploads are at hand."""
    leaf = continues.id if continues is not None else question.id
    rows = [m for m in ConversationRepo(session).branch(ctx.user_id, leaf) if m.role != "system"]
    # Whether the user was already told that older messages no longer fit: the last earlier
    # answer on this branch lost some (its record says so).
    previous = next((m for m in reversed(rows) if m.role == "assistant" and m.generation_id), None)
    already = False
    if previous is not None and previous.generation_id is not None:
        record = session.get(StoredGeneration, previous.generation_id)
        already = bool(record is not None and record.context)
    system = ctx.system_prompt()
    if continues is not None:
        # Going on writing an answer: the model reads the system message the answer was
        # started with (tool results included).
        system = _system_of(session, ctx.user_id, continues) or system
    messages = render_messages(system, [m.to_message() for m in rows])
    inlined = None
    if inline and uploads_root is not None:
        inlined = tuple(_inline_images(session, uploads_root, ctx.user_id, messages))
    return Branch(
        ctx.conversation.id,
        question,
        created,
        tuple(m.id for m in rows),
        already,
        tuple(messages),
        inlined,
        continues,
    )


def _system_of(session: Session, user_id: str, answer: StoredMessage) -> str | None:
    """The system message an answer's model read, from its generation record."""
    if answer.generation_id is None:
        return None
    record = GenerationRepo(session).get(user_id, answer.generation_id)
    first = Message.from_dict(record.input_messages[0]) if record.input_messages else None
    return first.content if first is not None and first.role == "system" else None


def _inline_images(
    session: Session, uploads_root: Path, user_id: str, messages: Sequence[Message]
) -> list[Message]:
    """Image parts with a `data:` URL of the upload's bytes. Only this user's uploads
    resolve."""
    uploads = UploadRepo(session, uploads_root)
    out = []
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
