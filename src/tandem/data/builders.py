"""Signals → TRL rows. One function per dataset kind; each returns `Example`s whose `row` is in
TRL's conversational format and whose `sources` name the signal ids it came from.

    examples = build_preference_pairs(repo.voted_pairs(f), repo.improved_answers(f),
                                      repo.rated_answers(f))

Pairing rules (docs/datasets.md and every card repeat them):
  - comparison a/b: the voted answer is chosen, the other rejected;
  - comparison tie: no pair (no preference was expressed), and no KTO example;
  - comparison both_bad: no pair (neither is better), but both answers become KTO negatives;
  - improvement: the improved text is chosen over the original answer (and is an SFT target);
  - thumbs: every thumbs-up answer is chosen over every thumbs-down answer to the same prompt
    (identical input messages, system message included);
  - implicit (KTO only, off by default): an answer that was regenerated, stopped, edited away or
    corrected, and that no explicit signal of the build labels, becomes a weak negative; the
    weight keeps that fraction of them, chosen by a hash of the generation id (`implicit_kept`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem.core.errors import InvalidInput
from tandem.core.messages import ROLES, Message
from tandem.store.datasets import Answer, ImprovedAnswer, RatedAnswer, VotedPair
from tandem.store.implicit import ImplicitAnswer

PAIRING_RULES = (
    "comparison a/b → the voted answer is chosen, the other rejected (only when both answered "
    "the identical messages: a behavior experiment's system-prompt variants do not pair); "
    "tie → no pair and no KTO example; "
    "both_bad → no pair, both answers become KTO negatives (label false); "
    "improvement → improved text chosen over the original answer; "
    "thumbs → each thumbs-up answer chosen over each thumbs-down answer to the identical prompt; "
    "implicit (KTO, only with implicit_weight > 0) → an answer regenerated, stopped, edited "
    "away or corrected that no explicit signal labels becomes a negative (label false), a "
    "hash-chosen implicit_weight fraction of them, origin implicit_<kind>."
)


@dataclass
class Example:
    """One TRL row, the signal ids behind it, and whose signal it is (None for demonstrations)."""

    row: dict[str, Any]
    sources: dict[str, list[str]]
    user_id: str | None = None
    at: datetime | None = None
    origin: str = ""  # which rule made it: "thumbs_up", "comparison", "improvement", ...
    model_versions: tuple[str, ...] = field(default_factory=tuple)


def chat(messages: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Stored messages (role + typed parts) as the `{"role", "content"}` list TRL expects."""
    return [Message.from_dict(m).to_openai() for m in messages]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _usable(answer: Answer) -> bool:
    # An answer with no prompt or no text teaches nothing (e.g. an aborted stream).
    return bool(answer.input_messages) and bool(answer.output_text.strip())


def build_sft_examples(
    rated: Sequence[RatedAnswer],
    improved: Sequence[ImprovedAnswer],
    demonstrations: Sequence[Example] = (),
) -> list[Example]:
    """`messages` rows: thumbs-up answers, improved answers (the context + the improved text),
    and the behaviour-spec demonstrations as given."""
    out = [
        Example(
            {"messages": chat(r.answer.input_messages) + _assistant(r.answer.output_text)},
            {"feedback": [r.feedback_id], "generation": [r.answer.generation_id]},
            r.user_id,
            r.at,
            "thumbs_up",
            (r.answer.model_version,),
        )
        for r in rated
        if r.rating == "up" and _usable(r.answer)
    ]
    out += [
        Example(
            {"messages": chat(i.original.input_messages) + _assistant(i.text)},
            {"improvement": [i.improvement_id], "generation": [i.original.generation_id]},
            i.user_id,
            i.at,
            "improvement",
            (i.original.model_version,),
        )
        for i in improved
        if i.original.input_messages and i.text.strip()
    ]
    return out + list(demonstrations)


def _pair(prompt: list[dict[str, Any]], chosen: str, rejected: str) -> dict[str, Any]:
    return {
        "prompt": chat(prompt),
        "chosen": _assistant(chosen),
        "rejected": _assistant(rejected),
    }


def build_preference_pairs(
    voted: Sequence[VotedPair],
    improved: Sequence[ImprovedAnswer],
    rated: Sequence[RatedAnswer],
) -> list[Example]:
    """`prompt`/`chosen`/`rejected` rows (DPOTrainer, RewardTrainer) by PAIRING_RULES."""
    out: list[Example] = []
    for v in voted:
        if v.verdict not in ("a", "b"):
            continue
        win, lose = (v.a, v.b) if v.verdict == "a" else (v.b, v.a)
        if not (_usable(win) and _usable(lose)) or win.output_text == lose.output_text:
            continue
        # A pair shares one prompt. Two sides written under different system prompts (a behavior
        # experiment's prompt variants) would teach the loser's answer is worse under the
        # winner's prompt, which nobody judged; their votes count in the experiment only.
        if win.input_messages != lose.input_messages:
            continue
        out.append(
            Example(
                _pair(win.input_messages, win.output_text, lose.output_text),
                {
                    "comparison": [v.comparison_id],
                    "generation": [win.generation_id, lose.generation_id],
                },
                v.user_id,
                v.at,
                "comparison",
                (win.model_version, lose.model_version),
            )
        )
    for i in improved:
        o = i.original
        if not _usable(o) or not i.text.strip() or i.text == o.output_text:
            continue
        out.append(
            Example(
                _pair(o.input_messages, i.text, o.output_text),
                {"improvement": [i.improvement_id], "generation": [o.generation_id]},
                i.user_id,
                i.at,
                "improvement",
                (o.model_version,),
            )
        )
    by_prompt: dict[str, dict[str, list[RatedAnswer]]] = {}
    for r in rated:
        if _usable(r.answer):
            key = json.dumps(chat(r.answer.input_messages), sort_keys=True)
            by_prompt.setdefault(key, {"up": [], "down": []})[r.rating].append(r)
    for group in by_prompt.values():
        for up in group["up"]:
            for down in group["down"]:
                if up.answer.output_text == down.answer.output_text:
                    continue  # the same text rated both ways is noise, not a preference
                out.append(
                    Example(
                        _pair(
                            up.answer.input_messages, up.answer.output_text, down.answer.output_text
                        ),
                        {
                            "feedback": [up.feedback_id, down.feedback_id],
                            "generation": [up.answer.generation_id, down.answer.generation_id],
                        },
                        up.user_id,
                        max(up.at, down.at),
                        "thumbs_pair",
                        (up.answer.model_version, down.answer.model_version),
                    )
                )
    return out


def _unpaired(answer: Answer, label: bool, text: str | None = None) -> dict[str, Any]:
    return {
        "prompt": chat(answer.input_messages),
        "completion": _assistant(answer.output_text if text is None else text),
        "label": label,
    }


def implicit_kept(generation_id: str, weight: float) -> bool:
    """Whether a weak label with this weight is kept: KTOTrainer has no per-row weight, so a
    weight w keeps the fraction w of the implicit rows, chosen by a hash of the answer's
    generation id. Deterministic (the same signals build the same snapshot) and nested (what
    weight 0.3 keeps, weight 0.6 keeps too)."""
    digest = hashlib.sha256(f"implicit-weight:{generation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < weight


def build_kto_examples(
    rated: Sequence[RatedAnswer],
    voted: Sequence[VotedPair],
    improved: Sequence[ImprovedAnswer],
    implicit: Sequence[ImplicitAnswer] = (),
    implicit_weight: float = 0.0,
) -> list[Example]:
    """`prompt`/`completion`/`label` rows (KTOTrainer): thumbs up/down, comparison winners and
    losers (both_bad: two negatives; tie: nothing), improved (true) and original (false), and
    with `implicit_weight` > 0 the weak negatives of `implicit` (see `implicit_negatives`)."""
    out = _explicit_kto(rated, voted, improved)
    labelled = {g for ex in out for g in ex.sources.get("generation", [])}
    return out + implicit_negatives(implicit, implicit_weight, labelled)


def implicit_negatives(
    implicit: Sequence[ImplicitAnswer], weight: float, labelled: set[str]
) -> list[Example]:
    """One negative (label false) per answer carrying implicit signals and no explicit label in
    this build (`labelled` generation ids), kept with probability `weight` (`implicit_kept`).
    Its origin is `implicit_<kind>` of the answer's first signal; its sources every one."""
    by_answer: dict[str, list[ImplicitAnswer]] = {}
    for signal in implicit:
        by_answer.setdefault(signal.answer.generation_id, []).append(signal)
    out: list[Example] = []
    for generation_id, signals in by_answer.items():
        answer = signals[0].answer
        if generation_id in labelled or not _usable(answer):
            continue
        if not implicit_kept(generation_id, weight):
            continue
        out.append(
            Example(
                _unpaired(answer, False),
                {"implicit": [s.signal_id for s in signals], "generation": [generation_id]},
                signals[0].user_id,
                signals[0].at,
                f"implicit_{signals[0].kind}",
                (answer.model_version,),
            )
        )
    return out


def _explicit_kto(
    rated: Sequence[RatedAnswer],
    voted: Sequence[VotedPair],
    improved: Sequence[ImprovedAnswer],
) -> list[Example]:
    out: list[Example] = []
    for r in rated:
        if _usable(r.answer):
            out.append(
                Example(
                    _unpaired(r.answer, r.rating == "up"),
                    {"feedback": [r.feedback_id], "generation": [r.answer.generation_id]},
                    r.user_id,
                    r.at,
                    f"thumbs_{r.rating}",
                    (r.answer.model_version,),
                )
            )
    for v in voted:
        labels = {"a": (True, False), "b": (False, True), "both_bad": (False, False)}.get(v.verdict)
        if labels is None:
            continue
        for answer, label in zip((v.a, v.b), labels, strict=True):
            if _usable(answer):
                out.append(
                    Example(
                        _unpaired(answer, label),
                        {"comparison": [v.comparison_id], "generation": [answer.generation_id]},
                        v.user_id,
                        v.at,
                        f"comparison_{v.verdict}",
                        (answer.model_version,),
                    )
                )
    for i in improved:
        o = i.original
        if not o.input_messages or not i.text.strip():
            continue
        sources = {"improvement": [i.improvement_id], "generation": [o.generation_id]}
        out.append(
            Example(
                _unpaired(o, True, i.text),
                sources,
                i.user_id,
                i.at,
                "improvement",
                (o.model_version,),
            )
        )
        if _usable(o) and o.output_text != i.text:
            out.append(
                Example(
                    _unpaired(o, False),
                    dict(sources),
                    i.user_id,
                    i.at,
                    "improvement_original",
                    (o.model_version,),
                )
            )
    return out


MAX_DEMONSTRATION_BYTES = 50_000_000


def demonstration_examples(records: Sequence[Any], source: str) -> list[Example]:
    """Behaviour-spec demonstrations: `{"messages": [...]}` records ending with the assistant's
    answer. Row n's source id is `<source>:<n>` (1-based)."""
    out = []
    for number, record in enumerate(records, 1):
        where = f"demonstration {number}"
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            raise InvalidInput(f'{where}: expected {{"messages": [...]}}')
        for m in messages:
            if (
                not isinstance(m, dict)
                or m.get("role") not in ROLES
                or not isinstance(m.get("content"), str)
            ):
                raise InvalidInput(
                    f"{where}: each message needs a role in {list(ROLES)} and a string content"
                )
        if messages[-1]["role"] != "assistant":
            raise InvalidInput(f"{where}: the last message must be the assistant's")
        out.append(
            Example(
                {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]},
                {"demonstration": [f"{source}:{number}"]},
                None,
                None,
                "demonstration",
            )
        )
    return out


def load_demonstrations(path: Path) -> tuple[list[Example], str]:
    """Demonstrations from a JSONL file, and the file's sha256 (its rows' source ids are
    `<sha256 prefix>:<row number>`)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"demonstrations file {path} does not exist")
    if path.stat().st_size > MAX_DEMONSTRATION_BYTES:
        raise InvalidInput(f"demonstrations file {path} is larger than 50 MB")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    records = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not JSON ({exc.msg})") from None
    return demonstration_examples(records, digest[:16]), digest
