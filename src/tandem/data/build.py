"""Building a snapshot: read signals, make TRL rows, scrub, deduplicate, cap, split, write.

    from tandem.data.build import BuildConfig, build_snapshot
    result = build_snapshot(session, settings.home, BuildConfig(kind="preference"))
    result.snapshot.id, result.created

The CLI (`tandem data build KIND`), the API (`POST /api/datasets`) and the admin page all call
`build_snapshot` with a `BuildConfig`; its field help is the CLI's help text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.errors import InvalidInput
from tandem.core.signals import (
    DATASET_KINDS,
    FEEDBACK_REASONS,
    IMPLICIT_NEGATIVE_KINDS,
    PROVENANCE_VALUES,
)
from tandem.data.builders import (
    PAIRING_RULES,
    Example,
    build_kto_examples,
    build_preference_pairs,
    build_sft_examples,
)
from tandem.data.card import render_card
from tandem.data.dedup import deduplicate
from tandem.data.scrub import scrub_row
from tandem.data.snapshots import Snapshot, canonical_line, write_snapshot
from tandem.store.datasets import DatasetRepo, DatasetSnapshotRow, SignalFilters, SnapshotRecord
from tandem.store.implicit import ImplicitSignalRepo


@dataclass(frozen=True)
class BuildConfig:
    """What to build. Consent is not a field: opted-out users are never read."""

    kind: str = field(default="sft", metadata={"help": "sft, preference or kto"})
    since: datetime | None = field(
        default=None, metadata={"help": "only signals at or after this time (ISO 8601)"}
    )
    until: datetime | None = field(
        default=None, metadata={"help": "only signals before this time (ISO 8601)"}
    )
    profile_id: str | None = field(
        default=None, metadata={"help": "only answers given in conversations with this profile"}
    )
    model_version: str | None = field(
        default=None, metadata={"help": "only answers from this model version"}
    )
    reasons: tuple[str, ...] = field(
        default=(), metadata={"help": "only thumbs-down ratings carrying one of these reasons"}
    )
    per_user_cap: int | None = field(
        default=None, metadata={"help": "at most this many examples per user (oldest first)"}
    )
    test_fraction: float = field(
        default=0.1, metadata={"help": "held-out fraction, chosen by each row's hash"}
    )
    near_duplicate_threshold: float = field(
        default=0.9,
        metadata={
            "help": "drop rows whose shingle Jaccard similarity with a kept row is at least "
            "this (above 1 turns near-duplicate removal off)"
        },
    )
    implicit_weight: float = field(
        default=0.0,
        metadata={
            "help": "kto only: add implicit negatives (answers regenerated, stopped, edited away "
            "or corrected, with no explicit label) as label false, keeping this fraction of them "
            "(0 = off; KTOTrainer has no per-row weight, so the weight is a hash-chosen subsample)"
        },
    )
    name: str = field(default="", metadata={"help": "a label shown in listings"})

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise InvalidInput(f"kind must be one of {list(DATASET_KINDS)}")
        unknown = sorted(set(self.reasons) - set(FEEDBACK_REASONS))
        if unknown:
            raise InvalidInput(f"unknown reasons {unknown}; allowed: {list(FEEDBACK_REASONS)}")
        if not 0 <= self.test_fraction < 1:
            raise InvalidInput("test_fraction must be at least 0 and below 1")
        if self.per_user_cap is not None and self.per_user_cap < 1:
            raise InvalidInput("per_user_cap must be at least 1")
        if self.near_duplicate_threshold <= 0:
            raise InvalidInput("near_duplicate_threshold must be above 0")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("since must be before until")
        if not 0 <= self.implicit_weight <= 1:
            raise InvalidInput("implicit_weight must be between 0 and 1")
        if self.implicit_weight and self.kind != "kto":
            raise InvalidInput("implicit_weight applies to kind 'kto' only")

    def filters(self) -> dict[str, Any]:
        """The config as the JSON recorded in the manifest, card and database."""
        out: dict[str, Any] = {"consent": "use_for_training (always enforced)"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("kind", "name"):
                continue
            if f.name == "implicit_weight" and not value:
                continue  # off: recorded only when on, so earlier builds' filters are unchanged
            out[f.name] = (
                value.isoformat()
                if isinstance(value, datetime)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out


@dataclass(frozen=True)
class BuildResult:
    snapshot: Snapshot
    created: bool  # False: the same rows were already a snapshot, returned unchanged
    record: DatasetSnapshotRow


def examples_from_signals(
    session: Session, config: BuildConfig, demonstrations: Sequence[Example] = ()
) -> list[Example]:
    """The TRL rows of `config.kind`, before scrubbing and deduplication."""
    repo = DatasetRepo(session)
    f = SignalFilters(
        since=config.since,
        until=config.until,
        profile_id=config.profile_id,
        model_version=config.model_version,
        reasons=config.reasons,
    )
    if config.kind == "sft":
        return build_sft_examples(repo.rated_answers(f), repo.improved_answers(f), demonstrations)
    if demonstrations:
        raise InvalidInput("demonstrations are SFT data: build kind 'sft' to use them")
    if config.kind == "preference":
        return build_preference_pairs(
            repo.voted_pairs(f), repo.improved_answers(f), repo.rated_answers(f)
        )
    implicit = (
        ImplicitSignalRepo(session).implicit_answers(f, IMPLICIT_NEGATIVE_KINDS)
        if config.implicit_weight
        else []
    )
    return build_kto_examples(
        repo.rated_answers(f),
        repo.voted_pairs(f),
        repo.improved_answers(f),
        implicit,
        config.implicit_weight,
    )


def _contents(value: Any, *, roles: tuple[str, ...] | None = None) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(m.get("content", "")) for m in value if roles is None or m.get("role") in roles]
    return []


def dedup_key(row: Mapping[str, Any]) -> str:
    """The whole row (system message included): two rows with equal keys are exact copies."""
    return canonical_line(row)


def near_duplicate_text(row: Mapping[str, Any]) -> str:
    """What near duplicates are judged on: the last user turn and the answer(s). Not the
    history or the system prompt: answers after a long shared history (or a long shared system
    prompt) would otherwise all look alike, although each is a different example."""
    prompt = row.get("messages", row.get("prompt"))
    if isinstance(prompt, list):
        if prompt and prompt[-1].get("role") == "assistant":  # SFT: the answer is the last turn
            prompt, answers = prompt[:-1], [str(prompt[-1].get("content", ""))]
        else:
            answers = []
        users = _contents(prompt, roles=("user",))
        question = users[-1:] if users else []
    else:
        question, answers = _contents(prompt), []
    for column in ("chosen", "rejected", "completion"):
        answers += _contents(row.get(column), roles=("assistant",)) or _contents(row.get(column))
    return "\n".join(question + answers)


def finish_snapshot(
    session: Session,
    home: Path,
    kind: str,
    examples: Sequence[Example],
    *,
    test_fraction: float,
    near_duplicate_threshold: float,
    per_user_cap: int | None,
    filters: Mapping[str, Any],
    source: str,
    name: str = "",
    created_by: str | None = None,
) -> BuildResult:
    """Scrub, deduplicate, cap, then write and record the snapshot (shared by builds and
    imports, so both obey the same rules)."""
    scrubbed_counts: Counter[str] = Counter()
    cleaned: list[Example] = []
    for ex in examples:
        row, found = scrub_row(ex.row)
        scrubbed_counts.update(found)
        cleaned.append(Example(row, ex.sources, ex.user_id, ex.at, ex.origin, ex.model_versions))
    # Oldest signal first (demonstrations before all), so the copy that stays, and the rows a
    # per-user cap keeps, do not change when newer signals arrive.
    cleaned.sort(
        key=lambda e: (e.at is not None, e.at.isoformat() if e.at else "", canonical_line(e.row))
    )
    keep, exact, near = deduplicate(
        [dedup_key(e.row) for e in cleaned],
        [near_duplicate_text(e.row) for e in cleaned],
        near_duplicate_threshold,
    )
    kept = [cleaned[i] for i in keep]
    capped = 0
    if per_user_cap is not None:
        per_user: Counter[str] = Counter()
        within: list[Example] = []
        for ex in kept:
            if ex.user_id is not None:
                per_user[ex.user_id] += 1
                if per_user[ex.user_id] > per_user_cap:
                    capped += 1
                    continue
            within.append(ex)
        kept = within

    dates = sorted(e.at for e in kept if e.at is not None)
    manifest = {
        "name": name,
        "source": source,
        "filters": dict(filters),
        "counts": {
            "by_origin": dict(sorted(Counter(e.origin for e in kept).items())),
            "dropped": {
                "exact_duplicates": exact,
                "near_duplicates": near,
                "per_user_cap": capped,
            },
            "users": len({e.user_id for e in kept if e.user_id is not None}),
        },
        "scrubbed": dict(sorted(scrubbed_counts.items())),
        "signal_dates": {
            "first": dates[0].isoformat() if dates else None,
            "last": dates[-1].isoformat() if dates else None,
        },
        "model_versions": sorted({v for e in kept for v in e.model_versions}),
        "pairing_rules": PAIRING_RULES,
    }
    snapshot, created = write_snapshot(
        home,
        kind,
        [(e.row, e.sources) for e in kept],
        test_fraction=test_fraction,
        manifest=manifest,
        card=render_card,
    )
    signals: dict[str, set[str]] = {}
    for ex in kept:
        for signal_kind, ids in ex.sources.items():
            if signal_kind in PROVENANCE_VALUES:  # provenance.jsonl only: not signal ids
                continue
            signals.setdefault(signal_kind, set()).update(ids)
    m = snapshot.manifest
    record = DatasetRepo(session).record_snapshot(
        SnapshotRecord(
            id=snapshot.id,
            kind=snapshot.kind,
            hash=snapshot.hash,
            path=str(snapshot.path),
            source=m.get("source", source),
            name=m.get("name", name),
            filters=m.get("filters", {}),
            counts=m.get("counts", {}),
            created_by=created_by,
        ),
        {k: sorted(v) for k, v in signals.items()},
    )
    return BuildResult(snapshot, created, record)


def build_snapshot(
    session: Session,
    home: Path,
    config: BuildConfig,
    *,
    demonstrations: Sequence[Example] = (),
    demonstrations_source: str | None = None,
    created_by: str | None = None,
) -> BuildResult:
    """Build (or find: same rows, same snapshot) the `config.kind` dataset from the signals."""
    examples = examples_from_signals(session, config, demonstrations)
    filters = config.filters()
    if demonstrations_source:
        filters["demonstrations"] = demonstrations_source
    return finish_snapshot(
        session,
        home,
        config.kind,
        examples,
        test_fraction=config.test_fraction,
        near_duplicate_threshold=config.near_duplicate_threshold,
        per_user_cap=config.per_user_cap,
        filters=filters,
        source="signals",
        name=config.name,
        created_by=created_by,
    )
