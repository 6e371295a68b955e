"""Where the public benchmarks (IFEval, XSTest) live: evaluation-only data, read in place and
never copied into the package or into training data.

    benchmark_dirs()                              # every place benchmarks may be
    benchmark_path("ifeval", "input_data.jsonl")  # the first that has the file

$TANDEM_BENCHMARKS_DIR (os.pathsep-separated) names directories holding `ifeval/` and
`xstest/`: an installed package has no checkout beside it. After them comes the
`shared/data/benchmarks` directory beside a source checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

BENCHMARKS_ENV = "TANDEM_BENCHMARKS_DIR"


def benchmark_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(BENCHMARKS_ENV, "").split(os.pathsep) if p]
    # src/tandem/core/benchmarks.py: the project root is three levels up; shared/ is beside it.
    dirs.append(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "benchmarks")
    return [d.expanduser().resolve() for d in dirs]


def benchmark_path(*parts: str) -> Path:
    """The first benchmark directory's `parts` that exists (else the first candidate, so the
    error names where it was looked for)."""
    candidates = [d.joinpath(*parts) for d in benchmark_dirs()]
    return next((c for c in candidates if c.exists()), candidates[0])


def missing_hint(path: Path) -> str:
    return f"{path} not found: set ${BENCHMARKS_ENV} to the directory holding ifeval/ and xstest/"
