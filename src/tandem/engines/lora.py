"""LoRA adapters served by vLLM: loaded while a rollout serves them, unloaded once none does.

A `TANDEM_BACKENDS` entry with `"lora": true` is a vLLM server started with `--enable-lora` and
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, running the registry version named by `"base_model"`.
The base version itself is served by that server (under the server's own name for it), so
production and its adapter candidates answer from the same engine.
A registry version whose manifest says `"adapter_of": <that base>` (its PEFT adapter in
`adapter/`, see `tandem.registry.versions.ADAPTER_FORMAT`) is served by that server as the model
`<version>`: the catalog sends its requests there (`tandem.engines.setup`), and the rollout
routes load it before a rollout serves it and unload it once none does, through vLLM's runtime
endpoints (vLLM docs, "LoRA Adapters" → "Dynamically serving LoRA Adapters"):

    POST {base_url}/load_lora_adapter    {"lora_name": "<version>", "lora_path": "<host path>"}
    POST {base_url}/unload_lora_adapter  {"lora_name": "<version>"}

`base_url` ends in `/v1` as for chat, so these are vLLM's `/v1/load_lora_adapter` and
`/v1/unload_lora_adapter`. A loaded adapter is listed by `GET {base_url}/models` (with `parent`
set to the base model). That listing, not this process's memory, says what is loaded, so
several API workers and a restarted tandem agree with the server.

    adapters = LoraAdapters(settings.backends, settings.home)
    adapters.load(["my-lora-v1"])          # Conflict when vLLM refuses or is unreachable
    adapters.release(keep={"my-lora-v1"})  # unloads tandem's adapters outside `keep`
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from tandem.core.errors import Conflict, InvalidInput
from tandem.core.settings import BackendConfig
from tandem.engines.base import EngineError

log = logging.getLogger(__name__)

# The registry's name for the adapter directory (tandem.registry.versions.ADAPTER_FORMAT;
# engines read manifests themselves and do not import the registry).
ADAPTER_FORMAT = "adapter"
# A version's weights for tandem's own engines: without them an adapter serves only on vLLM.
LOCAL_FORMATS = ("onnx", "hf")


@dataclass(frozen=True)
class Adapter:
    version: str
    base: str  # the registry version the adapter was trained on
    path: Path  # its directory on this machine


def read_adapter(registry: Path, version: str) -> Adapter | None:
    """The adapter a registry version holds (its manifest names `adapter_of` and the adapter
    directory has an `adapter_config.json`), else None."""
    root = registry / version
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    base = manifest.get("adapter_of") if isinstance(manifest, dict) else None
    path = root / ADAPTER_FORMAT
    if not base or not (path / "adapter_config.json").exists():
        return None
    return Adapter(version, str(base), path)


def adapter_chain(registry: Path, version: str) -> tuple[str, list[Path]] | None:
    """For an adapter version: the first version of its lineage with full weights (the base
    its adapters apply to) and the adapter directories from that base down to `version`.
    None when `version` is not an adapter, or its chain breaks (a missing manifest)."""
    dirs: list[Path] = []
    current = version
    while (adapter := read_adapter(registry, current)) is not None:
        if len(dirs) >= 64 or adapter.path in dirs:  # a cycle in hand-edited manifests
            return None
        dirs.insert(0, adapter.path)
        current = adapter.base
    if not dirs or not (registry / current / "manifest.json").exists():
        return None
    return current, dirs


def onnx_adapter_chain(registry: Path, version: str) -> tuple[str, list[Path]] | None:
    """`adapter_chain` when the embedded engine serves `version` over its base: the base has
    the engine's ONNX model and the version none of its own (a copy merged on demand with
    `tandem models merge --onnx` is served as itself)."""
    if (registry / version / "onnx").is_dir():
        return None
    chain = adapter_chain(registry, version)
    if chain is None or not (registry / chain[0] / "onnx").is_dir():
        return None
    return chain


def lora_backend(backends: Iterable[BackendConfig], base: str) -> BackendConfig | None:
    """The first backend that loads adapters of `base`."""
    return next((b for b in backends if b.lora and b.base_model == base), None)


def base_remote_model(backend: BackendConfig, timeout_s: float = 10.0) -> str:
    """The id the server runs its base model under: the first of `"models"` when configured,
    else the first model its `/models` lists without a `parent` (adapters have one)."""
    if backend.models:
        return backend.models[0]
    url = backend.base_url.rstrip("/") + "/models"
    try:
        response = httpx.get(url, headers=_headers(backend), timeout=timeout_s)
        response.raise_for_status()
        data = response.json().get("data", [])
        return next(str(m["id"]) for m in data if not m.get("parent"))
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise EngineError(f"{backend.name} did not name its base model: {exc!r}") from exc


def host_path(backend: BackendConfig, home: Path, path: Path) -> str:
    """`path` as the vLLM host sees it: `adapter_root` stands for $TANDEM_HOME there."""
    if not backend.adapter_root:
        return str(path.absolute())
    relative = path.relative_to(home)
    return str(PurePosixPath(backend.adapter_root, *relative.parts))


def _headers(backend: BackendConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}


def _detail(response: httpx.Response) -> str:
    """vLLM's error text: `{"message": ...}` (its ErrorResponse), `{"error": {...}}`, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message or body.get("message") or body.get("detail") or body)[:300]
    return str(body)[:300]


class LoraAdapters:
    """Loads and unloads the registry's adapters on the backends with `"lora": true`."""

    def __init__(
        self, backends: Sequence[BackendConfig], home: Path, timeout_s: float = 120.0
    ) -> None:
        self.backends = [b for b in backends if b.lora]
        self.home = home
        self.registry = home / "models"
        # Loading reads the adapter's weights on the vLLM host; a host that does not answer at
        # all should not hold an admin's request (or the server's start) for that long.
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)

    def served_by(self, version: str) -> tuple[Adapter, BackendConfig] | None:
        """The adapter and the backend that serves it, when `version` is an adapter of a
        backend's base model."""
        adapter = read_adapter(self.registry, version)
        if adapter is None:
            return None
        backend = lora_backend(self.backends, adapter.base)
        if backend is None:
            over_base = onnx_adapter_chain(self.registry, version) is not None
            if not over_base and not any(
                (self.registry / version / f).exists() for f in LOCAL_FORMATS
            ):
                raise InvalidInput(
                    f"{version} is a LoRA adapter of {adapter.base} without merged weights, and "
                    f'no backend in TANDEM_BACKENDS has "lora": true and '
                    f'"base_model": "{adapter.base}" to serve it'
                )
            return None
        return adapter, backend

    def listed(self, backend: BackendConfig) -> set[str]:
        """The model ids the server offers now (its base and the adapters it has loaded)."""
        url = backend.base_url.rstrip("/") + "/models"
        try:
            response = httpx.get(url, headers=_headers(backend), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise Conflict(f"vLLM backend {backend.name} is unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise Conflict(
                f"vLLM backend {backend.name} answered {response.status_code} to GET /models: "
                f"{_detail(response)}"
            )
        try:
            return {str(m["id"]) for m in response.json().get("data", [])}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Conflict(f"vLLM backend {backend.name} sent a malformed model list") from exc

    def _post(self, backend: BackendConfig, endpoint: str, name: str, body: dict) -> None:
        url = f"{backend.base_url.rstrip('/')}/{endpoint}"
        try:
            response = httpx.post(url, json=body, headers=_headers(backend), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise Conflict(
                f"vLLM backend {backend.name} is unreachable ({endpoint} {name}): {exc}"
            ) from exc
        if response.status_code >= 400:
            raise Conflict(
                f"vLLM backend {backend.name} refused {endpoint} for {name} "
                f"({response.status_code}): {_detail(response)}"
            )

    def load(self, versions: Iterable[str]) -> list[str]:
        """Load every adapter among `versions` that its server has not loaded yet; the others
        (not adapters, or served locally) are left alone. All or nothing: when one load fails,
        the ones this call made are unloaded again and the Conflict says why. Returns the
        versions loaded now."""
        done: list[tuple[Adapter, BackendConfig]] = []
        try:
            for version in dict.fromkeys(versions):
                served = self.served_by(version)
                if served is None:
                    continue
                adapter, backend = served
                if adapter.version in self.listed(backend):
                    continue  # loaded before (another worker, or before a restart)
                body = {
                    "lora_name": adapter.version,
                    "lora_path": host_path(backend, self.home, adapter.path),
                }
                self._post(backend, "load_lora_adapter", adapter.version, body)
                done.append((adapter, backend))
                log.info("loaded adapter %s into %s", adapter.version, backend.name)
        except (Conflict, InvalidInput):
            for adapter, backend in done:
                with contextlib.suppress(Conflict):
                    body = {"lora_name": adapter.version}
                    self._post(backend, "unload_lora_adapter", adapter.version, body)
            raise
        return [adapter.version for adapter, _ in done]

    def release(self, keep: Collection[str]) -> list[str]:
        """Unload the registry adapters the servers have loaded that are not in `keep` (the
        versions rollouts still serve). Adapters tandem did not register (a server's own
        `--lora-modules`) are never touched. Called after a rollout change is committed, so a
        failure is logged, not raised: the adapter only keeps a slot until the next change."""
        unloaded: list[str] = []
        for backend in self.backends:
            try:
                listed = self.listed(backend)
            except Conflict as exc:
                log.warning("%s; its unused adapters stay loaded", exc)
                continue
            for name in sorted(listed - set(keep)):
                adapter = read_adapter(self.registry, name)
                if adapter is None or adapter.base != backend.base_model:
                    continue
                try:
                    self._post(backend, "unload_lora_adapter", name, {"lora_name": name})
                except Conflict as exc:
                    log.warning("%s; it stays loaded until the next rollout change", exc)
                    continue
                unloaded.append(name)
                log.info("unloaded adapter %s from %s", name, backend.name)
        return unloaded
