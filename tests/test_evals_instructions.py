"""The `instructions` suite: size, stable ids, IFEval-compatible instructions graded through the
task, the train/dev split, no 8-word overlap with IFEval, and `tandem eval export-suite`."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tandem.cli.main import app
from tandem.evals import get_task
from tandem.evals.ifeval import CHECKERS, check
from tandem.evals.ifeval.task import default_input_path
from tandem.evals.instructions import compose
from tandem.evals.tasks import Example

IFEVAL_FIELDS = {"key", "prompt", "instruction_id_list", "kwargs"}


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return list(get_task("instructions").examples())


def _only(examples: list[Example], instruction_id: str) -> Example:
    """The first example whose sole instruction is `instruction_id`."""
    return next(e for e in examples if e.data["instruction_id_list"] == [instruction_id])


def test_suite_has_300_unique_prompts_with_stable_ids_and_order(examples: list[Example]) -> None:
    prompts = [e.data["prompt"] for e in examples]
    assert len(set(prompts)) == len(prompts) >= 300
    assert len({e.id for e in examples}) == len(examples)
    assert all(e.messages[0].role == "user" for e in examples)
    compose._compose_cached.cache_clear()  # compose again from the file, not from the cache
    again = list(get_task("instructions").examples())
    assert [e.id for e in again] == [e.id for e in examples]
    assert [e.data for e in again] == [e.data for e in examples]


def test_every_ifeval_type_appears_and_its_kwargs_fit_the_checker(
    examples: list[Example],
) -> None:
    counts = Counter(i for e in examples for i in e.data["instruction_id_list"])
    assert set(counts) == set(CHECKERS)
    assert len(CHECKERS) == 25
    assert min(counts.values()) >= 5, counts
    for example in examples:
        assert set(example.data) == IFEVAL_FIELDS | {"split"}
        ids, kwargs_list = example.data["instruction_id_list"], example.data["kwargs"]
        assert len(ids) == len(set(ids)) == len(kwargs_list) <= 3
        for instruction_id, kwargs in zip(ids, kwargs_list, strict=True):
            check(instruction_id, "A dummy response.", kwargs)  # raises on a wrong kwarg


def _words(n: int) -> str:
    return " ".join(["plant"] * n) + "."


def _bullets(n: int) -> str:
    return "\n".join(f"* point {i}" for i in range(n))


def _sections(kw: dict[str, Any], n: int) -> str:
    return "\n".join(f"{kw['section_spliter']} {i}\nSome text." for i in range(1, n + 1))


# instruction id -> (a response that follows it, one that does not), from the example's kwargs
RESPONSES: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "punctuation:no_comma": lambda kw: ("Sounds good to me. See you soon.", "Yes, of course."),
    "length_constraints:number_words": lambda kw: (
        (_words(kw["num_words"] - 1), _words(kw["num_words"]))
        if kw["relation"] == "less than"
        else (_words(kw["num_words"]), _words(kw["num_words"] - 1))
    ),
    "detectable_format:number_bullet_lists": lambda kw: (
        _bullets(kw["num_bullets"]),
        _bullets(kw["num_bullets"] + 1),
    ),
    "change_case:english_lowercase": lambda kw: (
        "the tide comes in twice a day because the moon pulls on the ocean.",
        "The tide comes in twice a day because the Moon pulls on the ocean.",
    ),
    "startend:end_checker": lambda kw: (
        f"Here is my answer. {kw['end_phrase']}",
        f"{kw['end_phrase']} Here is my answer.",
    ),
    "detectable_content:postscript": lambda kw: (
        f"The main text.\n\n{kw['postscript_marker']} One more thing.",
        "The main text and nothing after it.",
    ),
    "detectable_format:json_format": lambda kw: ('{"answer": "yes"}', "answer: yes"),
    "detectable_format:title": lambda kw: ("<<A Plan>>\nThe plan.", "A Plan\nThe plan."),
    "keywords:existence": lambda kw: (
        "About " + " and ".join(kw["keywords"]) + ".",
        "About " + kw["keywords"][0] + " only.",
    ),
    "combination:repeat_prompt": lambda kw: (
        kw["prompt_to_repeat"] + "\n\nMy answer.",
        "My answer.\n\n" + kw["prompt_to_repeat"],
    ),
    "detectable_format:constrained_response": lambda kw: ("My answer is no.", "No, I think not."),
    "startend:quotation": lambda kw: ('"All of it in quotes."', "All of it in quotes."),
    "detectable_format:multiple_sections": lambda kw: (
        _sections(kw, kw["num_sections"]),
        _sections(kw, kw["num_sections"] - 1),
    ),
    "detectable_content:number_placeholders": lambda kw: (
        " ".join(f"[field{i}]" for i in range(kw["num_placeholders"])),
        "No blanks here.",
    ),
    "combination:two_responses": lambda kw: (
        "One answer.\n******\nAnother answer.",
        "One answer.\n******\nOne answer.",
    ),
}


@pytest.mark.parametrize("instruction_id", sorted(RESPONSES))
def test_task_grades_a_following_and_a_breaking_response(
    examples: list[Example], instruction_id: str
) -> None:
    task = get_task("instructions")
    example = _only(examples, instruction_id)
    following, breaking = RESPONSES[instruction_id](example.data["kwargs"][0])
    good, bad = task.grade(example, following), task.grade(example, breaking)
    assert good.passed and good.scores["prompt_strict"] == 1.0, following
    assert not bad.passed and bad.scores["prompt_strict"] == 0.0, breaking
    assert task.reward(example, following) == 1.0
    assert task.reward(example, breaking) == 0.0


def test_reward_is_the_share_of_instructions_followed(examples: list[Example]) -> None:
    task = get_task("instructions")
    example = next(
        e
        for e in examples
        if sorted(e.data["instruction_id_list"]) == ["punctuation:no_comma", "startend:quotation"]
    )
    response = '"Quoted, but with a comma."'
    assert not task.grade(example, response).passed
    assert task.reward(example, response) == 0.5
    assert task.reward(example, '"Quoted and without one."') == 1.0


def test_split_is_deterministic_and_about_80_20(examples: list[Example]) -> None:
    train = list(get_task("instructions", split="train").examples())
    dev = list(get_task("instructions", split="dev").examples())
    assert {e.id for e in train} | {e.id for e in dev} == {e.id for e in examples}
    assert not {e.id for e in train} & {e.id for e in dev}
    assert all(e.data["split"] == "train" for e in train)
    assert 0.15 <= len(dev) / len(examples) <= 0.25
    assert [e.id for e in get_task("instructions", split="dev").examples()] == [e.id for e in dev]
    with pytest.raises(ValueError, match="split"):
        get_task("instructions", split="test")


def _shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_no_prompt_shares_an_8_word_run_with_ifeval(examples: list[Example]) -> None:
    ifeval_path = default_input_path()  # ../shared/data/benchmarks/ifeval/input_data.jsonl
    ifeval = set()
    for line in ifeval_path.read_text(encoding="utf-8").splitlines():
        ifeval |= _shingles(json.loads(line)["prompt"])
    assert len(ifeval) > 10_000
    shared = {s for e in examples for s in _shingles(e.data["prompt"]) & ifeval}
    assert not shared, sorted(" ".join(s) for s in shared)[:10]


def test_export_writes_ifeval_lines_that_ifeval_grade_accepts(
    tmp_path: Path, examples: list[Example]
) -> None:
    exported = tmp_path / "suite.jsonl"
    result = CliRunner().invoke(
        app, ["eval", "export-suite", "instructions", "--output", str(exported)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == [e.data["prompt"] for e in examples]
    assert all(set(r) == IFEVAL_FIELDS for r in rows)

    first, second = [
        e for e in examples if e.data["instruction_id_list"] == ["startend:quotation"]
    ][:2]
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        json.dumps({"prompt": first.data["prompt"], "response": '"Quoted."'})
        + "\n"
        + json.dumps({"prompt": second.data["prompt"], "response": "Not quoted."})
        + "\n",
        encoding="utf-8",
    )
    graded = tmp_path / "graded.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "ifeval-grade",
            "--input",
            str(exported),
            "--responses",
            str(responses),
            "--output",
            str(graded),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["prompt_level_strict"] == 0.5
    assert scores["prompts"] == 2 and scores["missing"] == len(rows) - 2


def test_export_of_one_split_and_of_a_suite_without_ifeval_data(tmp_path: Path) -> None:
    runner = CliRunner()
    dev_file = tmp_path / "dev.jsonl"
    result = runner.invoke(
        app,
        ["eval", "export-suite", "instructions", "--split", "dev", "--output", str(dev_file)],
    )
    assert result.exit_code == 0, result.output
    dev_prompts = [json.loads(line)["prompt"] for line in dev_file.read_text().splitlines()]
    expected = [e.data["prompt"] for e in get_task("instructions", split="dev").examples()]
    assert dev_prompts == expected

    spec_file = tmp_path / "spec.jsonl"
    result = runner.invoke(
        app, ["eval", "export-suite", "behavior_spec", "--output", str(spec_file)]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(spec_file.read_text().splitlines()[0])
    assert set(row) == {"id", "messages"}
    assert row["messages"][-1]["role"] == "user"

    result = runner.invoke(
        app, ["eval", "export-suite", "behavior_spec", "--split", "dev", "--output", str(spec_file)]
    )
    assert result.exit_code == 2
    assert "no splits" in result.output
    result = runner.invoke(app, ["eval", "export-suite", "nonexistent", "--output", str(spec_file)])
    assert result.exit_code == 1
    assert "no eval task" in result.output
