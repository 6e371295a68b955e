"""Build the server's model catalog from settings and the model registry directory.

Built-in backends register through the same table a plugin would use (`BACKENDS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tandem.core.settings import Settings
from tandem.engines.base import Engine, ModelInfo
from tandem.engines.catalog import ModelCatalog

log = logging.getLogger(__name__)


def _onnx(model_dir: Path, model_id: str) -> Engine:
    from tandem.engines.onnx import OnnxEngine

    return OnnxEngine(model_dir, model_id)


def _transformers(model_dir: Path, model_id: str) -> Engine:
    from tandem.engines.transformers_engine import TransformersEngine

    return TransformersEngine(model_dir, model_id)


# backend name -> (format directory it serves inside a model version, factory)
BACKENDS: dict[str, tuple[str, Callable[[Path, str], Engine]]] = {
    "onnx": ("onnx", _onnx),
    "transformers": ("hf", _transformers),
}
DEFAULT_BACKEND = "onnx"


def add_local_version(catalog: ModelCatalog, version: str, root: Path) -> None:
    """Register a model version directory: the default engine under its plain id, the
    transformers reference as `<id>@transformers`. Engines load on first use."""
    for backend, (fmt, factory) in BACKENDS.items():
        model_dir = root / fmt
        if not model_dir.exists():
            continue
        model_id = version if backend == DEFAULT_BACKEND else f"{version}@{backend}"
        catalog.add_lazy(
            ModelInfo(id=model_id, backend=backend),
            lambda d=model_dir, m=model_id, f=factory: f(d, m),
        )


def add_remote_backends(catalog: ModelCatalog, settings: Settings) -> None:
    from tandem.engines.openai_compat import OpenAICompatEngine, list_remote_models

    for backend in settings.backends:
        try:
            models = list_remote_models(backend)
        except Exception as exc:  # one unreachable server must not stop startup
            log.warning("backend %s (%s) unavailable: %s", backend.name, backend.base_url, exc)
            continue
        for remote in models:
            catalog.add(OpenAICompatEngine(backend, remote))


def build_catalog(settings: Settings) -> ModelCatalog:
    """The catalog `tandem serve` uses: every prepared version in the registry directory (the
    embedded model once `tandem.registry.embedded` has prepared it, and every trained version)
    and the configured OpenAI-compatible servers. Engines load on first use."""
    catalog = ModelCatalog(default_model=settings.default_model)
    registry = settings.registry_dir
    if registry.exists():
        for root in sorted(p for p in registry.iterdir() if (p / "manifest.json").exists()):
            add_local_version(catalog, root.name, root)
    add_remote_backends(catalog, settings)
    return catalog
