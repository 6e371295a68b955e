"""A message is a role and a list of typed parts.

The API, the store, the exporters and the trainers all pass this same value; database ids and
parent links live in `tandem.store`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
# tool_call / tool_output: the OpenAI-style exchange with a model that calls tools;
# tool_result: what a tool showed the person (its display data), kept with the stored answer.
PartType = Literal["text", "image", "tool_call", "tool_output", "tool_result", "citation"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Part:
    """One typed piece of a message. `text` for text parts; `data` for everything structured."""

    type: PartType = "text"
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.text:
            out["text"] = self.text
        if self.data:
            out["data"] = dict(self.data)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Part:
        return cls(type=d.get("type", "text"), text=d.get("text", ""), data=d.get("data") or {})


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...] = ()

    @classmethod
    def text(cls, role: Role, text: str) -> Message:
        return cls(role=role, parts=(Part("text", text),))

    @property
    def content(self) -> str:
        """The message's text, which is what a text-only chat template renders."""
        return "".join(p.text for p in self.parts if p.type == "text")

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        if "parts" in d:
            parts = tuple(Part.from_dict(p) for p in d["parts"])
        else:
            parts = (Part("text", d.get("content") or ""),)
        return cls(role=d["role"], parts=parts)

    def to_openai(self) -> dict[str, str]:
        """The `{"role", "content"}` shape that chat templates and OpenAI-style servers take."""
        return {"role": self.role, "content": self.content}
