"""Value types shared by every layer. Pure values: identity is a storage concern."""

from tandem.core.generation import Completion, GenerationRecord, SamplingParams, Usage
from tandem.core.messages import Message, Part

__all__ = ["Completion", "GenerationRecord", "Message", "Part", "SamplingParams", "Usage"]
