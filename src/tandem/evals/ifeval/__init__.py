"""IFEval (Zhou et al. 2023): verifiable instruction following, graded strict and loose.

Importing the package registers the `ifeval` eval task. `tandem eval ifeval-grade` grades a file
of responses; docs/evals.md describes the scoring and where it differs from the reference.
"""

from tandem.evals.ifeval.checkers import CHECKERS, check
from tandem.evals.ifeval.scoring import (
    PromptResult,
    accuracies,
    grade_files,
    grade_prompt,
    loose_variants,
)
from tandem.evals.ifeval.task import IfevalTask

__all__ = [
    "CHECKERS",
    "IfevalTask",
    "PromptResult",
    "accuracies",
    "check",
    "grade_files",
    "grade_prompt",
    "loose_variants",
]
