"""Which engine answers which model id.

The server holds one `ModelCatalog`. Local model versions are added when they are prepared or
registered (so a new version is servable without a restart); OpenAI-compatible servers add
their models under `<backend name>/<model>`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from tandem.engines.base import Engine, ModelInfo


class ModelNotFound(KeyError):
    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.model_id = model_id

    def __str__(self) -> str:
        return f"model {self.model_id!r} does not exist"


class ModelCatalog:
    """Model id -> engine. Engines can be registered eagerly or as factories loaded on first use."""

    def __init__(self, default_model: str | None = None) -> None:
        self.default_model = default_model
        self._engines: dict[str, Engine] = {}
        self._factories: dict[str, tuple[Callable[[], Engine], ModelInfo]] = {}
        # What a lazily registered model was registered as: its engine, once loaded, knows
        # its capabilities but not that it is a variant of another model.
        self._variants: dict[str, str] = {}
        # Reentrant: an adapter version's factory loads its base engine through `get`.
        self._lock = threading.RLock()
        # Called (outside the lock) before listing and when an unknown id is asked for, so
        # versions registered while the server runs become servable without a restart.
        self._discover: Callable[[ModelCatalog], None] | None = None

    def set_discovery(self, discover: Callable[[ModelCatalog], None]) -> None:
        """`discover(catalog)` adds models that appeared since the last call (cheap: it runs on
        every listing and on every request for an unknown id)."""
        self._discover = discover

    def refresh(self) -> None:
        if self._discover is not None:
            self._discover(self)

    def add(self, engine: Engine) -> None:
        with self._lock:
            self._engines[engine.model_id] = engine
            self._factories.pop(engine.model_id, None)

    def add_lazy(self, info: ModelInfo, factory: Callable[[], Engine]) -> None:
        """Register a model whose engine is built on the first request (loading takes seconds)."""
        with self._lock:
            if info.variant_of:
                self._variants[info.id] = info.variant_of
            if info.id not in self._engines:
                self._factories[info.id] = (factory, info)

    def remove(self, model_id: str) -> None:
        with self._lock:
            engine = self._engines.pop(model_id, None)
            self._factories.pop(model_id, None)
        if engine is not None:
            engine.close()

    def ids(self) -> set[str]:
        """The ids registered so far, without looking for new ones."""
        with self._lock:
            return set(self._engines) | set(self._factories)

    def __contains__(self, model_id: str) -> bool:
        if model_id in self._engines or model_id in self._factories:
            return True
        self.refresh()
        return model_id in self._engines or model_id in self._factories

    def get(self, model_id: str | None = None) -> Engine:
        model_id = model_id or self.default_model
        if model_id is None:
            raise ModelNotFound("")
        if model_id not in self:  # looks for newly registered versions first
            raise ModelNotFound(model_id)
        with self._lock:
            engine = self._engines.get(model_id)
            if engine is not None:
                return engine
            entry = self._factories.get(model_id)
            if entry is None:
                raise ModelNotFound(model_id)
            engine = entry[0]()
            self._engines[model_id] = engine
            del self._factories[model_id]
            return engine

    def list(self) -> list[ModelInfo]:
        self.refresh()
        with self._lock:
            infos = [
                dataclasses.replace(e.info, variant_of=self._variants.get(e.model_id))
                for e in self._engines.values()
            ]
            infos += [info for _, info in self._factories.values()]
        return sorted(infos, key=lambda i: i.id)

    def close(self) -> None:
        with self._lock:
            engines = list(self._engines.values())
            self._engines.clear()
        for engine in engines:
            engine.close()
