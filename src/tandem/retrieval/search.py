"""Hybrid search over stored file chunks: BM25 and embedding cosine, fused by reciprocal rank.

    hits = search_chunks(session, file_ids, "what did Zanzibar Okafor sign?", k=5)
    hits[0].file_id, hits[0].ordinal, hits[0].text, hits[0].locator

Vectors are float32 bytes in the database (see tandem.store.files): search is brute force,
streaming the candidate files' chunks in pages and keeping a running top-`DEPTH`, so memory
stays flat however many chunks the files have (never all vectors at once). A chunk whose
vector is not computed yet (the embedding phase runs after a file is ready) ranks by BM25
alone; when the embedding model cannot be loaded, search is BM25 alone.

BM25 is computed in the same single pass: document frequencies and lengths of the whole
candidate set are counted as the pages go by, term frequencies kept only for chunks that
contain a query term, and exact Okapi scores computed at the end (same formula and parameters
as `tandem.core.bm25.BM25Index`).
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.bm25 import reciprocal_rank_fusion, tokenize
from tandem.retrieval.embeddings import Embedder, get_embedder
from tandem.store.files import FileChunkRow

log = logging.getLogger("tandem.search")

PAGE = 1000
# How deep each ranking goes into the fusion: deeper than k so a chunk second in one ranking
# and absent from the other's top k can still win.
DEPTH = 50
K1, B = 1.5, 0.75
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    file_id: str
    ordinal: int
    text: str
    locator: str
    score: float  # fused RRF score


def search_chunks(
    session: Session,
    file_ids: Sequence[str],
    query: str,
    k: int = 5,
    embedder: Embedder | None = None,
) -> list[Hit]:
    """The `k` best chunks of these files (ids the caller has already checked) for `query`."""
    if not file_ids or not query.strip():
        return []
    terms = set(tokenize(query))
    query_vector: np.ndarray | None = None
    dense_available = True

    n_docs = 0
    total_length = 0
    df: Counter[str] = Counter()
    lexical: dict[tuple[str, int], tuple[Counter[str], int]] = {}
    dense: list[tuple[float, tuple[str, int]]] = []  # min-heap of the DEPTH best cosines

    columns = (FileChunkRow.file_id, FileChunkRow.ordinal, FileChunkRow.text)
    rows = session.execute(
        select(*columns, FileChunkRow.embedding)
        .where(FileChunkRow.file_id.in_(list(file_ids)))
        .execution_options(yield_per=PAGE)
    )
    for page in rows.partitions():
        keys = [(r.file_id, r.ordinal) for r in page]
        embedded = [i for i, r in enumerate(page) if r.embedding is not None]
        if embedded and dense_available and query_vector is None:
            # Embedded only once some chunk has a vector: a keyword-only file needs no model.
            try:
                query_vector = (embedder or get_embedder()).embed([query])[0]
            except Exception:
                log.exception("the embedding model is unavailable; searching by keywords")
                dense_available = False
        if embedded and query_vector is not None:
            vectors = np.frombuffer(
                b"".join(page[i].embedding for i in embedded), dtype="<f4"
            ).reshape(len(embedded), -1)
            for i, score in zip(embedded, (vectors @ query_vector).tolist(), strict=True):
                if len(dense) < DEPTH:
                    heapq.heappush(dense, (score, keys[i]))
                elif score > dense[0][0]:
                    heapq.heapreplace(dense, (score, keys[i]))
        for key, row in zip(keys, page, strict=True):
            tokens = tokenize(row.text)
            n_docs += 1
            total_length += len(tokens)
            present = terms.intersection(tokens)
            if present:
                df.update(present)
                tf = Counter(t for t in tokens if t in present)
                lexical[key] = (tf, len(tokens))

    avg_length = total_length / n_docs if n_docs else 1.0
    idf = {t: math.log(1 + (n_docs - f + 0.5) / (f + 0.5)) for t, f in df.items()}
    bm25 = []
    for key, (tf, length) in lexical.items():
        norm = K1 * (1 - B + B * length / (avg_length or 1.0))
        score = sum(idf[t] * n * (K1 + 1) / (n + norm) for t, n in tf.items())
        bm25.append((score, key))
    lexical_ranking = [key for _, key in heapq.nlargest(DEPTH, bm25, key=lambda p: (p[0], p[1]))]
    dense_ranking = [key for _, key in sorted(dense, key=lambda p: (-p[0], p[1]))]

    keys = list(dict.fromkeys(lexical_ranking + dense_ranking))
    index = {key: i for i, key in enumerate(keys)}
    rankings = [[index[key] for key in lexical_ranking]]
    if dense_ranking:
        rankings.append([index[key] for key in dense_ranking])
    fused = reciprocal_rank_fusion(rankings, k=RRF_K)
    best = [keys[i] for i in fused[:k]]
    # The fused score, for display and tests: the same sum reciprocal_rank_fusion ranks by.
    scores = [
        sum(1.0 / (RRF_K + r.index(key) + 1) for r in (lexical_ranking, dense_ranking) if key in r)
        for key in best
    ]
    return _load(session, best, scores)


def _load(session: Session, keys: list[tuple[str, int]], scores: list[float]) -> list[Hit]:
    hits = []
    for (file_id, ordinal), score in zip(keys, scores, strict=True):
        row = session.get(FileChunkRow, (file_id, ordinal))
        if row is not None:
            hits.append(Hit(file_id, ordinal, row.text, row.locator, score))
    return hits
