"""Promotion and rollback: the only ways production moves after it is first set.

    report, rollout = promote(session, rollout, "my-dpo-v1", actor_id, "wins IFEval +4")
    rollout = rollback(session, rollout, actor_id, "users report loops")

`promote` runs the gates and refuses (`GatesFailed`, carrying the report) unless they pass;
`force=True` (the CLI's `--force`, never the API) promotes anyway, and the history records it as
forced, with the failing report and the reason. Both record who, when and why, commit before
returning, and take effect on the next chat turn: the chat service reads the rollout per turn.
"""

from __future__ import annotations

import contextlib

from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.registry.versions import set_status
from tandem.rollout.gates import GateConfig, GateReport, check_gates
from tandem.store.rollouts import RolloutRepo, RolloutRow


class GatesFailed(Conflict):
    """Promotion refused: the report says which checks failed and why."""

    def __init__(self, report: GateReport) -> None:
        failed = [c for c in report.checks if not c.passed]
        super().__init__("gates failed: " + "; ".join(f"{c.name}: {c.why}" for c in failed))
        self.report = report


def _require_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required")
    return reason


def _sync_registry(session: Session, new: str, old: str | None) -> None:
    """Registry statuses follow production. Versions outside the registry (an external
    engine's models) have no row to update. The old version is retired only when no other
    rollout still serves it as production."""
    with contextlib.suppress(NotFound):
        set_status(session, new, "production")
    if old is None or old == new:
        return
    still_serving = any(r.production_version == old for r in RolloutRepo(session).list())
    if not still_serving:
        with contextlib.suppress(NotFound):
            set_status(session, old, "retired")


def promote(
    session: Session,
    rollout: RolloutRow,
    candidate: str,
    actor_id: str | None,
    reason: str,
    force: bool = False,
    config: GateConfig | None = None,
    actor_name: str | None = None,
) -> tuple[GateReport, RolloutRow]:
    """Make `candidate` (one of the rollout's candidates) production if the gates pass."""
    reason = _require_reason(reason)
    repo = RolloutRepo(session)
    repo.candidate(rollout.id, candidate)  # NotFound unless it is a candidate here
    report = check_gates(session, rollout, candidate, config)
    if not report.passed and not force:
        repo.record_gate_check(rollout.id, candidate, report.to_dict(), actor_id)
        raise GatesFailed(report)
    old = rollout.production_version
    details: dict[str, object] = {"forced": not report.passed}
    if actor_name:
        details["actor"] = actor_name
    rollout = repo.set_production(
        rollout.profile_id,
        candidate,
        actor_id,
        reason,
        kind="promote",
        gates=report.to_dict(),
        details=details,
    )
    _sync_registry(session, candidate, old)
    return report, rollout


def rollback(
    session: Session,
    rollout: RolloutRow,
    actor_id: str | None,
    reason: str,
    actor_name: str | None = None,
) -> RolloutRow:
    """Production goes back to the version it replaced (history says which)."""
    reason = _require_reason(reason)
    repo = RolloutRepo(session)
    previous = repo.previous_production(rollout.id)
    if previous is None:
        raise Conflict("nothing to roll back to: production has never been replaced")
    old = rollout.production_version
    rollout = repo.set_production(
        rollout.profile_id,
        previous,
        actor_id,
        reason,
        kind="rollback",
        details={"actor": actor_name} if actor_name else {},
    )
    _sync_registry(session, previous, old)
    return rollout
