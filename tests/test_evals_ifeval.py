"""IFEval: each of the 25 checkers on a passing and a failing response, strict vs loose scoring,
the `ifeval` task and `tandem eval ifeval-grade` on lines of the real input file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.main import app
from tandem.evals import get_task
from tandem.evals.ifeval import CHECKERS, check, grade_prompt, loose_variants
from tandem.evals.ifeval.task import default_input_path

LESS, AT_LEAST = "less than", "at least"

# (instruction id, kwargs, a response that follows it, a response that does not)
CASES = [
    ("keywords:existence", {"keywords": ["banana", "Kiwi"]}, "A kiwi and a BANANA.", "A banana."),
    (
        "keywords:frequency",
        {"keyword": "rock", "frequency": 2, "relation": AT_LEAST},
        "Rock on, rock star.",
        "Rock on.",
    ),
    (
        "keywords:frequency",
        {"keyword": "rock", "frequency": 2, "relation": LESS},
        "Rock on.",
        "Rock on, rock star.",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["cat", "dog"]},
        "Concatenate the hotdogs.",  # whole words only
        "My Dog sleeps.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 3, "let_relation": AT_LEAST},
        "Zany zebras buzz.",
        "Zany zebras.",
    ),
    (
        "language:response_language",
        {"language": "fr"},
        "Bonjour, je suis très content de vous voir aujourd'hui, mon ami.",
        "Hello, I am very happy to see you today, my friend.",
    ),
    (
        "change_case:english_capital",
        {},
        "THIS IS AN ANSWER WRITTEN ENTIRELY IN CAPITAL LETTERS FOR YOU.",
        "This is an answer written mostly in capital letters for you.",
    ),
    (
        "change_case:english_lowercase",
        {},
        "this is an answer written entirely in lowercase letters for you.",
        "This is an answer written mostly in lowercase letters for you.",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 3, "capital_relation": AT_LEAST},
        "I DON'T like NASA.",  # Treebank tokens: I, DO, N'T, NASA
        "I like NASA.",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": LESS},
        "Only NASA here.",
        "NASA and ESA here.",
    ),
    ("punctuation:no_comma", {}, "No commas at all.", "One, two."),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": AT_LEAST},
        "Dr. Smith left. He was tired. Was he? Yes.",
        "Dr. Smith left. He was tired.",  # "Dr." is an abbreviation, not a sentence end
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": LESS},
        "Just one sentence, with Mr. Smith in it.",
        "One. Two.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": AT_LEAST},
        "It's a well-known fact.",  # It, s, a, well, known, fact
        "Too short here.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": LESS},
        "Three words here.",
        "These are four words.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.\n***",
        "First part.\n***\n***\nSecond part.",  # an empty paragraph in the middle
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Summer"},
        'Spring is nice.\n\n"Summer, though, is better.',
        "Spring is nice.\n\nWinter is cold.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], see you at [address].",
        "Dear [name], see you soon.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Thanks!\n\np.s. bring snacks.",
        "Thanks! PS bring snacks.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Thanks!\nP. P. S. one more thing.",
        "Thanks!\nP.S. one thing.",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "Items:\n* apples\n- pears",
        "Items:\n* apples\n* pears\n* plums",
    ),
    (
        "detectable_format:constrained_response",
        {},
        "  My answer is maybe.  ",
        "My answer is probably.",
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "This is *one* and **two**.",
        "This is *one* and ** ** empty.",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nIntro.\nSECTION 2\nBody.",
        "SECTION 1\nEverything at once.",
    ),
    (
        "detectable_format:json_format",
        {},
        '```json\n{"a": [1, 2]}\n```',
        'Here is the JSON: {"a": 1}',
    ),
    ("detectable_format:title", {}, "<<A Poem of Joy>>\nLines.", "<< >>\nNo title."),
    (
        "combination:two_responses",
        {},
        "Answer one.\n******\nAnswer two.",
        "Same answer.\n******\nSame answer.",
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a haiku about rain."},
        "write a haiku about rain. Drops fall softly down.",
        "Here is a haiku about rain.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"That is all. any other questions?"',
        "Any other questions? That is all.",
    ),
    ("startend:quotation", {}, '  "Wrapped in quotes."\n', '"Only opened.'),
]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "good", "bad"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_checker_accepts_a_following_response_and_rejects_another(
    instruction_id: str, kwargs: dict, good: str, bad: str
) -> None:
    assert check(instruction_id, good, kwargs) is True
    assert check(instruction_id, bad, kwargs) is False


def test_every_instruction_of_the_benchmark_has_a_checker_and_a_case() -> None:
    ids = {
        i
        for line in default_input_path().read_text(encoding="utf-8").splitlines()
        for i in json.loads(line)["instruction_id_list"]
    }
    assert len(ids) == 25
    assert ids == set(CHECKERS) == {case[0] for case in CASES}


def test_undetectable_language_counts_as_followed_like_the_reference() -> None:
    assert check("language:response_language", "12345 !!!", {"language": "de"}) is True


def test_unknown_instruction_is_an_error() -> None:
    with pytest.raises(KeyError):
        check("punctuation:no_semicolon", "x", {})


def test_loose_forgives_markdown_and_a_preamble_that_strict_does_not() -> None:
    item = {
        "key": 1,
        "prompt": "Wrap it in quotes and end with 'Bye.'",
        "instruction_id_list": ["startend:quotation", "startend:end_checker"],
        "kwargs": [{}, {"end_phrase": "Bye."}],
    }
    response = 'Sure! Here it is:\n"**Hello** there. Bye."'
    result = grade_prompt(item, response)
    # Strict: the preamble line breaks the quotes; the end phrase is there either way.
    assert result.follow_instruction_list_strict == [False, True]
    assert result.follow_instruction_list_loose == [True, True]


def test_loose_variants_are_the_eight_forms() -> None:
    assert loose_variants("intro\n*body*\noutro") == [
        "intro\n*body*\noutro",
        "intro\nbody\noutro",
        "*body*\noutro",
        "intro\n*body*",
        "*body*",
        "body\noutro",
        "intro\nbody",
        "body",
    ]


def test_an_empty_response_follows_nothing_even_a_vacuous_instruction() -> None:
    item = {
        "key": 2,
        "prompt": "p",
        "instruction_id_list": ["punctuation:no_comma"],
        "kwargs": [{}],
    }
    result = grade_prompt(item, "   \n")
    assert result.follow_instruction_list_strict == [False]
    assert result.follow_instruction_list_loose == [False]


def test_task_reads_the_benchmark_and_grades_strictly() -> None:
    task = get_task("ifeval")
    examples = list(task.examples())
    assert len(examples) == 541
    first = next(e for e in examples if e.data["instruction_id_list"] == ["punctuation:no_comma"])
    assert first.messages[0].role == "user"
    assert first.messages[0].content == first.data["prompt"]
    assert task.grade(first, "No commas here.").passed
    failed = task.grade(first, "Well, no.")
    assert not failed.passed and task.reward(first, "Well, no.") == 0.0


def _input_lines(keys: set[int]) -> list[dict]:
    lines = default_input_path().read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if row["key"] in keys]


def test_cli_grades_responses_against_the_real_input(tmp_path: Path) -> None:
    items = {row["key"]: row for row in _input_lines({1001, 1005})}
    assert items[1001]["instruction_id_list"] == ["punctuation:no_comma"]
    assert items[1005]["kwargs"] == [{"num_placeholders": 12}]
    input_file = tmp_path / "input.jsonl"
    input_file.write_text("".join(json.dumps(r) + "\n" for r in items.values()), encoding="utf-8")
    responses = tmp_path / "responses.jsonl"
    placeholders = " ".join(f"[field{i}]" for i in range(12))
    responses.write_text(
        json.dumps({"prompt": items[1001]["prompt"], "response": "Day one: Kyoto, then Nara."})
        + "\n"
        + json.dumps({"prompt": items[1005]["prompt"], "response": f"Resume\n{placeholders}"})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out" / "graded.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "ifeval-grade",
            "--input",
            str(input_file),
            "--responses",
            str(responses),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["prompt_level_strict"] == 0.5
    assert scores["instruction_level_loose"] == 0.5
    assert scores["prompts"] == 2 and scores["missing"] == 0
    graded = {row["key"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert graded[1001]["follow_instruction_list_strict"] == [False]
    assert graded[1001]["follow_instruction_list_loose"] == [False]
    assert graded[1005]["follow_instruction_list_strict"] == [True]


def test_cli_uses_the_shared_benchmark_by_default_and_counts_missing(tmp_path: Path) -> None:
    (item,) = _input_lines({1000})
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"prompt": item["prompt"], "response": "Short."}) + "\n")
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(
        app, ["eval", "ifeval-grade", "--responses", str(responses), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["prompts"] == 1 and scores["missing"] == 540
    assert len(out.read_text().splitlines()) == 1


def test_cli_rejects_a_response_for_an_unknown_prompt(tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"prompt": "not an IFEval prompt", "response": "x"}) + "\n")
    result = CliRunner().invoke(
        app,
        ["eval", "ifeval-grade", "--responses", str(responses), "--output", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    assert "match no input prompt" in result.output
    assert not (tmp_path / "o").exists()
