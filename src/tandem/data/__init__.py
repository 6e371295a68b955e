"""Datasets from signals: builders (SFT, preference, KTO), filters, PII scrubbing, dedup, and
immutable content-hashed snapshots that TRL's trainers read unchanged.

    from tandem.data.snapshots import load_snapshot, resolve_dataset
    snap = resolve_dataset(home, "sft-3f2a9c0d1e4b")
    snap.kind, snap.hash, snap.train_file, snap.test_file, snap.manifest

May import tandem.core and tandem.store only (docs/datasets.md describes the formats and rules).
"""

from tandem.data.snapshots import Snapshot, list_snapshots, load_snapshot, resolve_dataset

__all__ = ["Snapshot", "list_snapshots", "load_snapshot", "resolve_dataset"]
