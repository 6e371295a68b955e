"""Traffic routing: which version of a rollout answers a given user.

    rollout = applicable_rollout(session, profile_id, profile_model)   # or None
    version = assigned_version(rollout.id, user_id, rollout.production_version, candidates)

Assignment is sticky: a user's point in [0, 1) is a hash of their id and the rollout's id, and
candidates take consecutive slices of [0, 1) by their traffic shares (in the order they were
added); the rest is production. So one user sees one version for as long as the shares stand,
and different rollouts split users independently of each other. No state is stored: the
generation record of each answer names the version that wrote it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from tandem.store.rollouts import Candidate, RolloutRepo, RolloutRow


def assignment_point(rollout_id: str, user_id: str) -> float:
    """A user's fixed point in [0, 1) for one rollout (sha256: uniform and stable across
    processes and Python versions, unlike `hash()`)."""
    digest = hashlib.sha256(f"{rollout_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assigned_version(
    rollout_id: str,
    user_id: str,
    production: str,
    candidates: Sequence[Candidate],
    available: Callable[[str], bool] = lambda _: True,
) -> str:
    """The version `user_id` is served: the candidate whose slice holds their point, else
    production. A candidate that is not `available` (not servable here) falls back to
    production rather than breaking the chat."""
    point, edge = assignment_point(rollout_id, user_id), 0.0
    for candidate in candidates:
        edge += candidate.traffic_share
        if point < edge:
            return candidate.version if available(candidate.version) else production
    return production


def applicable_rollout(
    session: Session, profile_id: str | None, profile_model: str | None = None
) -> RolloutRow | None:
    """The rollout deciding a chat's version: its profile's, else (for a chat without a
    profile, or whose profile names no model of its own) the site default's."""
    repo = RolloutRepo(session)
    if profile_id is not None:
        rollout = repo.for_profile(profile_id)
        if rollout is not None:
            return rollout
        if profile_model:
            return None  # the profile pins its model; the site rollout does not override it
    return repo.for_profile(None)


def served_version(
    session: Session,
    user_id: str,
    profile_id: str | None,
    profile_model: str | None = None,
    available: Callable[[str], bool] = lambda _: True,
) -> str | None:
    """The version a rollout gives this user, or None when no rollout applies (or its
    production is not servable here), leaving the caller's own default in place."""
    rollout = applicable_rollout(session, profile_id, profile_model)
    if rollout is None or not available(rollout.production_version):
        return None
    candidates = RolloutRepo(session).candidates(rollout.id)
    return assigned_version(rollout.id, user_id, rollout.production_version, candidates, available)
