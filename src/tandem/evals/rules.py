"""Rule graders for behavior specs: small checks on a response's text, each True or False.

    check_rules({"max_words": 40, "no_list": True}, "Hi! Good to see you.")
    # -> {"max_words": True, "no_list": True}

A verdict over several checks is `passed` when all hold, `failed` when any fails, and
`not_graded` when none failed but one (a judge item with no judge) could not be decided: an
undecided item is never counted as a pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from tandem.evals.refusal import classify_refusal, is_refusal

Status = Literal["passed", "failed", "not_graded"]

_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+\S")
_WORD = re.compile(r"\b[\w'’-]+\b")
# A stated assumption: "I'll assume…", "assuming you mean…", "if you mean…", "I'm taking it…".
_ASSUMPTION = re.compile(
    r"\b(?:assum(?:e|ing|ption)|if you mean|if you're (?:asking|referring)|i(?:'ll| will) take "
    r"(?:it|this)|i'm guessing|presumably|i(?:'m| am) taking (?:it|this))\b",
    re.IGNORECASE,
)
# Sentences that only offer help; a reply made of nothing else has not answered anything.
_OFFER = re.compile(
    r"^(?:(?:sure|of course|absolutely|certainly|happy to help)[!,.]?\s*)?"
    r"(?:is there anything (?:else )?i can|let me know (?:if|how|what)|feel free to|"
    r"(?:i(?:'d| would| am|'m) )?(?:be )?(?:happy|glad) to help|how can i (?:help|assist)|"
    r"what can i (?:do|help)|would you like (?:me to|more|help))",
    re.IGNORECASE,
)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _json_object(text: str) -> dict[str, Any] | None:
    """The reply as one JSON object, allowing a ```json fence around it and nothing else."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.DOTALL | re.IGNORECASE)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_FILLER = re.compile(r"^(?:sure|of course|absolutely|certainly|okay|ok|hi|hello|hey)[!,.]*$", re.I)


def _only_offer(text: str) -> bool:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    # "Sure!" on its own says nothing either way; judge the rest.
    content = [s for s in sentences if not _FILLER.match(s)]
    return bool(content) and all(_OFFER.match(s) for s in content)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _refuses(response: str) -> bool:
    return is_refusal(classify_refusal(response))


RULES: dict[str, Callable[[Any, str], bool]] = {
    "max_words": lambda n, r: word_count(r) <= int(n),
    "min_words": lambda n, r: word_count(r) >= int(n),
    "no_list": lambda on, r: not on or not any(_BULLET.match(line) for line in _lines(r)),
    "bullet_count": lambda n, r: (
        bool(_lines(r)) and all(_BULLET.match(line) for line in _lines(r)) and len(_lines(r)) == n
    ),
    "json_keys": lambda keys, r: (
        (obj := _json_object(r)) is not None and set(obj) == set(_as_list(keys))
    ),
    "must_contain": lambda s, r: all(x.lower() in r.lower() for x in _as_list(s)),
    "must_not_contain": lambda s, r: not any(x.lower() in r.lower() for x in _as_list(s)),
    "must_match": lambda p, r: all(re.search(x, r, re.IGNORECASE | re.M) for x in _as_list(p)),
    "must_not_match": lambda p, r: (
        not any(re.search(x, r, re.IGNORECASE | re.M) for x in _as_list(p))
    ),
    "max_exclamations": lambda n, r: r.count("!") <= int(n),
    "asks_question": lambda on, r: ("?" in r) == bool(on),
    "clarify_or_assume": lambda on, r: ("?" in r or bool(_ASSUMPTION.search(r))) == bool(on),
    "not_only_offer": lambda on, r: not on or not _only_offer(r),
    "refuses": lambda want, r: _refuses(r) == bool(want),
}


def check_rules(rules: Mapping[str, Any], response: str) -> dict[str, bool]:
    """Every rule's result on `response`; `judge` entries are left to `judge_item`."""
    unknown = set(rules) - set(RULES) - {"judge"}
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
    return {name: bool(RULES[name](arg, response)) for name, arg in rules.items() if name in RULES}


def verdict(results: Mapping[str, bool | None]) -> Status:
    """`failed` if any check failed, else `not_graded` if any is undecided (None), else passed."""
    if any(v is False for v in results.values()):
        return "failed"
    if any(v is None for v in results.values()):
        return "not_graded"
    return "passed"
