"""Okapi BM25 over a small in-memory corpus: the lexical half of hybrid retrieval, and the
whole of the offline web-search index.

    index = BM25Index(["the cat sat", "dogs bark"])
    index.search("cat", k=5)        # [(0, 0.98...)]

Lexical matching finds what embeddings miss: names, numbers, rare words and exact phrases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; the same function for documents and queries."""
    return _TOKEN.findall(text.lower())


class BM25Index:
    # The usual defaults (Robertson & Zaragoza 2009): term-frequency saturation and length
    # normalisation.
    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.doc_terms = [Counter(tokenize(d)) for d in documents]
        self.lengths = [sum(t.values()) for t in self.doc_terms]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        df: Counter[str] = Counter()
        for terms in self.doc_terms:
            df.update(terms.keys())
        n = len(self.doc_terms)
        # The "+1" form of IDF stays positive for terms in more than half the documents.
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def __len__(self) -> int:
        return len(self.doc_terms)

    def scores(self, query: str) -> list[float]:
        terms = [t for t in tokenize(query) if t in self.idf]
        out = []
        for tf, length in zip(self.doc_terms, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg_length or 1.0))
            out.append(
                sum(self.idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in terms if t in tf)
            )
        return out

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The `k` best (document index, score) pairs with a positive score, best first."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda p: (-p[1], p[0]))
        return [(i, s) for i, s in ranked[:k] if s > 0]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    """Fuse several rankings of the same items (Cormack et al. 2009): each item scores
    sum(1 / (k + rank)). Rank-based, so BM25 and cosine scores need no common scale."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda i: (-scores[i], i))
