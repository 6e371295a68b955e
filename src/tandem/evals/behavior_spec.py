"""The behavior spec: tandem's default behaviors as a readable YAML file, graded by rules.

    task = get_task("behavior_spec")                 # or get_task(..., judge=my_judge)
    grade = task.grade(example, response)            # details["status"]: passed/failed/not_graded
    behavior_pass_rates(task, responses_by_id)       # {"greeting": {"pass_rate": 0.8, ...}, ...}

The spec (`spec/behavior_spec.yaml`, shipped with the package) lists each behavior with a
description, its test prompts and its grader (see the comment at the top of the file for the
rules). Items whose grader needs a judge are "not graded" when no judge is configured: they
don't pass, and they are left out of the pass rate rather than counted as failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tandem.core.messages import Message
from tandem.evals.judge import RubricJudge
from tandem.evals.rules import check_rules, verdict
from tandem.evals.tasks import Example, Grade, Task, register_task


@dataclass(frozen=True)
class Behavior:
    id: str
    description: str
    rules: dict[str, Any]
    prompts: tuple[tuple[str, dict[str, Any]], ...]  # (prompt, the prompt's own rules)


def default_spec_path() -> Path:
    return Path(str(resources.files("tandem.evals") / "spec" / "behavior_spec.yaml"))


def load_spec(path: str | Path | None = None) -> list[Behavior]:
    """Parse and check a spec file: unknown rules or a behavior without prompts are errors."""
    raw = yaml.safe_load(Path(path or default_spec_path()).read_text(encoding="utf-8"))
    behaviors = []
    for entry in raw["behaviors"]:
        prompts: list[tuple[str, dict[str, Any]]] = []
        for item in entry["prompts"]:
            if isinstance(item, str):
                prompts.append((item, {}))
            else:
                prompts.append((str(item["prompt"]), dict(item.get("rules") or {})))
        behavior = Behavior(
            id=str(entry["id"]),
            description=" ".join(str(entry["description"]).split()),
            rules=dict(entry.get("rules") or {}),
            prompts=tuple(prompts),
        )
        if not behavior.prompts:
            raise ValueError(f"behavior {behavior.id!r} has no prompts")
        for _, own in behavior.prompts:
            # Validates rule names now, so a typo fails at load time rather than mid-run.
            check_rules({k: v for k, v in {**behavior.rules, **own}.items() if k != "judge"}, "")
        behaviors.append(behavior)
    return behaviors


@register_task("behavior_spec")
class BehaviorSpecTask(Task):
    name = "behavior_spec"
    description = "tandem's default behaviors (greetings, clarifying, formats, tone, refusals)."

    def __init__(self, spec_path: str | Path | None = None, judge: RubricJudge | None = None):
        self.behaviors = load_spec(spec_path)
        self.judge = judge

    def examples(self) -> Iterable[Example]:
        for behavior in self.behaviors:
            for i, (prompt, own) in enumerate(behavior.prompts, start=1):
                yield Example(
                    id=f"{behavior.id}-{i}",
                    messages=(Message.text("user", prompt),),
                    data={"behavior": behavior.id, "rules": {**behavior.rules, **own}},
                )

    def grade(self, example: Example, response: str) -> Grade:
        rules = dict(example.data["rules"])
        rubric = rules.pop("judge", None)
        results: dict[str, bool | None] = dict(check_rules(rules, response))
        if rubric is not None:
            prompt = example.messages[-1].content if example.messages else ""
            results["judge"] = None if self.judge is None else self.judge(prompt, response, rubric)
        status = verdict(results)
        behavior = example.data["behavior"]
        # Only decided items carry a score, so averaging scores gives the pass rate among graded.
        scores = {} if status == "not_graded" else {behavior: float(status == "passed")}
        return Grade(
            passed=status == "passed",
            scores=scores,
            details={"status": status, "behavior": behavior, "checks": results},
        )


def behavior_pass_rates(task: BehaviorSpecTask, responses: Mapping[str, str]) -> dict[str, Any]:
    """Per behavior: passed, failed, not_graded counts and pass_rate over graded items (None if
    none were graded). `responses` maps example ids to responses; missing ids are skipped."""
    out: dict[str, dict[str, Any]] = {
        b.id: {"passed": 0, "failed": 0, "not_graded": 0} for b in task.behaviors
    }
    for example in task.examples():
        if example.id in responses:
            grade = task.grade(example, responses[example.id])
            out[example.data["behavior"]][grade.details["status"]] += 1
    for counts in out.values():
        graded = counts["passed"] + counts["failed"]
        counts["pass_rate"] = counts["passed"] / graded if graded else None
    return out
