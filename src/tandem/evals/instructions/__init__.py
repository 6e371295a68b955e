"""tandem's own verifiable-instruction suite (≥ 300 prompts on everyday topics) for training.

Importing the package registers the `instructions` eval task; `tandem eval export-suite
instructions --output FILE.jsonl [--split train]` writes it in IFEval's input format.
docs/evals.md describes how it is built.
"""

from tandem.evals.instructions.compose import compose_suite, load_suite, split_of
from tandem.evals.instructions.task import InstructionsTask

__all__ = ["InstructionsTask", "compose_suite", "load_suite", "split_of"]
