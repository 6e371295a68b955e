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


@pytest.fixture(scope="session")
def model_home() -> Path:
    home = Path(os.environ.get("TANDEM_TEST_MODEL_HOME") or REPO / ".cache" / "test-models")
    home.mkdir(parents=True, exist_ok=True)
    prepare_embedded_model(home)
    return home


@pytest.fixture(scope="session")
def prepared_model(model_home: Path) -> PreparedModel:
    return prepare_embedded_model(model_home)


@pytest.fixture(scope="session")
def onnx_engine(prepared_model: PreparedModel) -> Iterator[object]:
    from tandem.engines.onnx import OnnxEngine

    engine = OnnxEngine(prepared_model.onnx_dir, prepared_model.version)
    yield engine
    engine.close()
