"""Recognising "remember that …" in a user's message, so the service can save the clause as a
memory before the model answers.

    memory_request("Please remember that I'm vegetarian")   # -> "I'm vegetarian"
    memory_request("What's the weather?")                    # -> None
"""

from __future__ import annotations

import re

# The product contract's two forms; the second also matches mid-sentence ("Oh, and don't
# forget that …"). Typographic apostrophes count, since phones type them.
_REMEMBER = re.compile(r"^(please )?remember( that|:)? (.+)", re.IGNORECASE)
_DONT_FORGET = re.compile(r"don['’]t forget (that )?(.+)", re.IGNORECASE)


def memory_request(text: str) -> str | None:
    """The clause the user asks to have remembered, or None when they ask for nothing."""
    text = text.strip()
    if m := _REMEMBER.match(text):
        clause = m.group(3)
    elif m := _DONT_FORGET.search(text):
        clause = m.group(2)
    else:
        return None
    return clause.strip() or None
