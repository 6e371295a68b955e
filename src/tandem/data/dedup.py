"""Exact and near-duplicate removal: normalised text, then MinHash over character shingles.

    keep, exact, near = deduplicate(keys, texts, threshold=0.9)   # indexes kept, in order

`keys` decide exact duplicates (after normalisation); `texts` decide near duplicates. They differ
for conversations: two answers after the same long history are different examples, so the
caller passes the whole row as the key but only the new content (last question + answers) as
the near-duplicate text.

The first occurrence wins, so callers order their examples (oldest signal first) to decide
which copy stays. Near duplicates are found with MinHash + LSH banding and then confirmed with
the exact Jaccard similarity of the shingle sets, so the threshold is exact, not estimated.
Shingles are hashed with crc32 (not Python's salted `hash`) so a build is deterministic.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np

SHINGLE = 5
PERMUTATIONS = 64
BANDS = 16  # 16 bands of 4 rows: pairs at Jaccard 0.9 collide with probability > 0.9999
_PRIME = np.uint64(4294967311)  # the first prime above 2**32
_rng = np.random.default_rng(20240601)
_A = _rng.integers(1, 2**31, size=PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, 2**31, size=PERMUTATIONS, dtype=np.uint64)


def normalize(text: str) -> str:
    """Case, Unicode forms, punctuation and whitespace do not make two examples different."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def shingles(normalized: str) -> frozenset[int]:
    if len(normalized) <= SHINGLE:
        return frozenset({zlib.crc32(normalized.encode())})
    return frozenset(
        zlib.crc32(normalized[i : i + SHINGLE].encode())
        for i in range(len(normalized) - SHINGLE + 1)
    )


def minhash(shingle_set: frozenset[int]) -> np.ndarray:
    values = np.fromiter(shingle_set, dtype=np.uint64, count=len(shingle_set))
    # a < 2**31 and h < 2**32, so a*h + b stays below 2**64: no overflow in uint64.
    return ((_A[:, None] * values[None, :] + _B[:, None]) % _PRIME).min(axis=1)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def deduplicate(
    keys: Sequence[str], texts: Sequence[str], threshold: float = 0.9
) -> tuple[list[int], int, int]:
    """Indexes of the items to keep (first occurrence wins) and how many exact and near
    duplicates were dropped. `threshold` above 1 turns near-duplicate removal off."""
    if len(keys) != len(texts):
        raise ValueError("keys and texts must have the same length")
    seen: set[str] = set()
    kept: list[int] = []
    kept_shingles: dict[int, frozenset[int]] = {}
    buckets: dict[tuple[int, bytes], list[int]] = {}
    exact = near = 0
    rows = PERMUTATIONS // BANDS
    for index, (key, text) in enumerate(zip(keys, texts, strict=True)):
        norm_key = normalize(key)
        if norm_key in seen:
            exact += 1
            continue
        seen.add(norm_key)
        if threshold > 1:
            kept.append(index)
            continue
        sh = shingles(normalize(text))
        signature = minhash(sh)
        bands = [
            (band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(BANDS)
        ]
        candidates = {other for band_key in bands for other in buckets.get(band_key, [])}
        if any(jaccard(sh, kept_shingles[other]) >= threshold for other in sorted(candidates)):
            near += 1
            continue
        kept.append(index)
        kept_shingles[index] = sh
        for band_key in bands:
            buckets.setdefault(band_key, []).append(index)
    return kept, exact, near
