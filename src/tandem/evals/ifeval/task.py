"""The `ifeval` eval task: IFEval's prompts as examples, graded by strict instruction following.

    from tandem.evals import get_task
    import tandem.evals.ifeval  # registers "ifeval"
    task = get_task("ifeval")                      # $TANDEM_BENCHMARKS_DIR/ifeval/...
    task = get_task("ifeval", input_path="mine.jsonl")
    grade = task.grade(example, response)          # passed = every instruction, strict

The data is evaluation-only public benchmark data: it is read in place, never copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tandem.core.benchmarks import benchmark_path, missing_hint
from tandem.core.messages import Message
from tandem.evals.ifeval.scoring import grade_prompt, read_jsonl
from tandem.evals.tasks import Example, Grade, Task, register_task


def default_input_path() -> Path:
    """IFEval's input file ($TANDEM_BENCHMARKS_DIR, else the shared data beside a checkout)."""
    return benchmark_path("ifeval", "input_data.jsonl")


@register_task("ifeval")
class IfevalTask(Task):
    name = "ifeval"
    description = "IFEval: 541 prompts with verifiable instructions (strict and loose accuracy)."

    def __init__(self, input_path: str | Path | None = None) -> None:
        self.input_path = Path(input_path) if input_path else default_input_path()

    def examples(self) -> Iterator[Example]:
        if not self.input_path.is_file():
            raise FileNotFoundError(missing_hint(self.input_path))
        for item in read_jsonl(self.input_path):
            yield Example(
                id=str(item["key"]),
                messages=(Message.text("user", item["prompt"]),),
                data={
                    "key": item["key"],
                    "prompt": item["prompt"],
                    "instruction_id_list": item["instruction_id_list"],
                    "kwargs": item["kwargs"],
                },
            )

    def grade(self, example: Example, response: str) -> Grade:
        result = grade_prompt(example.data, response)
        strict, loose = result.follow_instruction_list_strict, result.follow_instruction_list_loose
        return Grade(
            passed=all(strict),
            scores={
                "prompt_strict": float(all(strict)),
                "prompt_loose": float(all(loose)),
                "instruction_strict": sum(strict) / len(strict) if strict else 0.0,
                "instruction_loose": sum(loose) / len(loose) if loose else 0.0,
            },
            details={
                "instruction_id_list": result.instruction_id_list,
                "follow_instruction_list_strict": strict,
                "follow_instruction_list_loose": loose,
            },
        )

    def reward(self, example: Example, response: str) -> float:
        """Share of instructions followed (strict): a denser signal for RL than pass/fail."""
        return self.grade(example, response).scores["instruction_strict"]
