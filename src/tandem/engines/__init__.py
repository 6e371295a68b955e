"""Engines: one interface (`Engine.stream`), several backends."""

from tandem.engines.base import (
    Chunk,
    ContextLengthExceeded,
    EncodedPrompt,
    Engine,
    EngineError,
    ModelInfo,
)
from tandem.engines.catalog import ModelCatalog, ModelNotFound

__all__ = [
    "Chunk",
    "ContextLengthExceeded",
    "EncodedPrompt",
    "Engine",
    "EngineError",
    "ModelCatalog",
    "ModelInfo",
    "ModelNotFound",
]
