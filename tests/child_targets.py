"""Functions that tests run in a child process through tandem.flywheel.child: they live in a
module of their own because the child imports its target by name (tests/ is on the sys.path
the parent hands it)."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

log = logging.getLogger("child_targets")


def add(a: int, b: int) -> dict[str, Any]:
    return {"sum": a + b, "pid": os.getpid()}


def fail(message: str) -> dict[str, Any]:
    raise ValueError(message)


def kill_itself() -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}  # never reached


def exit_hard(code: int) -> dict[str, Any]:
    os._exit(code)


def allocate(mb: int) -> dict[str, Any]:
    # Filled, not zeroed: a zeroed bytearray can stay untouched pages that are never resident.
    block = b"\x01" * (mb * 1024 * 1024)
    return {"allocated_mb": len(block) // (1024 * 1024)}


def log_info(text: str) -> dict[str, Any]:
    log.info(text)
    return {}


def not_a_dict() -> list[int]:
    return [1, 2]
