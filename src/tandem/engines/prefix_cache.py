"""Keys and values of recent sequences, kept so that a conversation's next turn (or a
regenerate) prefills only what is new.

    cache = PrefixCache(budget_bytes=512 * 2**20)
    entry, common = cache.longest(prompt_ids)   # the entry sharing the longest prefix
    kv = entry.kv[..., :common, :]              # [layers, 2, kv_heads, tokens, head_size]
    cache.put(sequence_ids, kv)                 # when a request finishes

A chat's turn N+1 starts with exactly the tokens turn N read and wrote (the chat template
renders the same history the same way), so re-encoding the whole history each turn is wasted
work that grows with the chat: 11 s to the first token by the third long turn, 23 s by the
eighth. Entries are matched by token ids (the longest common prefix wins, so a history whose
answer re-tokenizes differently still reuses everything before the difference), and evicted
least recently used first once they exceed the byte budget. An entry that is a prefix of a
newly stored one is dropped: the new one serves every request the old one could.

Keys and values depend on the weights that computed them: a LoRA adapter served over the same
base (`tandem.engines.onnx_lora`) changes them, so entries are kept per `namespace` (the
adapter's name; None for the base) and only match requests of the same one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class CachedPrefix:
    ids: np.ndarray  # int64 token ids, one per cached position
    kv: np.ndarray  # float32 [layers, 2 (key, value), kv_heads, tokens, head_size]
    namespace: str | None = None

    @property
    def nbytes(self) -> int:
        return int(self.kv.nbytes + self.ids.nbytes)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


class PrefixCache:
    """Least-recently-used prefixes under a byte budget. Not thread-safe: the engine's
    scheduler thread is its only user."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, CachedPrefix] = OrderedDict()
        self._next_key = 0
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def longest(
        self, ids: list[int] | np.ndarray, namespace: str | None = None
    ) -> tuple[CachedPrefix | None, int]:
        """The entry of `namespace` sharing the longest prefix with `ids`, and that length
        (0: none)."""
        query = np.asarray(ids, dtype=np.int64)
        best_key, best = None, 0
        for key, entry in self._entries.items():
            if entry.namespace != namespace:
                continue
            n = common_prefix(entry.ids, query)
            if n > best:
                best_key, best = key, n
        if best_key is None:
            return None, 0
        self._entries.move_to_end(best_key)
        return self._entries[best_key], best

    def put(
        self, ids: list[int] | np.ndarray, kv: np.ndarray, namespace: str | None = None
    ) -> None:
        if self.budget_bytes <= 0:
            return
        entry = CachedPrefix(np.asarray(ids, dtype=np.int64), kv, namespace)
        if entry.nbytes > self.budget_bytes:
            return
        covered = [
            k
            for k, e in self._entries.items()
            if e.namespace == namespace and common_prefix(e.ids, entry.ids) == len(e.ids)
        ]
        for key in covered:
            self.nbytes -= self._entries.pop(key).nbytes
        self._entries[self._next_key] = entry
        self._next_key += 1
        self.nbytes += entry.nbytes
        while self.nbytes > self.budget_bytes:
            self.nbytes -= self._entries.popitem(last=False)[1].nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
