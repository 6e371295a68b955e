"""The family tree of model versions: which version was trained from which, on what data.

Used by `tandem models lineage [VERSION]`:

    print(render_lineage(ModelVersionRepo(session).list()))  # every tree
    print(render_lineage(rows, focus=VERSION))  # one branch

prints

    smollm2-135m-instruct  production
    └── smollm2-135m-instruct-dpo-1a2b3c4d  candidate  dpo  data sha256:9f2c…  loss 0.66
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class VersionLike(Protocol):
    id: str
    parent_id: str | None
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]


def _label(row: VersionLike, focus: str | None) -> str:
    parts = [row.id, row.status]
    config = row.config or {}
    if config.get("method"):
        parts.append(str(config["method"]))
    dataset = config.get("dataset") or {}
    if dataset.get("hash"):
        algorithm, _, digest = str(dataset["hash"]).partition(":")
        parts.append(f"data {algorithm}:{digest[:12]}" if digest else f"data {algorithm[:12]}")
    loss = (row.metrics or {}).get("final_loss")
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    label = "  ".join(parts)
    return f"{label}  ◀" if row.id == focus else label


def render_lineage(rows: Sequence[VersionLike], focus: str | None = None) -> str:
    """Trees of versions, parents above children (oldest child first). With `focus`, only its
    ancestors, itself and its descendants; raises LookupError for an unknown focus."""
    by_id = {r.id: r for r in rows}
    children: dict[str | None, list[VersionLike]] = {}
    for row in rows:  # rows come oldest first, so children stay in creation order
        parent = row.parent_id if row.parent_id in by_id and row.parent_id != row.id else None
        children.setdefault(parent, []).append(row)
    keep: set[str] | None = None
    if focus is not None:
        if focus not in by_id:
            raise LookupError(focus)
        keep = set()
        node: VersionLike | None = by_id[focus]
        while node is not None and node.id not in keep:
            keep.add(node.id)
            node = by_id.get(node.parent_id) if node.parent_id else None
        stack = [focus]
        while stack:
            for child in children.get(stack.pop(), []):
                keep.add(child.id)
                stack.append(child.id)

    lines: list[str] = []

    def walk(row: VersionLike, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└── " if last else "├── ")
        lines.append(prefix + branch + _label(row, focus))
        shown = [c for c in children.get(row.id, []) if keep is None or c.id in keep]
        deeper = prefix if root else prefix + ("    " if last else "│   ")
        for i, child in enumerate(shown):
            walk(child, deeper, i == len(shown) - 1, False)

    for root in children.get(None, []):
        if keep is None or root.id in keep:
            walk(root, "", True, True)
    return "\n".join(lines)
