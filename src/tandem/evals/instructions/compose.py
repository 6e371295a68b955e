"""Compose the instruction suite: everyday tasks × verifiable instructions → IFEval-format items.

    from tandem.evals.instructions.compose import compose_suite
    items = compose_suite()        # [{"key", "prompt", "instruction_id_list", "kwargs"}, ...]

`suite.yaml` (shipped beside this module) holds the tasks, the phrasings of each instruction and
the conflict table; its header explains the format. Composition is seeded and walks the
instruction types round-robin, so every type leads about the same number of prompts and the
same file always gives the same prompts in the same order.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

REPEAT = "combination:repeat_prompt"
CONSTRAINED = "detectable_format:constrained_response"
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
# Relation-valued kwargs pick a phrasing list when `phrasings` is keyed by relation.
RELATION_KEYS = ("relation", "let_relation", "capital_relation")


@dataclass(frozen=True)
class BaseTask:
    id: str
    text: str
    keywords: tuple[str, ...]
    yes_no: bool = False


@dataclass(frozen=True)
class Suite:
    seed: int
    size: int
    dev_percent: int
    max_extra: int
    languages: dict[str, str]
    tasks: tuple[BaseTask, ...]
    instructions: dict[str, dict[str, Any]]
    conflicts: tuple[tuple[str, str], ...]

    def conflict(self, a: str, b: str) -> bool:
        """Whether two instruction ids may not share a prompt (an id never pairs with itself)."""
        if a == b:
            return True

        def matches(pattern: str, instruction_id: str) -> bool:
            if pattern.endswith(":"):
                return instruction_id.startswith(pattern)
            return instruction_id == pattern

        return any(
            (matches(p, a) and matches(q, b)) or (matches(p, b) and matches(q, a))
            for p, q in self.conflicts
        )


def default_suite_path() -> Path:
    return Path(str(resources.files("tandem.evals.instructions") / "suite.yaml"))


def load_suite(path: str | Path | None = None) -> Suite:
    raw = yaml.safe_load(Path(path or default_suite_path()).read_text(encoding="utf-8"))
    tasks = tuple(
        BaseTask(
            id=str(t["id"]),
            text=str(t["text"]).strip(),
            keywords=tuple(str(k) for k in t["keywords"]),
            yes_no=bool(t.get("yes_no", False)),
        )
        for t in raw["tasks"]
    )
    for task in tasks:
        # A flow-style YAML line with a stray comma or colon would silently cut the text short.
        if not task.text.endswith((".", "?")) or len(task.keywords) < 2:
            raise ValueError(f"suite task {task.id!r} looks malformed: {task.text!r}")
    return Suite(
        seed=int(raw["seed"]),
        size=int(raw["size"]),
        dev_percent=int(raw["dev_percent"]),
        max_extra=int(raw["max_extra_instructions"]),
        languages={str(k): str(v) for k, v in raw["languages"].items()},
        tasks=tasks,
        instructions={str(k): dict(v) for k, v in raw["instructions"].items()},
        conflicts=tuple((str(a), str(b)) for a, b in raw["conflicts"]),
    )


def _quoted_list(words: Sequence[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _choose_kwargs(
    suite: Suite, instruction_id: str, task: BaseTask, rng: random.Random
) -> dict[str, Any]:
    spec = suite.instructions[instruction_id]
    kwargs: dict[str, Any] = dict(rng.choice(spec["values"])) if spec.get("values") else {}
    # Keyword instructions draw on the task's own topic words, so they read naturally.
    if instruction_id == "keywords:existence":
        kwargs["keywords"] = sorted(rng.sample(task.keywords, 2), key=task.keywords.index)
    elif instruction_id == "keywords:frequency":
        kwargs["keyword"] = rng.choice(task.keywords)
    return kwargs


def _phrase(suite: Suite, instruction_id: str, kwargs: dict[str, Any], rng: random.Random) -> str:
    phrasings = suite.instructions[instruction_id]["phrasings"]
    if isinstance(phrasings, dict):
        relation = next(kwargs[k] for k in RELATION_KEYS if k in kwargs)
        phrasings = phrasings[relation]
    slots = dict(kwargs)
    if "keywords" in kwargs:
        slots["keywords_text"] = _quoted_list(kwargs["keywords"])
    if "forbidden_words" in kwargs:
        slots["forbidden_text"] = _quoted_list(kwargs["forbidden_words"])
    if "language" in kwargs:
        slots["language_name"] = suite.languages[kwargs["language"]]
    if "nth_paragraph" in kwargs:
        slots["nth_text"] = ORDINALS[kwargs["nth_paragraph"]]
    return str(rng.choice(phrasings)).format(**slots)


def _required_text(ids: Sequence[str], kwargs_list: Sequence[dict[str, Any]]) -> str:
    """Text any following response must contain: words it is told to use or repeat."""
    parts: list[str] = []
    for instruction_id, kwargs in zip(ids, kwargs_list, strict=True):
        parts.extend(kwargs.get("keywords", []))
        if instruction_id == "keywords:frequency" and kwargs["relation"] == "at least":
            parts.extend([kwargs["keyword"]] * kwargs["frequency"])
        for name in ("end_phrase", "first_word", "prompt_to_repeat", "postscript_marker"):
            if name in kwargs:
                parts.append(str(kwargs[name]))
        if instruction_id == CONSTRAINED:
            parts.append("My answer is")
    return " ".join(parts)


def _satisfiable(ids: Sequence[str], kwargs_list: Sequence[dict[str, Any]]) -> bool:
    """Reject combinations whose required words already break a cap on a letter, a keyword
    or a forbidden word (the conflict table cannot see kwargs)."""
    required = _required_text(ids, kwargs_list)
    for instruction_id, kwargs in zip(ids, kwargs_list, strict=True):
        if (
            instruction_id == "keywords:letter_frequency"
            and kwargs["let_relation"] == "less than"
            and required.lower().count(kwargs["letter"]) >= kwargs["let_frequency"]
        ):
            return False
        if instruction_id == "keywords:frequency" and kwargs["relation"] == "less than":
            found = re.findall(kwargs["keyword"], required, flags=re.IGNORECASE)
            if len(found) >= kwargs["frequency"]:
                return False
        if instruction_id == "keywords:forbidden_words":
            for word in kwargs["forbidden_words"]:
                if re.search(rf"\b{word}\b", required, flags=re.IGNORECASE):
                    return False
    return True


def _key(prompt: str) -> int:
    # IFEval's keys are integers; a hash of the prompt keeps a prompt's key stable across runs.
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12], 16)


def _compose_one(
    suite: Suite, lead: str, rng: random.Random
) -> tuple[str, list[str], list[dict[str, Any]]] | None:
    tasks = [t for t in suite.tasks if t.yes_no] if lead == CONSTRAINED else list(suite.tasks)
    task = rng.choice(tasks)
    ids = [lead]
    candidates = sorted(suite.instructions)
    rng.shuffle(candidates)
    wanted = rng.randint(0, suite.max_extra)
    for candidate in candidates:
        if len(ids) > wanted:
            break
        if candidate == CONSTRAINED and not task.yes_no:
            continue
        if not any(suite.conflict(candidate, chosen) for chosen in ids):
            ids.append(candidate)
    # repeat_prompt wraps the rest of the prompt, so it is composed last.
    ids.sort(key=lambda i: i == REPEAT)
    kwargs_list = [_choose_kwargs(suite, i, task, rng) for i in ids]
    sentences = [task.text]
    for instruction_id, kwargs in zip(ids, kwargs_list, strict=True):
        if instruction_id == REPEAT:
            kwargs["prompt_to_repeat"] = " ".join(sentences)
            sentences = [_phrase(suite, REPEAT, {"request": kwargs["prompt_to_repeat"]}, rng)]
        else:
            sentences.append(_phrase(suite, instruction_id, kwargs, rng))
    if not _satisfiable(ids, kwargs_list):
        return None
    return " ".join(sentences), ids, kwargs_list


@cache
def _compose_cached(path: str, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    suite = load_suite(path)
    rng = random.Random(suite.seed)
    types = sorted(suite.instructions)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempt = 0
    # Round-robin over lead types keeps per-type counts balanced; a rejected or duplicate draw
    # retries the same lead type with fresh choices.
    while len(items) < suite.size:
        lead = types[len(items) % len(types)]
        attempt += 1
        if attempt > suite.size * 50:
            raise ValueError(f"could only compose {len(items)} of {suite.size} prompts")
        composed = _compose_one(suite, lead, rng)
        if composed is None or composed[0] in seen:
            continue
        prompt, ids, kwargs_list = composed
        seen.add(prompt)
        items.append(
            {
                "key": _key(prompt),
                "prompt": prompt,
                "instruction_id_list": ids,
                "kwargs": kwargs_list,
            }
        )
    return tuple(items)


def compose_suite(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The suite's items in IFEval's input format, in a stable order (fresh copies each call)."""
    resolved = Path(path or default_suite_path()).resolve()
    items = _compose_cached(str(resolved), resolved.stat().st_mtime_ns)
    return copy.deepcopy(list(items))


def split_of(example_id: str, dev_percent: int) -> str:
    """'dev' for about `dev_percent`% of ids, 'train' for the rest; a pure function of the id."""
    bucket = int(hashlib.sha256(f"split:{example_id}".encode()).hexdigest()[:8], 16) % 100
    return "dev" if bucket < dev_percent else "train"
