"""The image tool end to end: the chat model writes the prompt, an image backend renders it, the
picture is stored with the answer; and every way that can fail is a clear tool error, never a
failed turn.

The image backend is a small local server speaking the OpenAI images API
(`POST /v1/images/generations`); what it answers is switched per test (`images_server.mode`).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conftest import new_user, sse_events
from fake_engine import FakeEngine
from tandem.core.settings import ImageBackendConfig, Settings
from tandem.tools.image import NOT_CONFIGURED, clean_prompt, write_image_prompt
from test_api_product_uploads import PNG

API_KEY = "sk-test-image-secret"
REQUEST = "Draw a red square on a white background"


class ImagesServer:
    """The fake backend: records each request, answers as `mode` says."""

    def __init__(self) -> None:
        self.mode = "png"
        self.received: list[dict] = []
        self.auth: list[str | None] = []
        self.base = ""

    def app(self) -> Starlette:
        async def generations(request: Request) -> Response:
            self.received.append(await request.json())
            self.auth.append(request.headers.get("authorization"))
            if self.mode == "png":
                return JSONResponse({"created": 0, "data": [{"b64_json": _b64(PNG)}]})
            if self.mode == "html":
                return JSONResponse({"data": [{"b64_json": _b64(b"<html><script>1</script>")}]})
            if self.mode == "not-base64":
                return JSONResponse({"data": [{"b64_json": "!!! not base64 !!!"}]})
            if self.mode == "empty":
                return JSONResponse({"data": []})
            if self.mode == "500":
                body = {"error": {"message": f"the GPU is on fire (key {API_KEY})"}}
                return JSONResponse(body, status_code=500)
            if self.mode == "trickle":
                # A byte at a time, forever: no single read times out, only the deadline.
                async def drip():
                    for _ in range(100):
                        yield b" "
                        await asyncio.sleep(0.05)

                return StreamingResponse(drip(), media_type="application/json")
            if self.mode == "url":
                return JSONResponse({"data": [{"url": f"{self.base}/files/picture.png"}]})
            raise AssertionError(self.mode)

        async def picture(request: Request) -> Response:
            return Response(PNG, media_type="image/png")

        return Starlette(
            routes=[
                Route("/v1/images/generations", generations, methods=["POST"]),
                Route("/files/picture.png", picture),
            ]
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def images_server(live_server) -> ImagesServer:
    server = ImagesServer()
    server.base = live_server(server.app())
    return server


def _backend(server: ImagesServer, **kw) -> ImageBackendConfig:
    return ImageBackendConfig(
        kind="openai",
        base_url=f"{server.base}/v1",
        api_key=API_KEY,
        model="picture-model",
        size="256x256",
        **{"timeout_s": 10.0, **kw},
    )


@pytest.fixture
def image_client(settings, fake_catalog, images_server):
    """The chat API with the fake images server configured as the image backend."""
    from tandem.web.app import create_app

    configured = dataclasses.replace(settings, image_backend=_backend(images_server))
    with TestClient(create_app(configured, fake_catalog)) as client:
        yield client


def _ask(client: TestClient, headers: dict, stream: bool = False, text: str = REQUEST):
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    return client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": text, "tools": ["image"], "stream": stream},
        headers=headers,
    )


def test_the_model_writes_the_prompt_and_the_image_is_stored_with_the_answer(
    image_client, images_server, fake_catalog
):
    alice = new_user(image_client, "alice@x.io")
    r = _ask(image_client, alice)
    assert r.status_code == 200, r.text
    turn = r.json()

    # The chat model (the echoing fake) wrote the prompt the backend received.
    sent = images_server.received[0]
    assert sent["prompt"] == f"You said: {REQUEST}"
    assert sent | {"prompt": ""} == {
        "model": "picture-model",
        "prompt": "",
        "n": 1,
        "size": "256x256",
        "response_format": "b64_json",
    }
    assert images_server.auth == [f"Bearer {API_KEY}"]
    writer_input = fake_catalog.get("fake-model").calls[0][0]
    assert "image generator" in writer_input[0].content
    assert writer_input[1].content == REQUEST

    # The record has the call, with the prompt; the stored answer has the picture.
    call = turn["generation"]["tool_calls"][0]
    assert call["tool"] == "image" and call["error"] is None
    assert call["arguments"]["prompt"] == sent["prompt"]
    assert call["display"] == {"prompt": sent["prompt"], "size": "256x256"}
    images = [p for p in turn["assistant_message"]["parts"] if p["type"] == "image"]
    assert [p["data"] for p in images] == call["attachments"]
    assert images[0]["data"]["mime"] == "image/png"
    upload_id = images[0]["data"]["upload_id"]

    served = image_client.get(f"/api/uploads/{upload_id}", headers=alice)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    bob = new_user(image_client, "bob@x.io")
    assert image_client.get(f"/api/uploads/{upload_id}", headers=bob).status_code == 404

    # The answering model read what was drawn, so it can describe it.
    answer_input = fake_catalog.get("fake-model").calls[-1][0]
    assert f"An image was generated from the prompt: {sent['prompt']}" in answer_input[0].content
    assert turn["assistant_message"]["content"] == f"You said: {REQUEST}"


def test_a_streamed_turn_shows_the_tool_running_then_the_picture(image_client):
    alice = new_user(image_client, "alice@x.io")
    events = sse_events(_ask(image_client, alice, stream=True).text)
    tools = [e for e in events if isinstance(e, dict) and e["type"] == "tool"]
    assert [(e["tool"], e["status"]) for e in tools] == [("image", "running"), ("image", "done")]
    assert tools[1]["display"]["size"] == "256x256" and tools[1]["attachments"]
    kinds = [e["type"] for e in events if isinstance(e, dict)]
    assert kinds.index("tool") < kinds.index("delta") < kinds.index("done")


def test_without_a_backend_the_switch_is_not_offered_and_a_request_is_refused(client):
    alice = new_user(client, "alice@x.io")
    # The chat offers only tools that can run here: no image backend, no Image switch.
    offered = [t["name"] for t in client.get("/api/tools", headers=alice).json()]
    assert "image" not in offered and "files" in offered
    # A client that asks anyway is told before anything is stored or generated.
    r = _ask(client, alice, stream=True)
    assert r.status_code == 422
    assert r.json()["error"]["message"].endswith(NOT_CONFIGURED)
    conversations = client.get("/api/conversations", headers=alice).json()
    tree = client.get(f"/api/conversations/{conversations[0]['id']}", headers=alice).json()
    assert tree["messages"] == []


def test_with_a_backend_the_image_switch_is_offered(image_client):
    alice = new_user(image_client, "alice@x.io")
    offered = [t["name"] for t in image_client.get("/api/tools", headers=alice).json()]
    assert "image" in offered


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("html", "not a PNG, JPEG or WebP image"),
        ("not-base64", "b64_json is not base64"),
        ("empty", "not an OpenAI images response"),
        ("500", "answered 500: the GPU is on fire (key ***)"),
        ("trickle", "did not answer within 0.5 s"),
        ("url", "127.0.0.1 is a private address"),  # a URL answer goes through safe_fetch
    ],
)
def test_a_failing_backend_is_a_clear_tool_error_and_never_a_failed_turn(
    settings, fake_catalog, images_server, mode, why
):
    from tandem.web.app import create_app

    images_server.mode = mode
    backend = _backend(images_server, timeout_s=0.5)
    app = create_app(dataclasses.replace(settings, image_backend=backend), fake_catalog)
    with TestClient(app) as client:
        alice = new_user(client, "alice@x.io")
        r = _ask(client, alice)
        assert r.status_code == 200, r.text
        turn = r.json()
        call = turn["generation"]["tool_calls"][0]
        assert call["error"].startswith("No image was made: ") and why in call["error"]
        assert API_KEY not in json.dumps(turn)
        assert call["display"]["prompt"]  # what was asked for is kept even when it failed
        assert turn["assistant_message"]["content"] == f"You said: {REQUEST}"
        assert not [p for p in turn["assistant_message"]["parts"] if p["type"] == "image"]
        assert "could not run" in fake_catalog.get("fake-model").calls[-1][0][0].content


def test_an_image_url_on_an_address_the_admin_opened_is_fetched(
    settings, fake_catalog, images_server
):
    from tandem.web.app import create_app

    images_server.mode = "url"
    configured = dataclasses.replace(
        settings,
        image_backend=_backend(images_server),
        fetch_allow_private=("127.0.0.1/32",),
    )
    with TestClient(create_app(configured, fake_catalog)) as client:
        alice = new_user(client, "alice@x.io")
        turn = _ask(client, alice).json()
        upload = turn["generation"]["tool_calls"][0]["attachments"][0]["upload_id"]
        assert client.get(f"/api/uploads/{upload}", headers=alice).content == PNG


def test_the_backend_is_configured_by_env_and_its_key_is_never_shown():
    env = {
        "TANDEM_HOME": "/tmp/unused",
        "TANDEM_IMAGE_BACKEND": json.dumps(
            {"kind": "openai", "base_url": "http://img:8080/v1", "api_key": API_KEY}
        ),
    }
    config = Settings.from_env(env).image_backend
    assert config is not None and (config.kind, config.size) == ("openai", "1024x1024")
    assert config.api_key == API_KEY and API_KEY not in repr(Settings.from_env(env))
    assert Settings.from_env({"TANDEM_HOME": "/tmp/unused"}).image_backend is None
    for bad in (
        f'{{"api_key": "{API_KEY}"',
        '{"kind": "openai"}',
        '{"base_url": "x", "size": 9}',
        '{"base_url": "x", "timeout_s": -1}',
    ):
        with pytest.raises(ValueError) as err:
            Settings.from_env({**env, "TANDEM_IMAGE_BACKEND": bad})
        assert "TANDEM_IMAGE_BACKEND" in str(err.value) and API_KEY not in str(err.value)


@pytest.mark.anyio
async def test_an_empty_or_failing_prompt_writer_falls_back_to_the_users_words():
    assert await write_image_prompt(FakeEngine(script=[""]), "a  cat\non a mat") == "a cat on a mat"
    assert await write_image_prompt(None, "a dog") == "a dog"
    wordy = FakeEngine(script=['Prompt: "A lighthouse at dusk, watercolour"\nHope this helps!'])
    assert await write_image_prompt(wordy, "lighthouse") == "A lighthouse at dusk, watercolour"
    assert clean_prompt("\n\n  image prompt: `a fox`  ") == "a fox"


@pytest.mark.model
def test_the_embedded_model_writes_the_image_prompt(
    settings, onnx_engine, prepared_model, images_server
):
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    configured = dataclasses.replace(settings, image_backend=_backend(images_server))
    with TestClient(create_app(configured, catalog)) as client:
        alice = new_user(client, "alice@x.io")
        conv = client.post("/api/conversations", json={}, headers=alice).json()
        r = client.post(
            f"/api/conversations/{conv['id']}/messages",
            json={
                "content": "Please draw a cat sleeping on a sofa.",
                "tools": ["image"],
                "sampling": {"max_tokens": 24, "temperature": 0},
            },
            headers=alice,
        )
        assert r.status_code == 200, r.text
        turn = r.json()
        call = turn["generation"]["tool_calls"][0]
        prompt = images_server.received[0]["prompt"]
        assert prompt.strip() and call["display"]["prompt"] == prompt and call["error"] is None
        (image,) = [p for p in turn["assistant_message"]["parts"] if p["type"] == "image"]
        served = client.get(f"/api/uploads/{image['data']['upload_id']}", headers=alice)
        assert served.content == PNG
        assert turn["assistant_message"]["content"].strip()
    print(f"embedded model's image prompt: {prompt!r}")
