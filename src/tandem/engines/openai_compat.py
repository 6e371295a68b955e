"""Any OpenAI-compatible server as an engine: vLLM, Ollama, llama.cpp server, OpenAI itself.

Base URLs come from the server's settings (set by admins), never from request bodies: a URL a
user could choose would let them point the server at internal addresses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.core.settings import BackendConfig
from tandem.engines.base import Chunk, Engine, EngineError, ModelInfo

FINISH_REASONS = {"stop": "stop", "length": "length", "eos": "stop", "tool_calls": "stop"}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def list_remote_models(backend: BackendConfig, timeout_s: float = 5.0) -> list[str]:
    """The model ids a server offers (GET /models), or the configured list when given."""
    if backend.models:
        return list(backend.models)
    url = backend.base_url.rstrip("/") + "/models"
    response = httpx.get(url, headers=_headers(backend.api_key), timeout=timeout_s)
    response.raise_for_status()
    return [m["id"] for m in response.json().get("data", [])]


def _openai_message(message: Message) -> dict:
    """Text-only messages as plain strings; with images, OpenAI's list of content parts
    (the chat service has already turned each image into a `data:` URL)."""
    images = [p for p in message.parts if p.type == "image" and p.data.get("url")]
    if not images:
        return message.to_openai()
    content: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    content += [{"type": "image_url", "image_url": {"url": p.data["url"]}} for p in images]
    return {"role": message.role, "content": content}


class OpenAICompatEngine(Engine):
    """One remote model, exposed as `<backend name>/<remote model id>`."""

    backend = "openai"

    def __init__(self, backend: BackendConfig, remote_model: str, timeout_s: float = 600.0):
        super().__init__(f"{backend.name}/{remote_model}")
        self.config = backend
        self.accepts_images = backend.accepts_images
        self.remote_model = remote_model
        self._client = httpx.AsyncClient(
            base_url=backend.base_url.rstrip("/"),
            headers=_headers(backend.api_key),
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self.model_id,
            backend=self.backend,
            owned_by=self.config.name,
            accepts_images=self.accepts_images,
        )

    def _body(self, messages: Sequence[Message], params: SamplingParams) -> dict:
        body: dict = {
            "model": self.remote_model,
            "messages": [_openai_message(m) for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    async def stream(
        self, messages: Sequence[Message], params: SamplingParams
    ) -> AsyncIterator[Chunk]:
        finish: str | None = None
        usage = Usage()
        completion_chars = 0
        try:
            async with self._client.stream(
                "POST", "/chat/completions", json=self._body(messages, params)
            ) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    raise EngineError(
                        f"{self.config.name} answered {response.status_code}: {detail}"
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("usage"):
                        usage = Usage(
                            event["usage"].get("prompt_tokens", 0),
                            event["usage"].get("completion_tokens", 0),
                        )
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            completion_chars += len(text)
                            yield Chunk(text=text)
                        if choice.get("finish_reason"):
                            finish = FINISH_REASONS.get(choice["finish_reason"], "stop")
        except httpx.HTTPError as exc:
            raise EngineError(f"{self.config.name} is unreachable: {exc}") from exc
        yield Chunk(finish_reason=finish or "stop", usage=usage, seed=params.seed)

    def close(self) -> None:
        # The client is closed with the event loop that used it; nothing blocks here.
        pass
