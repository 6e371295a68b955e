"""Images reach a model that can see them: an OpenAI-compatible backend marked
`accepts_images` receives the user's upload as an `image_url` data URL.

The backend here is a small recording server speaking the chat-completions stream format: the
point of this test is what tandem sends, which a real vision server would not show us.
"""

import base64
import json

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from conftest import new_user
from tandem.core.settings import BackendConfig
from tandem.engines import ModelCatalog
from tandem.engines.openai_compat import OpenAICompatEngine
from test_api_product_uploads import PNG


def recording_server(received: list[dict]) -> Starlette:
    async def completions(request: Request) -> StreamingResponse:
        received.append(await request.json())

        async def events():
            chunk = {"choices": [{"index": 0, "delta": {"content": "A red pixel."}}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def test_an_image_is_sent_to_a_vision_backend_as_a_data_url(settings, live_server):
    from tandem.web.app import create_app

    received: list[dict] = []
    base = live_server(recording_server(received))
    vision = BackendConfig(name="vlm", base_url=f"{base}/v1", models=("eye",), accepts_images=True)
    catalog = ModelCatalog(default_model="vlm/eye")
    catalog.add(OpenAICompatEngine(vision, "eye"))
    with TestClient(create_app(settings, catalog)) as client:
        alice = new_user(client, "alice@x.io")
        upload = client.post(
            "/api/uploads", files={"file": ("dot.png", PNG, "image/png")}, headers=alice
        ).json()
        conv = client.post("/api/conversations", json={}, headers=alice).json()
        turn = client.post(
            f"/api/conversations/{conv['id']}/messages",
            json={"content": "What is in this picture?", "attachments": [upload["id"]]},
            headers=alice,
        ).json()
    assert turn["assistant_message"]["content"] == "A red pixel."
    assert not turn.get("notice")
    content = received[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    url = content[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
