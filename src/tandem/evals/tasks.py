"""An eval task is a small class: `examples()`, `grade(example, response)` and `reward(...)`.

The same object serves offline evaluation, simulated feedback and RL rewards. Built-in suites
register through `register_task`, the same hook a plugin would use.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tandem.core.messages import Message


@dataclass(frozen=True)
class Example:
    """One item of a suite: the conversation to answer and whatever the grader needs."""

    id: str
    messages: tuple[Message, ...]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Grade:
    """A verdict on one response: `passed` overall, plus named scores for reports."""

    passed: bool
    scores: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    name: str = "abstract"
    description: str = ""

    @abstractmethod
    def examples(self) -> Iterable[Example]:
        """The suite's items, in a stable order."""

    @abstractmethod
    def grade(self, example: Example, response: str) -> Grade:
        """Judge one response to one example."""

    def reward(self, example: Example, response: str) -> float:
        """A scalar for RL and simulated feedback; by default 1.0 for a pass."""
        return 1.0 if self.grade(example, response).passed else 0.0


TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Class decorator: make a task available by name (`tandem eval run NAME`)."""

    def decorate(factory: Callable[..., Task]) -> Callable[..., Task]:
        TASKS[name] = factory
        return factory

    return decorate


# Built-in suites register themselves when their module is imported; they are imported on
# first use, so `import tandem.evals` does not load nltk, langdetect or benchmark files.
BUILTIN_TASK_MODULES = {
    "ifeval": "tandem.evals.ifeval",
    "instructions": "tandem.evals.instructions",
    "xstest": "tandem.evals.xstest",
    "behavior_spec": "tandem.evals.behavior_spec",
    "regressions": "tandem.evals.regressions",
    "sycophancy": "tandem.evals.sycophancy",
}


def get_task(name: str, **options: Any) -> Task:
    if name not in TASKS and name in BUILTIN_TASK_MODULES:
        importlib.import_module(BUILTIN_TASK_MODULES[name])
    if name not in TASKS:
        known = sorted(set(TASKS) | set(BUILTIN_TASK_MODULES))
        raise KeyError(f"no eval task {name!r}; known: {', '.join(known)}")
    return TASKS[name](**options)
