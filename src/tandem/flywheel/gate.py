"""The flywheel's side of the rollout: offline verdicts, a rollout that lets users meet the
candidate, the online verdict, promotion, and the check that production really serves.

    config = gate_config(GateMargins(), OnlineConfig())
    offline = offline_verdict(session, "base-dpo-1a2b", config)     # {"passed", "checks"}
    enter_rollout(session, "base-dpo-1a2b", OnlineConfig())        # A/B share + comparisons
    online = online_verdict(session, "base-dpo-1a2b", config)      # {"passed", "checks"}
    promoted = promote_candidate(session, "base-dpo-1a2b", config, why)   # every gate again

Every gate is `tandem.rollout.gates`' (the admin's promote button runs the same checks): the
offline checks hold refusal both ways, the behavior spec and sycophancy; the online checks ask
the votes for non-inferiority, and the flywheel requires them (too few votes fails).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, NotFound
from tandem.flywheel.config import GateMargins, OnlineConfig
from tandem.rollout.gates import (
    GATED_SUITES,
    GateConfig,
    GateReport,
    check_gates,
    non_inferiority_checks,
    online_window,
)
from tandem.rollout.promotion import GatesFailed, promote
from tandem.store.rollouts import RolloutRepo

ACTOR = "flywheel"


def gate_config(margins: GateMargins, online: OnlineConfig) -> GateConfig:
    return GateConfig(
        margins={**dict.fromkeys(GATED_SUITES, margins.gate_margin), **margins.by_gate()},
        required=("ifeval", "xstest", "behavior_spec", "sycophancy"),
        online_margin=online.online_margin,
        require_online=True,
        since_joined=True,
        min_votes=online.online_min_votes,
    )


def _verdict(report: GateReport, prefix: str) -> dict[str, Any]:
    checks = [c for c in report.to_dict()["checks"] if c["name"].startswith(prefix)]
    return {
        "production": report.production,
        "passed": all(c["passed"] for c in checks),
        "failed": [f"{c['name']}: {c['why']}" for c in checks if not c["passed"]],
        "checks": checks,
    }


def offline_verdict(session: Session, candidate: str, config: GateConfig) -> dict[str, Any]:
    """The offline half of the gates (the online half cannot pass before users met it)."""
    rollout = RolloutRepo(session).get_for_profile(None)
    return _verdict(check_gates(session, rollout, candidate, config), "offline:")


def enter_rollout(session: Session, candidate: str, online: OnlineConfig) -> None:
    """The candidate answers `traffic_share` of users and meets production in blind
    comparisons at `comparison_rate`."""
    repo = RolloutRepo(session)
    rollout = repo.get_for_profile(None)
    with contextlib.suppress(Conflict):  # already in: a resumed turn
        repo.add_candidate(
            rollout.id, candidate, online.traffic_share, True, None, "flywheel: online stage"
        )
    repo.set_comparison_rate(rollout.id, online.comparison_rate, None, "flywheel: online stage")


def leave_rollout(session: Session, candidate: str, reason: str) -> None:
    """The candidate stops serving (it was not promoted); comparisons go back to the site's."""
    repo = RolloutRepo(session)
    rollout = repo.get_for_profile(None)
    with contextlib.suppress(NotFound):
        repo.remove_candidate(rollout.id, candidate, None, reason)
    repo.set_comparison_rate(rollout.id, None, None, reason)


def online_verdict(session: Session, candidate: str, config: GateConfig) -> dict[str, Any]:
    rollout = RolloutRepo(session).get_for_profile(None)
    since = online_window(session, rollout, candidate, config)
    checks = non_inferiority_checks(session, rollout.production_version, candidate, config, since)
    report = GateReport(
        rollout.production_version, candidate, all(c.passed for c in checks), checks
    )
    return _verdict(report, "online:")


def promote_candidate(
    session: Session, candidate: str, config: GateConfig, why: str
) -> dict[str, Any]:
    """Promote through every gate (offline and online, as the admin's button would); a refusal
    is recorded in the rollout's history by `promote`."""
    repo = RolloutRepo(session)
    rollout = repo.get_for_profile(None)
    before = rollout.production_version
    if before == candidate:  # a resumed turn that had already promoted it
        return {"promoted": True, "production_before": None, "production": candidate, "why": why}
    try:
        report, rollout = promote(
            session, rollout, candidate, None, why, config=config, actor_name=ACTOR
        )
    except GatesFailed as exc:
        failed = [f"{c.name}: {c.why}" for c in exc.report.checks if not c.passed]
        return {
            "promoted": False,
            "production_before": before,
            "production": before,
            "why": "gates failed: " + "; ".join(failed),
            "report": exc.report.to_dict(),
        }
    repo.set_comparison_rate(rollout.id, None, None, "flywheel: promoted")
    return {
        "promoted": True,
        "production_before": before,
        "production": candidate,
        "why": why,
        "report": report.to_dict(),
    }


def verify_serving(base_url: str, admin_key: str, max_tokens: int = 16) -> dict[str, Any]:
    """One chat through the public API (a new conversation, no model pinned): the version the
    server answered with, which the rollout's production should be."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as client:
        conv = client.post("/api/conversations", json={"title": "flywheel check"})
        conv.raise_for_status()
        body = {
            "content": "Say hello in one short sentence.",
            "sampling": {"max_tokens": max_tokens},
        }
        answer = client.post(f"/api/conversations/{conv.json()['id']}/messages", json=body)
        answer.raise_for_status()
        payload = answer.json()
    generation = payload.get("generation") or {}
    return {
        "conversation_id": conv.json()["id"],
        "model_version": generation.get("model_version"),
        "answer": (payload.get("assistant_message") or {}).get("content", "")[:200],
    }
