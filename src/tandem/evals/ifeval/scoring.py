"""IFEval scoring: strict and loose verdicts per instruction, and the four accuracies.

    from tandem.evals.ifeval.scoring import grade_prompt, accuracies
    result = grade_prompt(item, response)      # item: one line of IFEval's input_data.jsonl
    accuracies([result, ...])                  # prompt/instruction-level, strict/loose

Strict runs each checker on the response as it is. Loose passes an instruction when any variant
passes: the response, it with `*` removed, with its first line, last line or both removed, and
those three with `*` removed, which forgives a markdown wrapper or a "Sure, here it is:" opening
line. An empty (whitespace-only) response follows no instruction, strict or loose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.core.jsonl import read_jsonl
from tandem.evals.ifeval.checkers import check


@dataclass(frozen=True)
class PromptResult:
    key: int | str
    prompt: str
    response: str
    instruction_id_list: list[str]
    follow_instruction_list_strict: list[bool]
    follow_instruction_list_loose: list[bool]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "prompt": self.prompt,
            "response": self.response,
            "instruction_id_list": self.instruction_id_list,
            "follow_instruction_list_strict": self.follow_instruction_list_strict,
            "follow_instruction_list_loose": self.follow_instruction_list_loose,
            "follow_all_instructions_strict": all(self.follow_instruction_list_strict),
            "follow_all_instructions_loose": all(self.follow_instruction_list_loose),
        }


def loose_variants(response: str) -> list[str]:
    """The eight forms of a response that loose scoring tries, in the reference's order."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        without_first,
        without_last,
        without_both,
        without_first.replace("*", ""),
        without_last.replace("*", ""),
        without_both.replace("*", ""),
    ]


def follows_strict(instruction_id: str, response: str, kwargs: dict[str, Any]) -> bool:
    return bool(response.strip()) and check(instruction_id, response, kwargs)


def follows_loose(instruction_id: str, response: str, kwargs: dict[str, Any]) -> bool:
    return any(
        variant.strip() and check(instruction_id, variant, kwargs)
        for variant in loose_variants(response)
    )


def grade_prompt(item: dict[str, Any], response: str) -> PromptResult:
    """Strict and loose verdicts for each instruction of one input item."""
    ids = list(item["instruction_id_list"])
    kwargs_list = item.get("kwargs") or [{} for _ in ids]
    pairs = list(zip(ids, kwargs_list, strict=True))
    return PromptResult(
        key=item.get("key", item["prompt"]),
        prompt=item["prompt"],
        response=response,
        instruction_id_list=ids,
        follow_instruction_list_strict=[follows_strict(i, response, kw or {}) for i, kw in pairs],
        follow_instruction_list_loose=[follows_loose(i, response, kw or {}) for i, kw in pairs],
    )


def accuracies(results: Iterable[PromptResult]) -> dict[str, float]:
    """Prompt-level (all instructions of a prompt pass) and instruction-level (share of all
    instructions) accuracy, strict and loose; 0.0 for no results."""
    results = list(results)
    strict = [r.follow_instruction_list_strict for r in results]
    loose = [r.follow_instruction_list_loose for r in results]

    def prompt_level(lists: list[list[bool]]) -> float:
        return sum(all(x) for x in lists) / len(lists) if lists else 0.0

    def instruction_level(lists: list[list[bool]]) -> float:
        flat = [v for x in lists for v in x]
        return sum(flat) / len(flat) if flat else 0.0

    return {
        "prompt_level_strict": prompt_level(strict),
        "prompt_level_loose": prompt_level(loose),
        "instruction_level_strict": instruction_level(strict),
        "instruction_level_loose": instruction_level(loose),
    }


def grade_files(
    input_path: Path, responses_path: Path
) -> tuple[list[PromptResult], dict[str, float], list[str]]:
    """Grade `{"prompt", "response"}` lines against the input items with the same prompt.

    Returns the results in input order, the accuracies over them, and the input prompts that had
    no response (skipped, so a partial run still scores what it has)."""
    items = read_jsonl(input_path)
    responses: dict[str, str] = {}
    for number, row in enumerate(read_jsonl(responses_path), 1):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise ValueError(
                f"{responses_path}: line {number} needs string 'prompt' and 'response'"
            )
        responses[row["prompt"]] = row["response"]
    known = {item["prompt"] for item in items}
    unknown = [p for p in responses if p not in known]
    if unknown:
        raise ValueError(f"{len(unknown)} response(s) match no input prompt, e.g. {unknown[0]!r}")
    results = [grade_prompt(i, responses[i["prompt"]]) for i in items if i["prompt"] in responses]
    missing = [i["prompt"] for i in items if i["prompt"] not in responses]
    return results, accuracies(results), missing
