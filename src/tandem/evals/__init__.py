"""Evaluation: offline suites (tasks), graders, online metrics, and the gap between them."""

from tandem.evals.tasks import TASKS, Example, Grade, Task, get_task, register_task

__all__ = ["TASKS", "Example", "Grade", "Task", "get_task", "register_task"]
