"""The corrective follow-up classifier (tandem.chat.corrections), measured on its own labelled
messages: precision, recall and F1 with 95% intervals, on the dev part the rules were tuned on
and on the held-out part they never saw while tuning.

    .venv/bin/python -m bench.corrective_followup          # < 1 s; writes the JSON below

The sets (tests/data/corrective_followups/{dev,heldout}.jsonl) were written for this by hand,
not taken from any benchmark: each line is `{"text": ..., "corrective": true|false}`, follow-up
messages a user might send after an answer, with hard negatives (thanks that start with "no",
new tasks, the user correcting themselves). Precision and recall get Wilson intervals; F1 a
percentile bootstrap over the messages (seeded). Writes docs/benchmarks/corrective_followup.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import inspect
import json
import random
from pathlib import Path
from typing import Any

from tandem.chat import corrections
from tandem.chat.corrections import classify_followup
from tandem.evals.online import wilson_interval

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "corrective_followups"
OUTPUT = REPO / "docs" / "benchmarks" / "corrective_followup.json"
BOOTSTRAP = 5000


def load(split: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{split}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _f1(pairs: list[tuple[bool, bool]]) -> float:
    tp = sum(1 for gold, pred in pairs if gold and pred)
    fp = sum(1 for gold, pred in pairs if pred and not gold)
    fn = sum(1 for gold, pred in pairs if gold and not pred)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def measure(rows: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    predictions = [(classify_followup(r["text"]), r) for r in rows]
    pairs = [(bool(r["corrective"]), c is not None) for c, r in predictions]
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if p and not g)
    fn = sum(1 for g, p in pairs if g and not p)
    tn = len(pairs) - tp - fp - fn
    rng = random.Random(seed)
    f1s = sorted(_f1([rng.choice(pairs) for _ in pairs]) for _ in range(BOOTSTRAP))

    def rounded(interval: tuple[float, float]) -> list[float]:
        return [round(interval[0], 4), round(interval[1], 4)]

    rules: dict[str, int] = {}
    for c, _ in predictions:
        if c is not None:
            rules[c.rule] = rules.get(c.rule, 0) + 1
    return {
        "messages": len(rows),
        "positives": tp + fn,
        "negatives": fp + tn,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "precision_ci95_wilson": rounded(wilson_interval(tp, tp + fp)) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "recall_ci95_wilson": rounded(wilson_interval(tp, tp + fn)) if tp + fn else None,
        "f1": round(_f1(pairs), 4),
        "f1_ci95_bootstrap": [
            round(f1s[int(0.025 * BOOTSTRAP)], 4),
            round(f1s[int(0.975 * BOOTSTRAP) - 1], 4),
        ],
        "rules_fired": dict(sorted(rules.items())),
        "false_positives": [
            {"text": r["text"], "rule": c.rule}
            for c, r in predictions
            if c is not None and not r["corrective"]
        ],
        "false_negatives": [r["text"] for c, r in predictions if c is None and r["corrective"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    source = inspect.getsource(corrections)
    report = {
        "what": "tandem.chat.corrections.classify_followup on hand-written follow-up messages",
        "measured": datetime.date.today().isoformat(),
        "classifier_sha256": hashlib.sha256(source.encode()).hexdigest(),
        "method": (
            "Rules tuned on dev only; held-out written before tuning and not looked at until "
            "the rules were final. Precision/recall: Wilson 95% intervals; F1: percentile "
            f"bootstrap over messages, {BOOTSTRAP} resamples, seed 0."
        ),
        "dev": measure(load("dev")),
        "heldout": measure(load("heldout")),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for split in ("dev", "heldout"):
        r = report[split]
        print(
            f"{split:8} n={r['messages']:3}  P={r['precision']} {r['precision_ci95_wilson']}  "
            f"R={r['recall']} {r['recall_ci95_wilson']}  F1={r['f1']} {r['f1_ci95_bootstrap']}"
        )


if __name__ == "__main__":
    main()
