"""The `instructions` eval task: tandem's own verifiable-instruction suite, graded like IFEval.

    from tandem.evals import get_task
    task = get_task("instructions")                 # all prompts
    task = get_task("instructions", split="train")  # ~80%; split="dev" for the other ~20%
    task.grade(example, response)                   # passed = every instruction, strict
    task.reward(example, response)                  # share of instructions followed (strict)

Each example's `data` is one line of IFEval's input format, so IFEval's grading code (and
`tandem eval ifeval-grade` on an exported file) grades it unchanged. The prompts are written for
tandem (compose.py, suite.yaml) for training-time use; IFEval itself stays held out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tandem.core.messages import Message
from tandem.evals.ifeval.task import IfevalTask
from tandem.evals.instructions.compose import compose_suite, load_suite, split_of
from tandem.evals.tasks import Example, register_task

SPLITS = ("train", "dev")


@register_task("instructions")
class InstructionsTask(IfevalTask):
    """Grading and reward are IFEval's (inherited); only the examples differ."""

    name = "instructions"
    description = "tandem's own verifiable instructions (IFEval's checkers), train/dev splits."

    def __init__(self, split: str | None = None, suite_path: str | Path | None = None) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} (or none), not {split!r}")
        self.split = split
        self.suite_path = suite_path

    def examples(self) -> Iterator[Example]:
        dev_percent = load_suite(self.suite_path).dev_percent
        for item in compose_suite(self.suite_path):
            example_id = f"inst-{item['key']:012x}"
            split = split_of(example_id, dev_percent)
            if self.split is not None and split != self.split:
                continue
            yield Example(
                id=example_id,
                messages=(Message.text("user", item["prompt"]),),
                data={**item, "split": split},
            )
