"""Simulated users in a behavior experiment: per-user answer-length tastes vote in the
comparisons a running experiment draws, through the public API, and the result finds the split
the simulator put there (and no split when everyone shares one taste).

    .venv/bin/python -m pytest -q tests/test_simulate_experiments.py
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bench.behavior_experiment import CONCISE, DETAILED, LengthSteeredEngine

from tandem.engines import ModelCatalog
from tandem.simulate import SimulationConfig, run_simulation
from tandem.simulate.judgement import taste_verdict


def test_tastes_pick_by_length() -> None:
    short, long = "one two three", "one two three four five six seven eight"
    assert taste_verdict("concise", short, long) == "a"
    assert taste_verdict("concise", long, short) == "b"
    assert taste_verdict("detailed", short, long) == "b"
    assert taste_verdict("detailed", "a b c d e f g h i j", "a b c d e f g h i j k") == "tie"
    with pytest.raises(ValueError):
        taste_verdict("chatty", short, long)
    with pytest.raises(ValueError):
        SimulationConfig(tastes=("chatty",))
    with pytest.raises(ValueError):
        SimulationConfig(tastes=("concise", "detailed"), taste_profiles=("p",))


@pytest.fixture
def server(settings, live_server):  # type: ignore[no-untyped-def]
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="steered")
    catalog.add(LengthSteeredEngine("steered"))
    quiet = dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None)
    return live_server(create_app(quiet, catalog))


@pytest.fixture
def admin(server: str):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server, timeout=30) as http:
        http.post("/api/auth/signup", json={"email": "root@example.com", "password": "a b c d e"})
        csrf = {"X-CSRF-Token": http.cookies["tandem_csrf"]}
        key = http.post("/api/keys", json={"name": "admin"}, headers=csrf).json()["key"]
        http.cookies.clear()
        http.headers["Authorization"] = f"Bearer {key}"
        yield http


def _experiment(admin: httpx.Client) -> str:
    variants = [
        {"name": "concise", "kind": "system_prompt", "prompt_addition": CONCISE},
        {"name": "detailed", "kind": "system_prompt", "prompt_addition": DETAILED},
    ]
    body = {"name": "Length", "comparison_rate": 1.0, "variants": variants}
    exp = admin.post("/api/admin/experiments", json=body).json()
    assert admin.post(f"/api/admin/experiments/{exp['id']}/start").status_code == 200
    return exp["id"]


def _simulate(server: str, tmp_path: Path, **options: object) -> list[dict]:
    defaults: dict[str, object] = {"users": 12, "turns": 10, "noise": 0.0, "opted_out": 0.0}
    config = SimulationConfig(base_url=server, **{**defaults, **options})  # type: ignore[arg-type]
    path = tmp_path / "events.jsonl"
    # In a thread of its own: a browser test earlier in the session leaves Playwright's event
    # loop on this one, and the simulation runs its own (asyncio.run).
    with ThreadPoolExecutor(1) as pool:
        summary = pool.submit(run_simulation, config, path).result().to_dict()
    assert summary["errors"] == {} and summary["comparisons"] == summary["turns"]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_simulated_tastes_split_and_the_result_finds_it(server, admin, tmp_path) -> None:
    exp = _experiment(admin)
    profiles = [
        admin.post("/api/profiles", json={"name": name, "shared": True}).json()["id"]
        for name in ("Quick answers", "Deep dives")
    ]
    events = _simulate(
        server, tmp_path, tastes=("concise", "detailed"), taste_profiles=tuple(profiles)
    )
    votes = [e for e in events if e["kind"] == "vote"]
    assert len(votes) == 120
    chosen: dict[str, set[str]] = defaultdict(set)
    for e in votes:
        assert sorted(e["variants"]) == ["concise", "detailed"]  # shown after the vote
        winner = e["variants"][0] if e["verdict"] == "a" else e["variants"][1]
        chosen[e["taste"]].add(winner)
    # Every user voted their taste, whichever side the variant was on.
    assert chosen == {"concise": {"concise"}, "detailed": {"detailed"}}

    result = admin.get(f"/api/admin/experiments/{exp}/result").json()
    assert result["votes"] == 120
    assert result["users"]["tested"] == 12 and result["users"]["opposite"] == 6
    assert result["users"]["split"]
    segments = {r["name"]: r for r in result["segments"]["rows"]}
    assert set(segments) == {"Quick answers", "Deep dives"}
    assert result["segments"]["split"] and result["segments"]["p_value"] < 0.001
    assert result["recommendation"]["action"] == "personalize"


def test_one_shared_taste_is_a_default_not_a_split(server, admin, tmp_path) -> None:
    exp = _experiment(admin)
    _simulate(server, tmp_path, tastes=("concise",), noise=0.2, seed=3)
    result = admin.get(f"/api/admin/experiments/{exp}/result").json()
    assert not result["users"]["split"] and not result["segments"]["split"]
    assert result["recommendation"]["action"] == "make_default"
    assert result["recommendation"]["variant"] == "concise"
