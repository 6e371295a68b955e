"""The 25 IFEval instruction checkers: `check(instruction_id, response, kwargs) -> bool`.

    from tandem.evals.ifeval.checkers import check
    check("punctuation:no_comma", "No commas here.", {})                       # -> True
    check("length_constraints:number_words", "Too short.", {"num_words": 5, "relation": "at least"})

Each checker follows the reference semantics of google-research `instruction_following_eval`,
including its quirks (a keyword is a regex searched case-insensitively, `**bold**` counts as a
highlight, an undetectable language counts as followed), because published IFEval numbers are
only comparable when the grader agrees with the reference on every response.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from tandem.evals.ifeval.text import count_sentences, count_words, detect_language, word_tokens

Checker = Callable[..., bool]
CHECKERS: dict[str, Checker] = {}

LESS_THAN, AT_LEAST = "less than", "at least"


def _checker(instruction_id: str) -> Callable[[Checker], Checker]:
    def register(func: Checker) -> Checker:
        CHECKERS[instruction_id] = func
        return func

    return register


def _compare(actual: int, relation: str, threshold: int) -> bool:
    if relation == LESS_THAN:
        return actual < threshold
    if relation == AT_LEAST:
        return actual >= threshold
    raise ValueError(f"relation must be {LESS_THAN!r} or {AT_LEAST!r}, not {relation!r}")


def check(instruction_id: str, response: str, kwargs: dict[str, Any] | None = None) -> bool:
    """Whether `response` follows one instruction; `kwargs` as in IFEval's input file (None
    values are dropped, as the reference does before building an instruction)."""
    if instruction_id not in CHECKERS:
        raise KeyError(f"unknown IFEval instruction {instruction_id!r}")
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    return CHECKERS[instruction_id](response, **args)


# --- keywords -------------------------------------------------------------------------------


@_checker("keywords:existence")
def _keywords_exist(response: str, *, keywords: list[str]) -> bool:
    return all(re.search(keyword, response, flags=re.IGNORECASE) for keyword in keywords)


@_checker("keywords:frequency")
def _keyword_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    found = len(re.findall(keyword.strip(), response, flags=re.IGNORECASE))
    return _compare(found, relation, frequency)


@_checker("keywords:forbidden_words")
def _forbidden_words(response: str, *, forbidden_words: list[str]) -> bool:
    return not any(
        re.search(rf"\b{word}\b", response, flags=re.IGNORECASE) for word in forbidden_words
    )


@_checker("keywords:letter_frequency")
def _letter_frequency(response: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    found = Counter(response.lower())[letter.strip().lower()]
    return _compare(found, let_relation, let_frequency)


# --- language and case ----------------------------------------------------------------------


@_checker("language:response_language")
def _response_language(response: str, *, language: str) -> bool:
    detected = detect_language(response)
    return detected is None or detected == language


@_checker("change_case:english_capital")
def _english_capital(response: str) -> bool:
    detected = detect_language(response)
    return detected is None or (response.isupper() and detected == "en")


@_checker("change_case:english_lowercase")
def _english_lowercase(response: str) -> bool:
    detected = detect_language(response)
    return detected is None or (response.islower() and detected == "en")


@_checker("change_case:capital_word_frequency")
def _capital_word_frequency(
    response: str, *, capital_frequency: int, capital_relation: str
) -> bool:
    capitals = sum(1 for token in word_tokens(response) if token.isupper())
    return _compare(capitals, capital_relation, capital_frequency)


@_checker("punctuation:no_comma")
def _no_comma(response: str) -> bool:
    return "," not in response


# --- length ---------------------------------------------------------------------------------


@_checker("length_constraints:number_sentences")
def _number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    return _compare(count_sentences(response), relation, num_sentences)


@_checker("length_constraints:number_words")
def _number_words(response: str, *, num_words: int, relation: str) -> bool:
    return _compare(count_words(response), relation, num_words)


@_checker("length_constraints:number_paragraphs")
def _number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            # A divider at either end is tolerated; an empty paragraph in the middle is not.
            if index in (0, len(paragraphs) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


@_checker("length_constraints:nth_paragraph_first_word")
def _nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    paragraphs = response.split("\n\n")
    count = sum(1 for paragraph in paragraphs if paragraph.strip())
    # Like the reference, the nth piece is indexed among all pieces, empty ones included.
    if nth_paragraph > count:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    found = ""
    for char in word:
        if char in {".", ",", "?", "!", "'", '"'}:
            break
        found += char.lower()
    return count == num_paragraphs and found == first_word.lower()


# --- detectable content and format ----------------------------------------------------------


@_checker("detectable_content:number_placeholders")
def _number_placeholders(response: str, *, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


@_checker("detectable_content:postscript")
def _postscript(response: str, *, postscript_marker: str) -> bool:
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + marker.lower() + r".*$"
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


@_checker("detectable_format:number_bullet_lists")
def _number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@_checker("detectable_format:constrained_response")
def _constrained_response(response: str) -> bool:
    stripped = response.strip()
    return any(option in stripped for option in CONSTRAINED_OPTIONS)


@_checker("detectable_format:number_highlighted_sections")
def _number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    singles = re.findall(r"\*[^\n\*]*\*", response)
    doubles = re.findall(r"\*\*[^\n\*]*\*\*", response)
    count = sum(1 for h in singles if h.strip("*").strip())
    count += sum(1 for h in doubles if h.removeprefix("**").removesuffix("**").strip())
    return count >= num_highlights


@_checker("detectable_format:multiple_sections")
def _multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    pieces = re.split(r"\s?" + section_spliter.strip() + r"\s?\d+\s?", response)
    return len(pieces) - 1 >= num_sections


@_checker("detectable_format:json_format")
def _json_format(response: str) -> bool:
    body = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(fence)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@_checker("detectable_format:title")
def _title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# --- combination and start/end --------------------------------------------------------------


@_checker("combination:two_responses")
def _two_responses(response: str) -> bool:
    answers = []
    pieces = response.split("******")
    for index, piece in enumerate(pieces):
        if piece.strip():
            answers.append(piece)
        elif index not in (0, len(pieces) - 1):
            return False
    return len(answers) == 2 and answers[0].strip() != answers[1].strip()


@_checker("combination:repeat_prompt")
def _repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@_checker("startend:end_checker")
def _end_checker(response: str, *, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@_checker("startend:quotation")
def _quotation(response: str) -> bool:
    stripped = response.strip()
    return len(stripped) > 1 and stripped[0] == '"' and stripped[-1] == '"'
