"""Simulated users' implicit signals (`SimulationConfig.implicit`, tandem.simulate.implicit)
against a live server: every copy, stop, edit-and-resend and correction they make is recorded by
the server on the answer they judged, which they also rated; the odds follow the grader, so a
copied answer is mostly a thumbs-up one and a corrected one a thumbs-down one.

    .venv/bin/python -m pytest -q tests/test_simulate_implicit.py
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import select

from fake_engine import FakeEngine
from tandem.core.messages import Message
from tandem.engines import ModelCatalog
from tandem.evals import get_task
from tandem.simulate import SimulationConfig, run_simulation
from tandem.simulate.implicit import EDIT_SUFFIX
from tandem.store import make_engine, make_session_factory
from tandem.store.implicit import ImplicitSignal
from tandem.store.models import Feedback

TASK = get_task("instructions", split="train")
BY_PROMPT = {e.messages[-1].content: e for e in TASK.examples()}
MORE = " and it goes on for a few more words so a reader can stop it early."
CANDIDATES = (
    "here is an answer in plain lowercase words" + MORE,
    ("HERE IS AN ANSWER IN CAPITALS" + MORE).upper(),
    "Here is an answer" + MORE,
)


class MixedEngine(FakeEngine):
    """The grader's favourite answer for the prompt on half of the requests (by seed), its
    least favourite on the others; a word every few milliseconds."""

    def _answer(self, messages: Sequence[Message]) -> str:
        prompt = next(m.content for m in reversed(messages) if m.role == "user")
        example = BY_PROMPT.get(prompt.removesuffix(EDIT_SUFFIX))
        ranked = list(CANDIDATES)
        if example is not None:
            ranked.sort(key=lambda c: -TASK.reward(example, c))
        return ranked[0] if random.Random(self.calls[-1][1].seed).random() < 0.5 else ranked[-1]


@pytest.fixture
def server(settings, live_server):
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="mixed")
    catalog.add(MixedEngine("mixed", delay_s=0.003))
    quiet = dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None)
    base = live_server(create_app(quiet, catalog))
    httpx.post(f"{base}/api/auth/signup", json={"email": "root@x.io", "password": "a b c d e"})
    return base


def test_implicit_actions_are_recorded_on_the_answers_users_rated(server, settings):
    config = SimulationConfig(
        base_url=server,
        users=8,
        turns=6,
        noise=0.0,
        opted_out=0.0,
        regenerate_rate=0.0,
        pass_threshold=0.5,
        implicit=True,
        concurrency=8,
        seed=3,
    )
    summary = run_simulation(config).to_dict()
    assert summary["errors"] == {} and summary["turns"] == 48
    acted = summary["implicit"]
    assert acted["copy"] > 0 and acted["stop"] > 0 and acted["corrective_followup_sent"] > 0

    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        signals = session.execute(select(ImplicitSignal.kind, ImplicitSignal.generation_id)).all()
        ratings = dict(session.execute(select(Feedback.generation_id, Feedback.rating)).all())
    engine.dispose()
    recorded = Counter(kind for kind, _ in signals)
    # Each action the users took is one signal on the server; the classifier flagged every
    # correction the simulator sent and none of its ordinary follow-ups.
    assert recorded["copy"] == acted["copy"]
    assert recorded["stop"] == acted["stop"]
    assert recorded["edit_resend"] == acted.get("edit_resend", 0)
    assert recorded["corrective_followup"] == acted["corrective_followup_sent"]
    # Every signal judges an answer the same user rated (no noise: the grader's verdict).
    assert all(generation in ratings for _, generation in signals)
    by_kind = {k: Counter(ratings[g] for kind, g in signals if kind == k) for k in recorded}
    assert by_kind["copy"]["up"] > by_kind["copy"]["down"]
    assert by_kind["corrective_followup"]["down"] > by_kind["corrective_followup"]["up"]
    assert by_kind["stop"]["down"] > by_kind["stop"]["up"]
