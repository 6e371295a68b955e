"""Gate and promote: each trained candidate joins the site default rollout, the gates run, and
the best candidate that passes becomes production (recorded with actor "flywheel" and why).

    outcome = gate_and_promote(session, ["base-dpo-1a2b"], {"ifeval": 0.41}, margin=0.01)
    outcome["promoted"], outcome["production"], outcome["reports"]["base-dpo-1a2b"]["passed"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy.orm import Session

from tandem.rollout.gates import GATED_SUITES, GateConfig
from tandem.rollout.promotion import GatesFailed, promote
from tandem.store.errors import Conflict
from tandem.store.rollouts import RolloutRepo

ACTOR = "flywheel"


def gate_and_promote(
    session: Session,
    candidates: Sequence[str],
    ifeval: Mapping[str, float | None],
    margin: float,
    margins: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Candidates are tried best IFEval first; the first whose gates pass is promoted.
    `margin` applies to every gated suite, `margins` overrides it per suite (the flywheel's
    XSTest margin is 0: safe-prompt refusal may not rise at all). A refused promotion is
    recorded in the rollout's history as a gate check (by `promote`)."""
    repo = RolloutRepo(session)
    rollout = repo.get_for_profile(None)
    production_before = rollout.production_version
    config = GateConfig(margins={**dict.fromkeys(GATED_SUITES, margin), **(margins or {})})
    if not candidates:
        reason = "no candidate was trained this turn"
        return _outcome(production_before, None, reason, {}, config)
    if production_before in candidates:  # a resumed turn that had already promoted it
        reason = "already promoted by an earlier run of this turn"
        return _outcome(production_before, production_before, reason, {}, config)
    for version in candidates:
        with contextlib.suppress(Conflict):  # already a candidate: a resumed turn
            repo.add_candidate(rollout.id, version, 0.0, False, None, "trained by the flywheel")
    reports: dict[str, Any] = {}
    promoted: str | None = None
    reason = ""
    ranked = sorted(candidates, key=lambda v: -(ifeval.get(v) or 0.0))
    for version in ranked:
        figure = ifeval.get(version)
        base = ifeval.get(production_before)
        why = (
            f"flywheel turn: gates passed; IFEval {_points(figure)} vs {_points(base)} "
            f"for {production_before}"
        )
        try:
            report, rollout = promote(
                session, rollout, version, None, why, config=config, actor_name=ACTOR
            )
        except GatesFailed as exc:
            reports[version] = exc.report.to_dict()
            session.expire_all()
            rollout = repo.get_for_profile(None)
            continue
        reports[version] = report.to_dict()
        promoted, reason = version, why
        break
    if promoted is None:
        failed = {
            v: [f"{c['name']}: {c['why']}" for c in r["checks"] if not c["passed"]]
            for v, r in reports.items()
        }
        reason = "no candidate passed the gates; production unchanged: " + "; ".join(
            f"{v} ({', '.join(f)})" for v, f in failed.items()
        )
    return _outcome(production_before, promoted, reason, reports, config)


def _outcome(
    before: str, promoted: str | None, reason: str, reports: dict[str, Any], config: GateConfig
) -> dict[str, Any]:
    return {
        "production_before": before,
        "production": promoted or before,
        "promoted": promoted is not None,
        "promoted_version": promoted,
        "reason": reason,
        "actor": ACTOR,
        "margins": dict(config.margins),
        "reports": reports,
    }


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


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
