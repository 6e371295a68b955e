"""Chat titles from the first exchange, as the chat's own model writes them.

    placeholder_title("What's the capital of Australia, and why not Sydney?")
    # -> "What's the capital of Australia, and why not Sydney?"  (cut at a word, shown at once)
    await write_title(engine, question, answer)
    # -> "Capital of Australia"                                  (replaces it, or None)
    task = titles.name_chat(user_id, conversation_id, question_id, engine, answer)
    await task                                                   # the new title, or None

A new chat is named from its first message at once (its first sentence, cut at a word), so the
sidebar is never blank; once the first answer is in, the model names the exchange in a few words
and that title replaces the placeholder, unless the user renamed the chat in the meantime. A
title the model botches keeps the placeholder: empty, longer than a title, or about something
else (no content word in common with the question). Measured on the embedded 135M model, about
a third of its titles pass ("The capital of Australia is Canberra", "is_palindrome"); the rest
("Bathroom Bathroom" for a weekend-trip question) are rejected. A larger model titles well.
"""

from __future__ import annotations

import asyncio
import re

from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.engines.base import Engine, EngineError
from tandem.store import ConversationRepo, SessionFactory

TITLE_CHARS = 60
MAX_TITLE_WORDS = 8
# The exchange the model reads: enough to name it, small enough to be quick.
EXCERPT_CHARS = 600
TITLE_PARAMS = SamplingParams(temperature=0.0, max_tokens=16, repetition_penalty=1.1)
INSTRUCTION = (
    "Write a short title (2 to 6 words) for the conversation below. "
    "Reply with the title only, no quotes.\n\n"
)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s")
STEM = 5
# Words a title and a question share without being about the same thing.
_STOPWORD_TEXT = (
    "a an and are as at be by can could do does for from have how i in is it me my of on or "
    "please should tell that the this to was what when where which who why will with would "
    "you your hi hello"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_LABEL = re.compile(r"^\s*(title|conversation title)\s*[:\-]\s*", re.IGNORECASE)
_EDGES = "\"'`*#_“”‘’ .:;,!-"


def placeholder_title(text: str) -> str:
    """The first message's first sentence, on one line, cut at a word boundary to fit."""
    flat = " ".join(text.split())
    sentence = _SENTENCE_END.split(flat, maxsplit=1)[0] if len(flat) > TITLE_CHARS else flat
    if len(sentence) <= TITLE_CHARS:
        return sentence
    cut = sentence[: TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


def _stems(text: str) -> set[str]:
    """Content words, cut to a common prefix so "palindromes" meets "is_palindrome"."""
    return {w[:STEM] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS}


def clean_title(raw: str, question: str | None = None) -> str | None:
    """The model's title without quotes, labels and trailing punctuation; None when what it
    wrote is not a title (empty, too long) or, given the `question`, not about it."""
    lines = [line for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None
    title = _LABEL.sub("", lines[0]).strip(_EDGES).strip()
    words = title.split()
    if not words or len(words) > MAX_TITLE_WORDS or len(title) > TITLE_CHARS:
        return None
    if question is not None and not _stems(title) & _stems(question):
        return None
    return " ".join(words)


async def write_title(engine: Engine, question: str, answer: str) -> str | None:
    """A title for the exchange, or None when the model did not give a usable one."""
    exchange = f"User: {question[:EXCERPT_CHARS]}\nAssistant: {answer[:EXCERPT_CHARS]}"
    messages = [Message.text("user", INSTRUCTION + exchange)]
    try:
        completion = await engine.complete(messages, TITLE_PARAMS)
    except (EngineError, ValueError):
        return None
    return clean_title(completion.text, question)


class ChatTitles:
    """Titles chats after their first answer, in the background (when settings.chat_titles)."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self.session_factory = session_factory
        self._background: set[asyncio.Task[str | None]] = set()

    def name_chat(
        self, user_id: str, conversation_id: str, question_id: str, engine: Engine, answer: str
    ) -> asyncio.Task[str | None] | None:
        """Have `engine` title the exchange, if `question_id` opens the chat and the chat still
        has its placeholder; the task's result is the new title (None when the chat keeps the
        one it has)."""
        if not answer.strip():
            return None
        task = asyncio.create_task(
            self._retitle(user_id, conversation_id, question_id, engine, answer)
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
        if question is None or title is None:
            return None
        placeholder = placeholder_title(question)

        def rename() -> bool:
            with self.session_factory() as session:
                convs = ConversationRepo(session)
                if convs.get(user_id, conversation_id).title != placeholder:
                    return False  # renamed by the user meanwhile
                convs.rename(user_id, conversation_id, title)
                return True

        return title if await asyncio.to_thread(rename) else None
