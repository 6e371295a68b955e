"""Rollout changes and the LoRA adapters vLLM serves for them (`tandem.engines.lora`).

    row = change_serving(adapters, session, [version], lambda: repo.add_candidate(...))

The versions a change makes served are loaded into their vLLM servers before the change: a
refusal or an unreachable server is a 409 (`Conflict`) and the rollout stays as it was. After
the change is committed, the adapters no rollout serves anymore are unloaded (a failure there is
logged: the rollout has already moved, and the adapter only holds a slot until the next
change). Versions that are not adapters of a `"lora": true` backend's base pass through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from tandem.core.errors import Conflict, InvalidInput
from tandem.engines.lora import LoraAdapters
from tandem.store.rollouts import RolloutRepo

log = logging.getLogger(__name__)

T = TypeVar("T")


def change_serving(
    adapters: LoraAdapters, session: Session, becoming: Iterable[str], change: Callable[[], T]
) -> T:
    """Load the adapters among `becoming`, run `change` (which commits), then unload what no
    rollout serves. When `change` fails, what this call loaded is unloaded again."""
    adapters.load(becoming)
    try:
        result = change()
    except BaseException:
        session.rollback()  # nothing of a failed change stays pending
        adapters.release(RolloutRepo(session).served_versions())
        raise
    adapters.release(RolloutRepo(session).served_versions())
    return result


def load_served_adapters(adapters: LoraAdapters, sessions: sessionmaker[Session]) -> None:
    """At start: every adapter a rollout serves goes (back) into its server, which may have
    restarted since. One that fails is logged (chats routed to it fail until it is loaded by
    the next start or rollout change), and the server starts anyway."""
    if not adapters.backends:
        return
    with sessions() as session:
        served = RolloutRepo(session).served_versions()
    for version in sorted(served):
        try:
            adapters.load([version])
        except (Conflict, InvalidInput) as exc:
            log.warning("adapter %s is not loaded: %s", version, exc)
