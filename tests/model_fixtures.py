"""Fixtures for tests that need the real embedded model.

The model is prepared once into a cache shared by every test run (`.cache/test-models` at the
repository root, or $TANDEM_TEST_MODEL_HOME): preparation converts the GGUF and builds the ONNX
model (about 30 s), which no test should pay twice. Import the fixtures you use:

    (registered for every test module by tests/conftest.py through pytest_plugins)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.registry.embedded import PreparedModel, prepare_embedded_model

REPO = Path(__file__).resolve().parents[1]


def _test_model_home() -> Path:
    home = Path(os.environ.get("TANDEM_TEST_MODEL_HOME") or REPO / ".cache" / "test-models")
    home.mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="session")
def model_home() -> Path:
    home = _test_model_home()
    prepare_embedded_model(home)
    return home


class SharedOnnxEmbedder:
    """The real ONNX MiniLM, prepared once into the shared test-model cache on first use (a
    test's own TANDEM_HOME is fresh, and exporting into it every test would cost ~10 s)."""

    dimensions = 384
    _loaded: object = None

    def embed(self, texts):  # type: ignore[no-untyped-def]
        if SharedOnnxEmbedder._loaded is None:
            from tandem.retrieval.embedding_model import prepare_embedding_model
            from tandem.retrieval.embeddings import OnnxEmbedder

            directory = prepare_embedding_model(_test_model_home())
            SharedOnnxEmbedder._loaded = OnnxEmbedder(directory)
        return SharedOnnxEmbedder._loaded.embed(texts)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def prepared_model(model_home: Path) -> PreparedModel:
    return prepare_embedded_model(model_home)


@pytest.fixture(scope="session")
def onnx_engine(prepared_model: PreparedModel) -> Iterator[object]:
    from tandem.engines.onnx import OnnxEngine

    engine = OnnxEngine(prepared_model.onnx_dir, prepared_model.version)
    yield engine
    engine.close()
