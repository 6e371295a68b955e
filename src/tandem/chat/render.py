"""What the model sees: one system message built from the user's custom instructions, their
memories, the profile's instructions and the chat's own system prompt, followed by the
branch's turns (image parts dropped for a model that cannot see them)."""

from __future__ import annotations

from collections.abc import Sequence

from tandem.core.messages import Message, Part

MEMORIES_HEADING = "Things the user asked you to remember:"


def render_system_prompt(
    about_user: str = "",
    response_style: str = "",
    profile_instructions: str = "",
    system_prompt: str = "",
    memories: Sequence[str] = (),
) -> str | None:
    """The system message text, or None when there is nothing to say.

    Pass empty custom-instruction strings when the user has switched them off, and no
    memories when memory is off for the user or the chat."""
    sections = []
    if about_user.strip():
        sections.append(f"About the user: {about_user.strip()}")
    if response_style.strip():
        sections.append(f"How to respond: {response_style.strip()}")
    remembered = [" ".join(m.split()) for m in memories if m.strip()]
    if remembered:
        sections.append("\n".join([MEMORIES_HEADING, *(f"- {m}" for m in remembered)]))
    if profile_instructions.strip():
        sections.append(profile_instructions.strip())
    if system_prompt.strip():
        sections.append(system_prompt.strip())
    return "\n\n".join(sections) or None


def render_messages(system: str | None, branch: Sequence[Message]) -> list[Message]:
    """The model input: the system message (if any) and the branch, minus stored system turns."""
    turns = [m for m in branch if m.role != "system"]
    return ([Message.text("system", system)] if system else []) + turns


def add_to_system(messages: Sequence[Message], addition: str) -> list[Message]:
    """The model input with a behavior experiment's system-prompt variant in it: `addition`
    is appended to the system message as its last section, after a blank line (so after the
    custom instructions, memories, profile instructions and chat prompt it is rendered
    from); without a system message it becomes the system message."""
    text = addition.strip()
    if not text:
        return list(messages)
    if messages and messages[0].role == "system":
        first = messages[0]
        rest = tuple(p for p in first.parts if p.type != "text")
        combined = f"{first.content.strip()}\n\n{text}" if first.content.strip() else text
        return [Message("system", (Part("text", combined), *rest)), *messages[1:]]
    return [Message.text("system", text), *messages]


def without_images(messages: Sequence[Message]) -> tuple[list[Message], bool]:
    """The messages minus their image parts, and whether any of the user's were dropped
    (images tools made for earlier answers, such as charts, are no news to the user)."""
    out, dropped = [], False
    for m in messages:
        parts = tuple(p for p in m.parts if p.type != "image")
        dropped = dropped or (m.role == "user" and len(parts) != len(m.parts))
        out.append(Message(m.role, parts) if len(parts) != len(m.parts) else m)
    return out, dropped
