"""What the model sees: one system message built from the user's custom instructions, the
profile's instructions and the chat's own system prompt, followed by the branch's turns."""

from __future__ import annotations

from collections.abc import Sequence

from tandem.core.messages import Message


def render_system_prompt(
    about_user: str = "",
    response_style: str = "",
    profile_instructions: str = "",
    system_prompt: str = "",
) -> str | None:
    """The system message text, or None when there is nothing to say.

    Pass empty custom-instruction strings when the user has switched them off."""
    sections = []
    if about_user.strip():
        sections.append(f"About the user: {about_user.strip()}")
    if response_style.strip():
        sections.append(f"How to respond: {response_style.strip()}")
    if profile_instructions.strip():
        sections.append(profile_instructions.strip())
    if system_prompt.strip():
        sections.append(system_prompt.strip())
    return "\n\n".join(sections) or None


def render_messages(system: str | None, branch: Sequence[Message]) -> list[Message]:
    """The model input: the system message (if any) and the branch, minus stored system turns."""
    turns = [m for m in branch if m.role != "system"]
    return ([Message.text("system", system)] if system else []) + turns
