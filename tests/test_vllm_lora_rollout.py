"""Candidates as LoRA adapters on vLLM: a rollout that starts serving an adapter version loads it
into the vLLM server, chats routed to it reach the server as `"model": <version>`, and an adapter
no rollout serves anymore is unloaded.

The server here is a loopback stand-in for vLLM's documented contract (docs.vllm.ai, "LoRA
Adapters" → "Dynamically serving LoRA Adapters"): `POST /v1/load_lora_adapter` with
`{"lora_name", "lora_path"}`, `POST /v1/unload_lora_adapter` with `{"lora_name"}`, loaded
adapters listed by `GET /v1/models` with `parent` set to the base, and chat completions for the
base or any loaded adapter by name (an unknown model is vLLM's 404). It answers
"[adapter NAME] ..." so the test sees which adapter answered.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.core.errors import InvalidInput
from tandem.core.settings import BackendConfig, Settings
from tandem.engines.lora import LoraAdapters, host_path
from tandem.registry.versions import register_adapter
from tandem.store import EvalRepo, ModelVersionRepo, RolloutRepo

BASE_REMOTE = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what `vllm serve` was given
BASE_VERSION = "base-v1"  # the registry version that is
PRODUCTION = BASE_VERSION  # served by the vLLM backend, like its adapters
MOUNT = "/mnt/tandem"  # where the vLLM host sees $TANDEM_HOME


@dataclasses.dataclass
class FakeVLLM:
    loaded: dict[str, str] = dataclasses.field(default_factory=dict)  # lora_name -> lora_path
    calls: list[tuple[str, dict]] = dataclasses.field(default_factory=list)
    chats: list[dict] = dataclasses.field(default_factory=list)
    refuse_loads: bool = False

    def app(self) -> FastAPI:
        app = FastAPI()

        def error(status: int, message: str) -> JSONResponse:
            # vLLM's ErrorResponse as older versions send it.
            body = {"object": "error", "message": message, "type": "BadRequestError"}
            return JSONResponse(body | {"code": status}, status_code=status)

        @app.post("/v1/load_lora_adapter")
        async def load(request: Request) -> Any:
            body = await request.json()
            self.calls.append(("load", body))
            name, path = body.get("lora_name"), body.get("lora_path")
            if not name or not path:
                return error(400, "Both 'lora_name' and 'lora_path' must be provided.")
            if self.refuse_loads:  # newer vLLM nests its ErrorResponse under "error"
                nested = {"message": f"No adapter found for {path}", "type": "NotFoundError"}
                return JSONResponse({"error": nested | {"code": 404}}, status_code=404)
            if name in self.loaded:
                return error(400, f"The lora adapter '{name}' has already been loaded.")
            self.loaded[name] = path
            return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

        @app.post("/v1/unload_lora_adapter")
        async def unload(request: Request) -> Any:
            body = await request.json()
            self.calls.append(("unload", body))
            name = body.get("lora_name")
            if name not in self.loaded:
                return error(404, f"The lora adapter '{name}' cannot be found.")
            del self.loaded[name]
            return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

        @app.get("/v1/models")
        async def models() -> dict:
            base = {"id": BASE_REMOTE, "object": "model", "root": BASE_REMOTE, "parent": None}
            adapters = [
                {"id": name, "object": "model", "root": path, "parent": BASE_REMOTE}
                for name, path in self.loaded.items()
            ]
            return {"object": "list", "data": [base, *adapters]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.chats.append(body)
            model = body.get("model")
            if model != BASE_REMOTE and model not in self.loaded:
                return error(404, f"The model `{model}` does not exist.")
            text = f"[adapter {model}] hello" if model in self.loaded else "[base] hello"
            if not body.get("stream"):
                return {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                }

            async def events():
                for piece in (text[:9], text[9:]):
                    chunk = {"model": model, "choices": [{"index": 0, "delta": {"content": piece}}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                yield f"data: {json.dumps(done)}\n\n"
                usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
                yield f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return app


def _register_base(session, home: Path) -> None:
    """The base version: registry files (weights not needed here: vLLM serves it) and row."""
    root = home / "models" / BASE_VERSION
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"kind": "chat", "formats": {}}))
    ModelVersionRepo(session).upsert(BASE_VERSION, formats={}, status="production")
    session.commit()


def _register(session, home: Path, version: str) -> Path:
    """A fake trained adapter of the base: adapter_config.json + (empty) weights."""
    staging = home / "incoming" / version
    staging.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": 8, "base_model_name_or_path": BASE_REMOTE}
    (staging / "adapter_config.json").write_text(json.dumps(config))
    (staging / "adapter_model.safetensors").write_bytes(b"")
    register_adapter(session, home, version, staging, parent=BASE_VERSION)
    return home / "models" / version / "adapter"


@pytest.fixture
def vllm(live_server) -> tuple[FakeVLLM, str]:
    server = FakeVLLM()
    return server, live_server(server.app())


def _app(settings, base_url: str):
    from tandem.web.app import create_app

    backend = BackendConfig(
        name="vllm",
        base_url=f"{base_url}/v1",
        lora=True,
        base_model=BASE_VERSION,
        adapter_root=MOUNT,
    )
    settings = dataclasses.replace(
        settings,
        backends=(backend,),
        default_model=PRODUCTION,
        rate_generation=None,
        rate_generation_per_key=None,
    )
    return create_app(settings)  # the catalog from settings, as `tandem serve` builds it


def _chat(client: TestClient, headers: dict) -> dict:
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def _seed_gates(sessions) -> None:
    with sessions() as session:
        repo = EvalRepo(session)
        for version in (PRODUCTION, "lora-v1"):
            for suite, figure in (("ifeval", "average_strict"), ("xstest", "safe_refusal_rate")):
                run = repo.start_run(suite, version, "fake", {})
                repo.finish_run(run.id, [], {figure: 0.5}, 1.0)


def test_an_adapter_candidate_is_loaded_served_promoted_and_unloaded(settings, vllm):
    server, base_url = vllm
    app = _app(settings, base_url)
    with TestClient(app) as client:
        sessions = app.state.session_factory
        with sessions() as session:
            _register_base(session, settings.home)
            adapter_dir = _register(session, settings.home, "lora-v1")
        admin = new_user(client, "admin@x.io")
        user = new_user(client, "user@x.io")
        models = {m["id"]: m for m in client.get("/v1/models", headers=user).json()["data"]}
        # The base and its adapter are served by the backend under their registry ids (the
        # adapter is servable before it is loaded); the server's own names stay listed too.
        assert {BASE_VERSION, "lora-v1", f"vllm/{BASE_REMOTE}"} <= set(models)
        assert models["lora-v1"]["owned_by"] == models[BASE_VERSION]["owned_by"] == "vllm"
        assert server.calls == []  # registering loads nothing

        rid = client.post(
            "/api/admin/rollouts", json={"version": PRODUCTION, "reason": "base"}, headers=admin
        ).json()["id"]
        assert server.calls == []  # the base is not an adapter
        assert _chat(client, user)["assistant_message"]["content"] == "[base] hello"
        assert server.chats[-1]["model"] == BASE_REMOTE

        # Added as a candidate: loaded under its version id, from the path the host sees.
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v1", "traffic_share": 1.0, "reason": "A/B"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        mapped = f"{MOUNT}/models/lora-v1/adapter"
        assert adapter_dir.is_dir()
        assert server.calls == [("load", {"lora_name": "lora-v1", "lora_path": mapped})]
        assert server.loaded == {"lora-v1": mapped}

        turn = _chat(client, user)  # every user is in the candidate's slice
        assert turn["assistant_message"]["content"] == "[adapter lora-v1] hello"
        assert turn["generation"]["model_version"] == "lora-v1"
        assert server.chats[-1]["model"] == "lora-v1" and server.chats[-1]["stream"] is True

        # The OpenAI-compatible API, not streamed, naming the version.
        r = client.post(
            "/v1/chat/completions",
            json={"model": "lora-v1", "messages": [{"role": "user", "content": "hi"}]},
            headers=user,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "[adapter lora-v1] hello"
        assert server.chats[-1]["model"] == "lora-v1"

        # Promoted: still loaded (nothing unloaded, nothing loaded twice), still answering.
        _seed_gates(sessions)
        r = client.post(
            f"/api/admin/rollouts/{rid}/promote",
            json={"version": "lora-v1", "reason": "IFEval flat"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["rollout"]["production_version"] == "lora-v1"
        assert [c[0] for c in server.calls] == ["load"]
        assert _chat(client, user)["assistant_message"]["content"] == "[adapter lora-v1] hello"

        # Rolled back: no rollout serves the adapter, so it is unloaded.
        r = client.post(f"/api/admin/rollouts/{rid}/rollback", json={"reason": "x"}, headers=admin)
        assert r.status_code == 200 and r.json()["production_version"] == PRODUCTION
        assert server.calls[-1] == ("unload", {"lora_name": "lora-v1"})
        assert server.loaded == {}
        assert _chat(client, user)["assistant_message"]["content"] == "[base] hello"

        # Added again, then removed: loaded, then unloaded.
        client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v1", "traffic_share": 0.5},
            headers=admin,
        )
        assert server.loaded == {"lora-v1": mapped}
        r = client.post(
            f"/api/admin/rollouts/{rid}/candidates/remove",
            json={"version": "lora-v1"},
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["candidates"] == []
        assert server.calls[-1] == ("unload", {"lora_name": "lora-v1"}) and server.loaded == {}


def test_a_refused_or_failed_load_changes_nothing(settings, vllm, live_server):
    server, base_url = vllm
    app = _app(settings, base_url)
    with TestClient(app) as client:
        with app.state.session_factory() as session:
            _register_base(session, settings.home)
            _register(session, settings.home, "lora-v1")
            _register(session, settings.home, "lora-v2")
        admin = new_user(client, "admin@x.io")
        rid = client.post(
            "/api/admin/rollouts", json={"version": PRODUCTION}, headers=admin
        ).json()["id"]

        def candidates() -> list[str]:
            with app.state.session_factory() as session:
                return [c.version for c in RolloutRepo(session).candidates(rid)]

        def history() -> list[str]:
            detail = client.get(f"/api/admin/rollouts/{rid}", headers=admin).json()
            return [e["kind"] for e in detail["events"]]

        before = history()
        server.refuse_loads = True
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v1", "traffic_share": 0.5},
            headers=admin,
        )
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert (
            "vllm" in message and "load_lora_adapter" in message and "No adapter found" in message
        )
        assert candidates() == [] and history() == before

        # vLLM loads it, but the rollout refuses the change (shares over 1): unloaded again.
        server.refuse_loads = False
        client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v1", "traffic_share": 0.8},
            headers=admin,
        )
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v2", "traffic_share": 0.5},
            headers=admin,
        )
        assert r.status_code in (400, 422) and "traffic shares" in r.text
        assert candidates() == ["lora-v1"] and set(server.loaded) == {"lora-v1"}
        assert ("unload", {"lora_name": "lora-v2"}) in server.calls

        # The server gone: a clear 409, nothing changed.
        gone = live_server(FastAPI())  # answers 404 to everything, like a server without LoRA
        backend = app.state.lora_adapters.backends[0]
        app.state.lora_adapters.backends = [dataclasses.replace(backend, base_url=f"{gone}/v1")]
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v2", "traffic_share": 0.1},
            headers=admin,
        )
        assert r.status_code == 409 and "vllm" in r.json()["error"]["message"]
        app.state.lora_adapters.backends = [
            dataclasses.replace(backend, base_url="http://127.0.0.1:9/v1")
        ]
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "lora-v2", "traffic_share": 0.1},
            headers=admin,
        )
        assert r.status_code == 409 and "unreachable" in r.json()["error"]["message"]
        assert candidates() == ["lora-v1"]


def test_an_adapter_without_a_lora_backend_is_refused_clearly(settings, tandem_home):
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        _register_base(session, tandem_home)
        _register(session, tandem_home, "lora-v1")
    engine.dispose()
    adapters = LoraAdapters((), tandem_home)
    with pytest.raises(InvalidInput, match='"lora": true'):
        adapters.load(["lora-v1"])
    assert adapters.load(["not-an-adapter"]) == []  # others pass through


def test_backend_options_and_the_host_path(tmp_path):
    env = {
        "TANDEM_HOME": str(tmp_path),
        "TANDEM_BACKENDS": json.dumps(
            [
                {
                    "name": "vllm",
                    "base_url": "http://gpu:8001/v1",
                    "lora": True,
                    "base_model": "base-v1",
                    "adapter_root": "/mnt/tandem",
                }
            ]
        ),
    }
    (backend,) = Settings.from_env(env).backends
    assert backend.lora and backend.base_model == "base-v1" and backend.adapter_root == MOUNT
    path = tmp_path / "models" / "v1" / "adapter"
    assert host_path(backend, tmp_path, path) == "/mnt/tandem/models/v1/adapter"
    same = dataclasses.replace(backend, adapter_root=None)
    assert host_path(same, tmp_path, path) == str(path)
    bad = json.dumps([{"name": "v", "base_url": "http://gpu/v1", "lora": True}])
    with pytest.raises(ValueError, match="base_model"):
        Settings.from_env({"TANDEM_HOME": str(tmp_path), "TANDEM_BACKENDS": bad})


def test_a_restart_loads_the_adapters_the_rollouts_serve(settings, vllm):
    server, base_url = vllm
    app = _app(settings, base_url)
    with TestClient(app), app.state.session_factory() as session:
        _register_base(session, settings.home)
        _register(session, settings.home, "lora-v1")
        repo = RolloutRepo(session)
        rollout = repo.set_production(None, BASE_VERSION, None, "base")
        repo.add_candidate(rollout.id, "lora-v1", 0.2, False, None)  # not through tandem
    assert server.loaded == {}  # e.g. vLLM restarted since
    with TestClient(_app(settings, base_url)):
        assert server.loaded == {"lora-v1": f"{MOUNT}/models/lora-v1/adapter"}
    with TestClient(_app(settings, base_url)):  # already loaded: not loaded twice
        assert [c[0] for c in server.calls] == ["load"]
