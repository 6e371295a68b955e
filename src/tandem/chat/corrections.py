"""Does the user's next message correct the previous answer? A small rule-based classifier.

    classify_followup("no, I asked for three bullets")   # Correction(rule="asked_for")
    classify_followup("no worries, thanks!")             # None
    classify_followup("now do the same for Python")      # None

Positive: the message says the answer was wrong or missed the request ("that's wrong", "you
didn't answer my question", "not what I asked"), or asks for it again fixed ("shorter please",
"try again", "I said three bullets"). Not corrections: thanks and politeness that start with
"no" ("no worries"), new tasks and follow-on questions ("now do the same for Python", "why?"),
the user correcting themselves ("my bad, I meant Java" is kept out: the user's mistake).

Rules, not a model: each is a regular expression a person can read, and each names itself in
the signal's detail, so the admin sees why an answer was flagged. Measured on a labelled set
written for it (tandem/data/corrective_followups/, a dev part and a held-out part):
`python -m bench.corrective_followup` writes docs/benchmarks/corrective_followup.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Messages this long are new requests that happen to contain a complaint word, far more often
# than corrections: corrections are short.
MAX_WORDS = 40

_NUM = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)"

# (rule name, pattern) in the order they are tried; the first that matches names the signal.
_RULES: tuple[tuple[str, str], ...] = (
    (
        "says_wrong",
        r"\b(?:that|this|it|that answer|your answer|the answer)(?:'s| is| was)"
        r" (?:(?:just|still|all|completely|totally|simply) )?"
        r"(?:wrong|incorrect|false|not (?:right|correct|true|accurate|it|what i)|inaccurate|"
        r"nonsense|made up|backwards|a hallucination)\b",
    ),
    ("you_wrong", r"\byou(?:'re| are) (?:wrong|mistaken|incorrect|confusing|mixing)\b"),
    (
        "not_what_asked",
        r"\bnot what i (?:asked|wanted|meant|said|need(?:ed)?)\b|\bi didn'?t ask (?:for|about)\b",
    ),
    (
        "you_didnt",
        r"\byou (?:didn'?t|did not|haven'?t|have not|never) (?:answer|read|follow|listen|do|"
        r"use|include|give|address|mention|respond)\b"
        r"|\byou (?:missed|ignored|forgot|skipped|misread|misunderstood|left out)\b",
    ),
    (
        "asked_for",
        r"\bi (?:asked|said|told you|wanted|specified|requested|meant)\b"
        r"(?! (?:my|him|her|them|a friend|around))",
    ),
    (
        "length",
        r"\b(?:too|way too|much too|far too) (?:long|short|verbose|wordy|complicated|technical|"
        r"vague|generic|much|casual|informal|formal|basic|long-winded)\b"
        r"|\b(?:shorter|briefer|more concise|more brief|less (?:verbose|wordy|detail))\b"
        r"(?! (?:than|texts?|words?|ones?|version of (?:my|the text i)))"
        r"|\btl;? ?dr\b|\bbe (?:more )?(?:brief|concise|succinct)\b"
        r"|^(?:make it )?(?:simpler|shorter)(?: please)?[.!]*$",
    ),
    (
        "redo",
        r"^(?:please |pls |can you |could you )?(?:try again|redo (?:it|that|this)|start over|"
        r"again\b|once more\b|do it again|answer (?:the|my) question)"
        r"|\b(?:please )?(?:just )?answer (?:the|my) (?:actual )?question\b"
        r"|\bread (?:my|the) (?:question|message|prompt) again\b",
    ),
    (
        "wrong_thing",
        r"\b(?:the|that|this|a) wrong (?:year|date|answer|formula|number|name|language|person|"
        r"city|country|file|one|version|unit|result|word)s?\b"
        r"|\b(?:formula|answer|code|math|result|number|date|year|calculation|translation|"
        r"output|example|sum|total|query|regex) (?:is|was|looks|seems) (?:still )?(?:wrong|"
        r"incorrect|off|broken)\b"
        r"|\b(?:has|have|there'?s|there is) (?:a |another )?bugs?\b|\bis buggy\b",
    ),
    (
        "doesnt_work",
        r"\b(?:that|this|it|the code|your code)"
        r" (?:still )?(?:doesn'?t|does not|didn'?t|won'?t) (?:work|compile|run|make sense|answer|"
        r"help)\b|\bstill (?:wrong|not (?:right|working|correct|what))\b",
    ),
    (
        "not_quite",
        r"^(?:not quite|not really|not exactly|nope|wrong|incorrect|no no|that's not it)\b",
    ),
    ("are_you_sure", r"^(?:are you sure|really\?|is that (?:right|true|correct)\?)"),
    (
        "only",
        rf"\b(?:only|just|exactly) {_NUM} (?:bullets?|points?|items?|lines?|sentences?|words?"
        r"|paragraphs?|examples?)\b",
    ),
    ("just_give", r"^(?:just|only) (?:give me|tell me|the|answer|show me|list)\b"),
    # A bare "no" opening a sentence that goes on ("no, …", "no. …", "no it …"): the phrases
    # that only look like one (thanks, politeness, "no, that's all") are excused below.
    ("no_opening", r"^no\b[\s,.!:;-]+\S"),
)

# Messages that look like corrections but are not: politeness after "no", the user's own
# mistake, a compliment with a negation in it, a question about wrongness in general.
_EXCUSES = (
    r"^no (?:worries|problem|problems|prob|thanks|thank you|need|rush|biggie|way[!.]?$)",
    r"^(?:no|nope|nah)[\s,.!]+(?:that'?s|that is|it'?s|thats) (?:all|it|everything|fine|"
    r"perfect|great|good|ok|okay|enough|helpful|exactly|right|correct)\b",
    r"^(?:no|nope|nah)[\s,.!]+(?:thanks|thank you|i'?m good|all good|nothing else|i don'?t|"
    r"i'?m all set|that will do|we'?re good)\b",
    r"\b(?:my bad|my mistake|i was wrong|i'?m wrong|i made a (?:mistake|typo)|sorry,? i meant)\b",
    r"\bnot bad\b|\bnothing wrong\b|\bisn'?t wrong\b|\bnot wrong\b|\byou(?:'re| are) (?:right|"
    r"correct)\b",
    r"\bwhat(?:'s| is) wrong with (?:my|this code|the code i)\b",
    r"\bi (?:said|told|asked) (?:that|this|it) to\b",
)

_COMPILED = tuple((name, re.compile(rx)) for name, rx in _RULES)
_EXCUSED = tuple(re.compile(rx) for rx in _EXCUSES)


@dataclass(frozen=True)
class Correction:
    """A follow-up judged corrective, and the rule that said so."""

    rule: str


def normalize(text: str) -> str:
    """Lowercase, straight apostrophes, single spaces: what the rules are written against."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    return re.sub(r"\s+", " ", text).strip()


def classify_followup(text: str) -> Correction | None:
    """The rule that finds `text` correcting the previous answer, or None."""
    flat = normalize(text)
    if not flat or len(flat.split()) > MAX_WORDS:
        return None
    if any(rx.search(flat) for rx in _EXCUSED):
        return None
    for name, rx in _COMPILED:
        if rx.search(flat):
            return Correction(name)
    return None
