"""Turning a conversation into model input, calling an engine, recording the generation."""

from tandem.chat.comparison import ComparisonTurn
from tandem.chat.context import resolve_sampling
from tandem.chat.render import render_messages, render_system_prompt
from tandem.chat.service import ChatService
from tandem.chat.turn import Turn

__all__ = [
    "ChatService",
    "ComparisonTurn",
    "Turn",
    "render_messages",
    "render_system_prompt",
    "resolve_sampling",
]
