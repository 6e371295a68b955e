"""Build the server's model catalog from settings and the model registry directory.

Built-in backends register through the same table a plugin would use (`BACKENDS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from tandem.core.settings import BackendConfig, Settings
from tandem.engines.base import Engine, ModelInfo
from tandem.engines.catalog import ModelCatalog
from tandem.engines.lora import (
    base_remote_model,
    lora_backend,
    onnx_adapter_chain,
    read_adapter,
)

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


def add_local_version(
    catalog: ModelCatalog, version: str, root: Path, variants_only: bool = False
) -> None:
    """Register a model version directory: the default engine under its plain id, the
    transformers reference as `<id>@transformers`, the fp32 ONNX model (if built) as
    `<id>@onnx-fp32`. Engines load on first use. `variants_only`: the plain id is served
    otherwise (an adapter over its base's engine)."""
    for backend, (fmt, factory) in BACKENDS.items():
        model_dir = root / fmt
        variant = backend != DEFAULT_BACKEND
        if not model_dir.exists() or (variants_only and not variant):
            continue
        model_id = f"{version}@{backend}" if variant else version
        catalog.add_lazy(
            ModelInfo(id=model_id, backend=backend, variant_of=version if variant else None),
            partial(factory, model_dir, model_id),
        )


def _remote_info(version: str, backend: BackendConfig) -> ModelInfo:
    return ModelInfo(
        id=version,
        backend="openai",
        owned_by=backend.name,
        accepts_images=backend.accepts_images,
        supports_tools=backend.supports_tools,
    )


def _onnx_adapter(catalog: ModelCatalog, version: str, base: str, dirs: list[Path]) -> Engine:
    """An adapter version over its base's default engine (loaded first if it is not yet)."""
    from tandem.engines.base import EngineError
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.onnx_adapter import AdapterEngine
    from tandem.engines.onnx_lora import AdapterNotServable, load_adapter_chain

    engine = catalog.get(base)
    if not isinstance(engine, OnnxEngine):
        raise EngineError(
            f"{version} is an adapter of {base}, which the ONNX engine does not serve"
        )
    try:
        weights = load_adapter_chain(dirs, engine.lora_sites)
    except AdapterNotServable as exc:
        raise EngineError(
            f"{version} cannot be served over {base} ({exc}); "
            f"merge it: tandem models merge {version} --onnx"
        ) from exc
    return AdapterEngine(engine, version, weights)


def _lora_engine(backend: BackendConfig, version: str) -> Engine:
    from tandem.engines.openai_compat import OpenAICompatEngine

    return OpenAICompatEngine(backend, version, model_id=version)


def _lora_base_engine(backend: BackendConfig, version: str) -> Engine:
    from tandem.engines.openai_compat import OpenAICompatEngine

    return OpenAICompatEngine(backend, base_remote_model(backend), model_id=version)


def add_registry_versions(
    catalog: ModelCatalog, registry: Path, backends: Sequence[BackendConfig] = ()
) -> None:
    """Add every complete chat version in the registry directory that the catalog lacks. A
    version is complete once its manifest exists (written last); reward models score answers
    and cannot chat, so they are not served. A `"lora": true` backend serves its base version
    (the plain id; tandem's own engines keep the `@` variants) and that base's LoRA adapters,
    each under its own id (vLLM serves a loaded adapter under its `lora_name`, which tandem
    makes the version id: tandem.engines.lora)."""
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
        if kind != "chat":
            continue
        adapter = read_adapter(registry, root.name)
        backend = lora_backend(backends, adapter.base) if adapter else None
        chain = onnx_adapter_chain(registry, root.name) if adapter else None
        if backend is not None:
            catalog.add_lazy(
                _remote_info(root.name, backend), partial(_lora_engine, backend, root.name)
            )
        elif chain is not None:
            # A candidate costs its adapter, not a second model: the base's engine serves it.
            info = ModelInfo(id=root.name, backend="onnx")
            catalog.add_lazy(info, partial(_onnx_adapter, catalog, root.name, *chain))
            add_local_version(catalog, root.name, root, variants_only=True)
        else:
            add_local_version(catalog, root.name, root)
        if (base_backend := lora_backend(backends, root.name)) is not None:
            info = _remote_info(root.name, base_backend)
            catalog.add_lazy(info, partial(_lora_base_engine, base_backend, root.name))


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
    add_registry_versions(catalog, settings.registry_dir, settings.backends)
    add_remote_backends(catalog, settings)
    # Versions trained while the server runs (tandem train) are picked up on the next
    # /v1/models or on the first request naming them.
    catalog.set_discovery(
        lambda c: add_registry_versions(c, settings.registry_dir, settings.backends)
    )
    return catalog
