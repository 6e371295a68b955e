"""Conversations and their message trees.

A conversation is a tree: editing a user message or regenerating an answer adds a sibling, so
nothing is overwritten. The model sees one branch, the path from the root to a message.
Every method takes the acting user's id; another user's conversation is `NotFound`.
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from enum import Enum
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tandem.core.errors import NotFound
from tandem.core.messages import Message
from tandem.store.models import Conversation, StoredMessage, utcnow


class _Unset(Enum):
    """A keyword argument not given: `system_prompt=None` clears the prompt, so None cannot
    mean "leave it"."""

    token = 0


_UNSET = _Unset.token


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConversationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        user_id: str,
        title: str = "",
        model: str | None = None,
        profile_id: str | None = None,
        system_prompt: str | None = None,
        use_memory: bool = True,
    ) -> Conversation:
        conv = Conversation(
            owner_id=user_id,
            title=title,
            model=model,
            profile_id=profile_id,
            system_prompt=system_prompt,
            use_memory=use_memory,
        )
        self.session.add(conv)
        self.session.commit()
        return conv

    def get(self, user_id: str, conversation_id: str) -> Conversation:
        conv = self.session.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id,
                Conversation.owner_id == user_id,
                Conversation.deleted_at.is_(None),
            )
        )
        if conv is None:
            raise NotFound("conversation", conversation_id)
        return conv

    def list(
        self, user_id: str, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        """Newest activity first; `query` matches the title or any message's text,
        case-insensitively."""
        stmt = select(Conversation).where(
            Conversation.owner_id == user_id, Conversation.deleted_at.is_(None)
        )
        if query:
            pattern = f"%{_escape_like(query)}%"
            in_messages = (
                select(StoredMessage.id)
                .where(
                    StoredMessage.conversation_id == Conversation.id,
                    StoredMessage.search_text.ilike(pattern, escape="\\"),
                )
                .exists()
            )
            stmt = stmt.where(or_(Conversation.title.ilike(pattern, escape="\\"), in_messages))
        stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.created_at.desc())
        return list(self.session.scalars(stmt.limit(limit).offset(offset)))

    def update(
        self,
        user_id: str,
        conversation_id: str,
        title: str | None = None,
        system_prompt: str | Literal[_Unset.token] | None = _UNSET,
        use_memory: bool | None = None,
    ) -> Conversation:
        conv = self.get(user_id, conversation_id)
        if title is not None:
            conv.title = title
        if use_memory is not None:
            conv.use_memory = use_memory
        if system_prompt is not _UNSET:
            conv.system_prompt = system_prompt
        conv.updated_at = utcnow()
        self.session.commit()
        return conv

    def rename(self, user_id: str, conversation_id: str, title: str) -> Conversation:
        return self.update(user_id, conversation_id, title=title)

    def delete(self, user_id: str, conversation_id: str) -> None:
        """Soft delete: the conversation disappears for its owner; signals keep their target."""
        conv = self.get(user_id, conversation_id)
        conv.deleted_at = utcnow()
        self.session.commit()

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        user_id: str,
        conversation_id: str,
        message: Message,
        parent_id: str | None,
        generation_id: str | None = None,
        make_current: bool = True,
    ) -> StoredMessage:
        """Append `message` under `parent_id` (None: a new root). The parent must be in the
        same conversation."""
        conv = self.get(user_id, conversation_id)
        if parent_id is not None:
            parent = self.session.get(StoredMessage, parent_id)
            if parent is None or parent.conversation_id != conv.id:
                raise NotFound("message", parent_id)
        row = StoredMessage(
            conversation_id=conv.id,
            parent_id=parent_id,
            role=message.role,
            parts=message.to_dict()["parts"],
            generation_id=generation_id,
            search_text=message.content,
        )
        self.session.add(row)
        self.session.flush()
        if make_current:
            conv.current_message_id = row.id
        conv.updated_at = utcnow()
        self.session.commit()
        return row

    def get_message(self, user_id: str, message_id: str) -> StoredMessage:
        """A message of one of the user's live conversations."""
        row = self.session.scalar(
            select(StoredMessage)
            .join(Conversation, Conversation.id == StoredMessage.conversation_id)
            .where(
                StoredMessage.id == message_id,
                Conversation.owner_id == user_id,
                Conversation.deleted_at.is_(None),
            )
        )
        if row is None:
            raise NotFound("message", message_id)
        return row

    def set_current(self, user_id: str, conversation_id: str, message_id: str | None) -> None:
        conv = self.get(user_id, conversation_id)
        if message_id is not None:
            msg = self.get_message(user_id, message_id)
            if msg.conversation_id != conv.id:
                raise NotFound("message", message_id)
        conv.current_message_id = message_id
        self.session.commit()

    def tree(self, user_id: str, conversation_id: str) -> builtins.list[StoredMessage]:
        """Every message of the conversation, oldest first (parents before children)."""
        conv = self.get(user_id, conversation_id)
        return list(
            self.session.scalars(
                select(StoredMessage)
                .where(StoredMessage.conversation_id == conv.id)
                .order_by(StoredMessage.created_at, StoredMessage.id)
            )
        )

    def branch(self, user_id: str, message_id: str) -> builtins.list[StoredMessage]:
        """The path from the root to `message_id`, inclusive: what the model sees."""
        leaf = self.get_message(user_id, message_id)
        by_id = {m.id: m for m in self.tree(user_id, leaf.conversation_id)}
        path: list[StoredMessage] = []
        node: StoredMessage | None = leaf
        while node is not None:
            path.append(node)
            node = by_id.get(node.parent_id) if node.parent_id else None
        return path[::-1]
