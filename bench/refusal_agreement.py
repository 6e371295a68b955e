"""The refusal classifier against XSTest's human labels → docs/benchmarks/refusal_agreement.json.

    .venv/bin/python -m bench.refusal_agreement [--dir ../shared/data/benchmarks/xstest]

Agreement is binary (compliance vs any refusal), per labelled model and overall; the three-way
agreement and the confusion matrix (rows: human label, columns: classifier) come with it. The
XSTest files are read in place and never copied.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from tandem.evals.xstest import refusal_agreement

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "refusal_agreement.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="XSTest directory")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    start = time.perf_counter()
    report = refusal_agreement(args.dir)
    report = {
        "date": datetime.date.today().isoformat(),
        "classifier": "tandem.evals.refusal.classify_refusal (rules)",
        "seconds": round(time.perf_counter() - start, 2),
        **report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("n", "agreement", "exact_agreement")}))


if __name__ == "__main__":
    main()
