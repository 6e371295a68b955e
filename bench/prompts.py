"""The fixed prompts every engine answers: long-answer prompts for speed, varied chat for quality.

The quality set is written for this bench (no public benchmark data: that is evaluation-only).
A few prompts carry a verifiable instruction with a check of our own, in the spirit of
instruction-following suites but far smaller; answers are capped at 64 tokens, so the checks
only ask for things that fit in 64 tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    text: str
    # Checks the answer text; None when the prompt only measures agreement with the reference.
    check: Callable[[str], bool] | None = None
    check_name: str = ""


def _lowercase(answer: str) -> bool:
    return answer.strip() != "" and answer == answer.lower()


def _has_word(word: str) -> Callable[[str], bool]:
    return lambda answer: re.search(rf"\b{word}\b", answer, re.IGNORECASE) is not None


def _yes_or_no(answer: str) -> bool:
    return re.fullmatch(r"\W*(yes|no)\W*", answer.strip(), re.IGNORECASE) is not None


def _bullets(n: int) -> Callable[[str], bool]:
    def check(answer: str) -> bool:
        lines = [line for line in answer.splitlines() if re.match(r"\s*[-*•]\s+", line)]
        return len(lines) == n

    return check


def _max_words(n: int) -> Callable[[str], bool]:
    return lambda answer: 0 < len(answer.split()) <= n


def _no_commas(answer: str) -> bool:
    return answer.strip() != "" and "," not in answer


def _starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda answer: answer.strip().lower().startswith(prefix.lower())


# Single-stream and concurrency timing: answers that run past 128 tokens on every engine, so
# the engines that stop at EOS (the default engine, through `Engine.stream`) still produce
# the full count.
THROUGHPUT_PROMPTS: tuple[str, ...] = (
    "Write a long story about a dragon who learns to bake bread.",
    "Explain in detail how photosynthesis works, step by step.",
    "Write a detailed essay on the history of the Roman Empire.",
    "Describe, in depth, how a computer processor executes a program.",
    "Write a long letter to a friend describing your summer holiday by the sea.",
    "Explain the water cycle to a class of ten-year-olds, with many examples.",
    "Write a detailed guide to starting a vegetable garden.",
    "Tell a long adventure story about two friends exploring a cave.",
)

QUALITY_PROMPTS: tuple[Prompt, ...] = (
    Prompt("What is the capital of France?"),
    Prompt("Give me three tips for sleeping better."),
    Prompt("Explain what a black hole is in simple terms."),
    Prompt("Write a haiku about autumn leaves."),
    Prompt("What is 12 times 7?"),
    Prompt("Translate 'good morning' into Spanish."),
    Prompt("How do I boil an egg?"),
    Prompt("Summarize the plot of Romeo and Juliet in two sentences."),
    Prompt("Write a Python function that reverses a string."),
    Prompt("What are the primary colors?"),
    Prompt("Why is the sky blue?"),
    Prompt("Suggest a name for a friendly robot."),
    Prompt("hi"),
    Prompt("What should I pack for a weekend hiking trip?"),
    Prompt(
        "Is the Pacific the largest ocean on Earth? Answer with only yes or no.",
        _yes_or_no,
        "yes_or_no_only",
    ),
    Prompt(
        "Describe a cat in all lowercase letters, with no capital letters at all.",
        _lowercase,
        "all_lowercase",
    ),
    Prompt(
        "Write a short sentence about breakfast that includes the word banana.",
        _has_word("banana"),
        "includes_word",
    ),
    Prompt(
        "List exactly three fruits as a markdown bullet list, one per line, nothing else.",
        _bullets(3),
        "three_bullets",
    ),
    Prompt(
        "In at most ten words, what is the moon?",
        _max_words(10),
        "max_ten_words",
    ),
    Prompt(
        "Start your answer with the word 'Certainly' and then name one planet, without commas.",
        lambda a: _starts_with("Certainly")(a) and _no_commas(a),
        "starts_with_no_commas",
    ),
)
