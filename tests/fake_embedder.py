"""A stand-in for MiniLM in hermetic tests (loading the real model takes ~4 s here): hashed
bag-of-words vectors, so texts sharing words are close. It knows nothing of meaning, so
paraphrase retrieval is tested with the real model (tests marked `model`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tandem.core.bm25 import tokenize


class HashEmbedder:
    dimensions = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            for token in tokenize(text):
                out[i, hashlib.md5(token.encode()).digest()[0] % self.dimensions] += 1.0
            norm = float(np.linalg.norm(out[i]))
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out
