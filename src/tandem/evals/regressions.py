"""Regression suites from thumbs-down: each disliked answer becomes an item the next version
must do better on.

    path = build_regression_suite(session, home)       # $TANDEM_HOME/evals/regressions-<date>.jsonl
    task = get_task("regressions", path=path)          # default: the newest such file
    task.grade(example, response).details["status"]    # passed / failed / not_graded

`tandem eval build-regressions` writes the file. Each line is one case: the conversation the
model saw, the bad answer, the reasons and comment, and a rubric made of those. Grading always
requires a response that is not the bad answer again; then, per reason, a rule where one fits
(`too_long`: at least 30% shorter than the bad answer; `refused`: not a refusal) and the judge
hook for the rest (`didnt_follow_instructions`, `not_factual`, `unsafe`, `other`, or no reason).
Without a judge those judge items are "not graded", never passed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.messages import Message
from tandem.evals.judge import RubricJudge
from tandem.evals.refusal import classify_refusal, is_refusal
from tandem.evals.rules import verdict
from tandem.evals.tasks import Example, Grade, Task, register_task
from tandem.store.regressions import ThumbsDownCase, thumbs_down_cases

# A response must be at most this fraction of the bad answer's length (in characters).
TOO_LONG_RATIO = 0.7
RULE_REASONS = {"too_long", "refused"}


def suite_dir(home: Path) -> Path:
    return home / "evals"


def _rubric(case: ThumbsDownCase, prompt: str) -> str:
    reasons = ", ".join(case.reasons) or "(none given)"
    return (
        "A user disliked an earlier answer to this prompt. The new reply must fix what was wrong "
        "with it.\n"
        f"Prompt: {prompt}\nBad answer: {case.bad_answer}\nReasons: {reasons}\n"
        f"User's comment: {case.comment or '(none)'}"
    )


def _case_line(case: ThumbsDownCase) -> dict[str, Any]:
    messages = [Message.from_dict(m) for m in case.input_messages]
    prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return {
        "id": f"regression-{case.feedback_id}",
        "messages": [m.to_openai() for m in messages],
        "bad_answer": case.bad_answer,
        "reasons": case.reasons,
        "comment": case.comment,
        "rubric": _rubric(case, prompt),
        "model_version": case.model_version,
        "generation_id": case.generation_id,
    }


def build_regression_suite(
    session: Session, home: Path, *, output: Path | None = None, today: date | None = None
) -> tuple[Path, int]:
    """Write the suite (one JSON object per line); returns its path and the number of items.

    The file is written beside its final name and renamed into place, so a crash never leaves
    a half-written suite where `regressions` would load it."""
    path = output or suite_dir(home) / f"regressions-{(today or date.today()).isoformat()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [_case_line(c) for c in thumbs_down_cases(session) if c.input_messages]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path, len(lines)


def latest_suite(home: Path) -> Path:
    found = sorted(suite_dir(home).glob("regressions-*.jsonl"))
    if not found:
        raise FileNotFoundError(
            f"no regression suite in {suite_dir(home)}: run `tandem eval build-regressions`"
        )
    return found[-1]


def _normalized(text: str) -> str:
    return " ".join(text.split()).lower()


@register_task("regressions")
class RegressionsTask(Task):
    name = "regressions"
    description = "Thumbs-down answers from users: the new version must do better on each."

    def __init__(
        self,
        path: str | Path | None = None,
        judge: RubricJudge | None = None,
        home: str | Path | None = None,
    ) -> None:
        if path is None:
            from tandem.core.settings import Settings

            path = latest_suite(Path(home) if home else Settings.from_env().home)
        self.path = Path(path)
        self.judge = judge

    def examples(self) -> Iterable[Example]:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                item = json.loads(line)
                yield Example(
                    id=item["id"],
                    messages=tuple(Message.from_dict(m) for m in item["messages"]),
                    data={k: item[k] for k in ("bad_answer", "reasons", "comment", "rubric")},
                )

    def grade(self, example: Example, response: str) -> Grade:
        bad = example.data["bad_answer"]
        reasons = set(example.data["reasons"])
        checks: dict[str, bool | None] = {
            "not_identical": _normalized(response) != _normalized(bad)
        }
        if "too_long" in reasons:
            checks["too_long"] = len(response.strip()) <= TOO_LONG_RATIO * len(bad.strip())
        if "refused" in reasons:
            checks["refused"] = not is_refusal(classify_refusal(response))
        if not reasons <= RULE_REASONS or not reasons:
            prompt = next((m.content for m in reversed(example.messages) if m.role == "user"), "")
            checks["judge"] = (
                None if self.judge is None else self.judge(prompt, response, example.data["rubric"])
            )
        status = verdict(checks)
        return Grade(
            passed=status == "passed",
            scores={} if status == "not_graded" else {"regression": float(status == "passed")},
            details={"status": status, "checks": checks, "reasons": sorted(reasons)},
        )
