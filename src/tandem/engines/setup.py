"""Build the server's model catalog from settings and the model registry directory.

Built-in backends register through the same table a plugin would use (`BACKENDS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
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
    # The same engine on fp32 weights, where a version has them (`tandem models prepare
    # --fp32`): the reference's answers at batched int8 speed, for evaluations.
    "onnx-fp32": ("onnx-fp32", _onnx),
    "transformers": ("hf", _transformers),
}
DEFAULT_BACKEND = "onnx"


def _local_ids(version: str) -> list[str]:
    return [version if b == DEFAULT_BACKEND else f"{version}@{b}" for b in BACKENDS]


def add_local_version(catalog: ModelCatalog, version: str, root: Path) -> None:
    """Register a model version directory: the default engine under its plain id, the
    transformers reference as `<id>@transformers`, the fp32 ONNX model (if built) as
    `<id>@onnx-fp32`. Engines load on first use."""
    for backend, (fmt, factory) in BACKENDS.items():
        model_dir = root / fmt
        if not model_dir.exists():
            continue
        variant = backend != DEFAULT_BACKEND
        model_id = f"{version}@{backend}" if variant else version
        catalog.add_lazy(
            ModelInfo(id=model_id, backend=backend, variant_of=version if variant else None),
            partial(factory, model_dir, model_id),
        )


def add_registry_versions(catalog: ModelCatalog, registry: Path) -> None:
    """Add every complete chat version in the registry directory that the catalog lacks. A
    version is complete once its manifest exists (written last); reward models score answers
    and cannot chat, so they are not served."""
    if not registry.exists():
        return
    known = catalog.ids()  # not `in catalog`: that would call this discovery again
    for root in sorted(registry.iterdir()):
        manifest = root / "manifest.json"
        if not manifest.exists() or any(i in known for i in _local_ids(root.name)):
            continue
        try:
            kind = json.loads(manifest.read_text()).get("kind", "chat")
        except (OSError, ValueError):
            continue
        if kind == "chat":
            add_local_version(catalog, root.name, root)


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
    add_registry_versions(catalog, settings.registry_dir)
    add_remote_backends(catalog, settings)
    # Versions trained while the server runs (tandem train) are picked up on the next
    # /v1/models or on the first request naming them.
    catalog.set_discovery(lambda c: add_registry_versions(c, settings.registry_dir))
    return catalog
