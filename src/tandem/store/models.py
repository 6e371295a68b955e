"""The database schema as typed SQLAlchemy 2 models.

The Alembic migrations in `tandem.store.migrations` are the source of truth for the database;
these models mirror them (a test checks that the two agree). Ids are random hex strings so they
are not enumerable; model version ids are their human names ("smollm2-135m-instruct").

Signals (feedback, comparison votes) and the generation records they point at are append-only:
a change appends a row and stamps the old one superseded, because a dataset snapshot may
already have read the old row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tandem.core.generation import GenerationRecord, SamplingParams
from tandem.core.messages import Message, Part, Role

MODEL_STATUSES = ("candidate", "production", "retired")


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always UTC and timezone-aware on the way out: SQLite hands back naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }
    # Every model maps one table (SQLAlchemy types it as any FromClause): the repositories'
    # Core INSERTs and UPDATEs on `Model.__table__` type-check.
    __table__: ClassVar[Table]


def _id() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _owner(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=nullable
    )


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = _id()
    # Stored lowercased: uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # May take rater tasks (tandem.store.rater_tasks); set by an admin, like is_admin.
    is_rater: Mapped[bool] = mapped_column(Boolean, default=False)
    use_for_training: Mapped[bool] = mapped_column(Boolean, default=True)
    memory_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Made by `bootstrap_admin` (TANDEM_ADMIN_API_KEY), the only account it ever promotes: an
    # account someone signed up with the same address is never made an admin by the key.
    created_by_bootstrap: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class WebSession(Base):
    __tablename__ = "web_sessions"
    # sha256 of the cookie value: a leaked database does not log anyone in.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = _owner()
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class SiteSetting(Base):
    """Admin-changeable settings that must survive a restart (e.g. closing sign-up)."""

    __tablename__ = "site_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)


class CustomInstructions(Base):
    __tablename__ = "custom_instructions"
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    about_user: Mapped[str] = mapped_column(Text, default="")
    response_style: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Profile(Base):
    __tablename__ = "profiles"
    id: Mapped[str] = _id()
    owner_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    starters: Mapped[list[Any]] = mapped_column(default=list)
    model_version: Mapped[str | None] = mapped_column(String(200))
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stored and validated now; wired to real tools and retrieval by a later issue.
    tools: Mapped[list[Any]] = mapped_column(default=list)
    knowledge_file_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(
        String(200), ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    base_path: Mapped[str] = mapped_column(Text, default="")
    formats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    card: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = _id()
    owner_id: Mapped[str] = _owner()
    title: Mapped[str] = mapped_column(String(300), default="")
    profile_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("profiles.id", ondelete="SET NULL")
    )
    system_prompt: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    # The leaf the user last looked at: where a new message goes when no parent is named.
    current_message_id: Mapped[str | None] = mapped_column(String(32))
    use_memory: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    deleted_at: Mapped[datetime | None]


class StoredGeneration(Base):
    """The exact record signals point at: enough to reproduce the answer."""

    __tablename__ = "generation_records"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    backend: Mapped[str] = mapped_column(String(100))
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    # What the model saw: the rendered prompt for local engines, the message list always
    # (remote engines render their own template, so the list is the reproducible input).
    rendered_prompt: Mapped[str | None] = mapped_column(Text)
    input_messages: Mapped[list[Any]] = mapped_column(default=list)
    output_text: Mapped[str] = mapped_column(Text, default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    time_to_first_token_s: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(20))
    tool_calls: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notices: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = _created()

    def to_record(self) -> GenerationRecord:
        return GenerationRecord(
            model_version=self.model_version,
            engine=self.backend,
            sampling=SamplingParams.from_dict(self.sampling or {}),
            seed=self.seed,
            rendered_prompt=self.rendered_prompt,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=self.latency_s,
            time_to_first_token_s=self.time_to_first_token_s,
            finish_reason=self.finish_reason,
            tool_calls=list(self.tool_calls or []),
            context=dict(self.context or {}),
            notices=list(self.notices or []),
        )


class StoredMessage(Base):
    """A node of a conversation tree; the path root -> node is what the model sees."""

    __tablename__ = "messages"
    id: Mapped[str] = _id()
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(String(20))
    parts: Mapped[list[Any]] = mapped_column(default=list)
    generation_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("generation_records.id", ondelete="SET NULL")
    )
    # The text parts joined: what the sidebar's search matches (the JSON of `parts` escapes
    # non-ASCII characters, so it cannot be searched as text).
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _created()

    def to_message(self) -> Message:
        return Message(role=self.role, parts=tuple(Part.from_dict(p) for p in self.parts))


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    generation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("generation_records.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="SET NULL")
    )
    rating: Mapped[str] = mapped_column(String(4))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _created()
    # A change appends a new row and stamps this one; withdrawal stamps withdrawn_at.
    superseded_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]


class Comparison(Base):
    __tablename__ = "comparisons"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_message_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE")
    )
    message_a_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE")
    )
    message_b_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE")
    )
    verdict: Mapped[str | None] = mapped_column(String(10))
    voted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class Memory(Base):
    """Something the user asked the assistant to remember; listed in every system message
    while memory is on for the user and the chat. Deleting stamps deleted_at."""

    __tablename__ = "memories"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    text: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class Improvement(Base):
    """The user rewrote an answer: `text` is what the model should have said in place of the
    generation `original_generation_id`. A signal, so withdrawal stamps withdrawn_at."""

    __tablename__ = "improvements"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    original_message_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE")
    )
    original_generation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("generation_records.id", ondelete="CASCADE"), index=True
    )
    improved_message_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE")
    )
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    withdrawn_at: Mapped[datetime | None]


class Upload(Base):
    """An image a user uploaded; the bytes live in $TANDEM_HOME/uploads/<user_id>/<id>."""

    __tablename__ = "uploads"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    filename: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
