"""Class 8, load: simulated users chatting with the embedded model and rating, over HTTP.

A 30-second run of bench/load.py (the 5-minute, 50-user run writes docs/benchmarks/load.json)
against a real `tandem serve` with the ONNX model: users sign up, open chats, send messages
(streamed and not), rate answers, list and open chats, read settings. No request may fail,
and once everyone has signed up, the p95 latency of the routes that do not generate must stay
within 50 ms while the model is answering other users.

    .venv/bin/python -m pytest -q -m security_slow tests/security/test_load.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is a top-level package beside `tests`
    sys.path.insert(0, str(ROOT))

from bench.load import run  # noqa: E402

pytestmark = [pytest.mark.security_slow, pytest.mark.model]


def test_thirty_seconds_of_users_without_errors_and_fast_non_generation_routes(
    model_home: Path,
) -> None:
    report = run(
        users=20,
        seconds=30,
        think_s=2.0,
        ramp_s=5.0,
        max_tokens=32,
        models_from=model_home / "models",
    )
    assert report["errors"] == 0, report["routes"]
    routes = report["routes"]
    for route in (
        "POST /api/auth/signup",
        "POST /api/conversations",
        "POST /api/conversations/{id}/messages",
        "POST /api/messages/{id}/feedback",
        "GET /api/conversations",
    ):
        assert routes.get(route, {}).get("count", 0) > 0, (route, sorted(routes))
    steady = report["groups_steady_state"]
    assert steady["generation"]["count"] > 0
    assert steady["other"]["p95_ms"] <= 50.0, steady
