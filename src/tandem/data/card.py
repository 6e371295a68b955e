"""The dataset card: the manifest written for a person (card.md beside the data files)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

TRAINERS = {
    "sft": "SFTTrainer (conversational `messages`)",
    "preference": "DPOTrainer and RewardTrainer (conversational `prompt`/`chosen`/`rejected`)",
    "kto": "KTOTrainer (conversational `prompt`/`completion`/`label`)",
}


def _table(rows: Mapping[str, Any]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = ["| | count |", "| --- | ---: |"]
    lines += [f"| {key} | {value} |" for key, value in sorted(rows.items())]
    return [*lines, ""]


def render_card(manifest: Mapping[str, Any]) -> str:
    counts = manifest.get("counts", {})
    dates = manifest.get("signal_dates") or {}
    lines = [
        f"# Dataset {manifest['id']}",
        "",
        f"- kind: **{manifest['kind']}**, for {TRAINERS.get(manifest['kind'], '?')}",
        f"- name: {manifest.get('name') or '(none)'}",
        f"- content hash: `{manifest['hash']}`",
        f"- source: {manifest.get('source', 'signals')}",
        f"- rows: {counts.get('train', 0)} train, {counts.get('test', 0)} test "
        f"(held out by row hash, fraction {manifest.get('test_fraction')})",
        f"- signal dates: {dates.get('first') or '-'} to {dates.get('last') or '-'}",
        f"- model versions: {', '.join(manifest.get('model_versions') or []) or '-'}",
        f"- users: {counts.get('users', '-')}",
        f"- created: {manifest['created_at']} by tandem {manifest['code_version']}",
        "",
        "## Filters",
        "",
        "```json",
        json.dumps(manifest.get("filters", {}), indent=2, sort_keys=True),
        "```",
        "",
        "Consent is always enforced: users with `use_for_training` off are never read.",
        "",
        "## Examples by origin",
        "",
        *_table(counts.get("by_origin", {})),
        "## Removed",
        "",
        *_table(counts.get("dropped", {})),
        "## PII and secrets replaced",
        "",
        *_table(manifest.get("scrubbed", {})),
        "## Pairing rules",
        "",
        manifest.get("pairing_rules", "-"),
        "",
        "## Provenance",
        "",
        "`provenance.jsonl` lists, for every row, the signal ids it came from (feedback, "
        "comparison, improvement, generation, demonstration); the training files hold only "
        "TRL's columns.",
        "",
    ]
    return "\n".join(lines)
