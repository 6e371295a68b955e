"""PII and secret scrubbing: matches become placeholders such as `[EMAIL]`, counted per kind.

    text, counts = scrub_text("mail me at ada@example.org")   # "mail me at [EMAIL]", {"email": 1}

Patterns run in order, most specific first, so a JWT is not half-eaten by the base64 rule and a
card number is not counted as a phone number. Card-like digit runs are replaced only when they
pass the Luhn check: order numbers and timestamps stay. Best effort by design: regexes catch
the common shapes, not every secret; the card of every snapshot reports what was replaced.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

PLACEHOLDERS = {
    "jwt": "[JWT]",
    "api_key": "[API_KEY]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "secret": "[SECRET]",
}

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"tk-[A-Za-z0-9_-]{16,}"  # tandem's own API keys
    r"|sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic, Stripe
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r")"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# A trailing "." ends a sentence unless a digit follows (a decimal number is not PII).
_CARD = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?!\d|\.\d)")
_PHONE = re.compile(
    r"(?<![\w.+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?!\w|\.\d)"
)
_HEX_SECRET = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64_SECRET = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_-])")


def luhn_valid(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def _is_card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(match: re.Match[str]) -> bool:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    # 9-15 digits (E.164 allows 15); a bare run without separators or "+" must be 10+ long, so
    # plain numbers in prose ("in 2024 we sold 123456") are left alone.
    if not 9 <= len(digits) <= 15:
        return False
    return text.startswith("+") or len(digits) >= 10 or bool(re.search(r"[ .()-]", text))


def _is_b64_secret(match: re.Match[str]) -> bool:
    # A secret mixes classes; a long word or a path segment usually does not.
    text = match.group()
    return (
        bool(re.search(r"[a-z]", text))
        and bool(re.search(r"[A-Z]", text))
        and bool(re.search(r"\d", text))
    )


_RULES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None], ...] = (
    ("jwt", _JWT, None),
    ("api_key", _API_KEY, None),
    ("email", _EMAIL, None),
    ("card", _CARD, _is_card),
    ("phone", _PHONE, _is_phone),
    ("secret", _HEX_SECRET, None),
    ("secret", _B64_SECRET, _is_b64_secret),
)


def scrub_text(text: str) -> tuple[str, Counter[str]]:
    """`text` with every match replaced by its placeholder, and how many of each kind."""
    counts: Counter[str] = Counter()
    for kind, pattern, accept in _RULES:

        def replace(match: re.Match[str], kind: str = kind, accept: Any = accept) -> str:
            if accept is not None and not accept(match):
                return match.group()
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(replace, text)
    return text, counts


def scrub_row(row: dict[str, Any]) -> tuple[dict[str, Any], Counter[str]]:
    """A TRL row with every string inside it scrubbed (message contents, plain prompts)."""
    counts: Counter[str] = Counter()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            clean, found = scrub_text(value)
            counts.update(found)
            return clean
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            # Keys such as "role" are structure, not user text.
            return {k: (v if k == "role" else walk(v)) for k, v in value.items()}
        return value

    return walk(row), counts
