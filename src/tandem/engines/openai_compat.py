"""Any OpenAI-compatible server as an engine: vLLM, Ollama, llama.cpp server, OpenAI itself.

Base URLs come from the server's settings (set by admins), never from request bodies: a URL a
user could choose would let them point the server at internal addresses.

A backend marked `supports_tools` gets OpenAI `tools` (with `tool_choice: "auto"`) when a caller
passes them; the model's streamed `tool_calls` deltas are put together and reported on the
final chunk (finish_reason "tool_calls"). Assistant `tool_call` parts and `tool` messages go
back to the server in OpenAI's shape, so the model sees what its tools answered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence

import httpx
from httpx_sse import SSEError, aconnect_sse

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.core.settings import BackendConfig
from tandem.engines.base import Chunk, EncodedPrompt, Engine, EngineError, ModelInfo

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "eos": "stop",
    "tool_calls": "tool_calls",
    # The pre-tools OpenAI name, still sent by some servers.
    "function_call": "tool_calls",
}


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


def _error_text(event: dict) -> str:
    """The message of an error a server reported inside its stream: OpenAI and Ollama send
    `{"error": {"message": ...}}`, vLLM also `{"object": "error", "message": ...}`."""
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or event.get("message") or event)


def _arguments_text(arguments: object) -> str:
    """OpenAI wants a tool call's arguments as JSON text; tandem may hold them parsed."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _openai_message(message: Message) -> dict:
    """Text-only messages as plain strings; with images, OpenAI's list of content parts
    (the chat service has already turned each image into a `data:` URL); an assistant's tool
    calls and the `tool` messages answering them as OpenAI has them."""
    calls = [p.data for p in message.parts if p.type == "tool_call"]
    if message.role == "assistant" and calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": c.get("id"),
                    "type": "function",
                    "function": {
                        "name": c.get("name"),
                        "arguments": _arguments_text(c.get("arguments", "{}")),
                    },
                }
                for c in calls
            ],
        }
    if message.role == "tool":
        output = next((p for p in message.parts if p.type == "tool_output"), None)
        return {
            "role": "tool",
            "tool_call_id": output.data.get("call_id") if output else None,
            "content": "".join(p.text for p in message.parts if p.type in ("tool_output", "text")),
        }
    images = [p for p in message.parts if p.type == "image" and p.data.get("url")]
    if not images:
        return message.to_openai()
    content: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    content += [{"type": "image_url", "image_url": {"url": p.data["url"]}} for p in images]
    return {"role": message.role, "content": content}


class ToolCallAssembler:
    """Puts a streamed answer's tool calls back together: OpenAI sends each call in pieces
    keyed by `index` (the id and name first, then fragments of the arguments' JSON text)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: list[dict] | None) -> None:
        for position, delta in enumerate(deltas or []):
            # Servers that send each call whole (Ollama) may leave out the index.
            index = delta.get("index", position)
            call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = delta.get("function") or {}
            call["id"] = delta.get("id") or call["id"]
            call["name"] += function.get("name") or ""
            arguments = function.get("arguments")
            if isinstance(arguments, dict):  # some servers send the object, not its text
                arguments = json.dumps(arguments)
            call["arguments"] += arguments or ""

    def result(self) -> list[dict[str, str]]:
        """The calls in index order, each `{"id", "name", "arguments"}`; a call the server
        sent without an id gets one, since the tool's answer must name it."""
        out = []
        for index in sorted(self._calls):
            call = dict(self._calls[index])
            call["id"] = call["id"] or f"call_{index}"
            call["arguments"] = call["arguments"] or "{}"
            out.append(call)
        return out


class OpenAICompatEngine(Engine):
    """One remote model, exposed as `<backend name>/<remote model id>`."""

    backend = "openai"

    def __init__(
        self,
        backend: BackendConfig,
        remote_model: str,
        timeout_s: float = 600.0,
        model_id: str | None = None,
    ):
        # `model_id`: the id tandem serves it under, when not `<backend>/<remote>` (a registry
        # version served as a LoRA adapter on vLLM keeps its own id: tandem.engines.lora).
        super().__init__(model_id or f"{backend.name}/{remote_model}")
        self.config = backend
        self.accepts_images = backend.accepts_images
        self.supports_tools = backend.supports_tools
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
            supports_tools=self.supports_tools,
        )

    def _body(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        tools: list[dict] | None = None,
        continue_final: bool = False,
    ) -> dict:
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
        if tools:
            body["tools"] = list(tools)
            body["tool_choice"] = "auto"
        if continue_final:
            # vLLM's chat-template options (also SGLang's): go on writing the last message.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams, tools: list[dict] | None = None
    ) -> AsyncGenerator[Chunk, None]:
        """Stream the answer; with `tools` (OpenAI function schemas, only for a backend that
        `supports_tools`), the final chunk may carry the model's tool calls instead."""
        if tools and not self.supports_tools:
            raise EngineError(f"{self.model_id} does not support tool calls")
        finish: str | None = None
        usage = Usage()
        calls = ToolCallAssembler()
        ended = False  # `data: [DONE]` seen
        try:
            async with aconnect_sse(
                self._client,
                "POST",
                "/chat/completions",
                json=self._body(prompt.messages, params, tools, prompt.continue_final),
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    raise EngineError(
                        f"{self.config.name} answered {response.status_code}: {detail}"
                    )
                async for sse in source.aiter_sse():
                    if not sse.data.strip():
                        continue
                    if sse.data.strip() == "[DONE]":
                        ended = True
                        break
                    event = json.loads(sse.data)
                    if sse.event == "error" or event.get("error") or event.get("object") == "error":
                        raise EngineError(f"{self.config.name} failed: {_error_text(event)}")
                    if event.get("usage"):
                        usage = Usage(
                            event["usage"].get("prompt_tokens", 0),
                            event["usage"].get("completion_tokens", 0),
                        )
                    for choice in event.get("choices") or []:
                        delta = choice.get("delta") or {}
                        text = delta.get("content") or ""
                        if text:
                            yield Chunk(text=text)
                        calls.add(delta.get("tool_calls"))
                        if choice.get("finish_reason"):
                            finish = FINISH_REASONS.get(choice["finish_reason"], "stop")
        except SSEError as exc:  # 2xx, but not text/event-stream
            raise EngineError(f"{self.config.name} did not answer with a stream: {exc}") from exc
        except httpx.HTTPError as exc:
            raise EngineError(f"{self.config.name} is unreachable: {exc}") from exc
        except (json.JSONDecodeError, AttributeError, TypeError) as exc:
            raise EngineError(f"{self.config.name} sent a malformed stream: {exc}") from exc
        if not ended and finish is None:
            # The connection closed mid-answer (a crashed or restarted server, a proxy
            # timeout): not an answer that merely happens to be short.
            raise EngineError(f"{self.config.name} ended the stream before the answer finished")
        tool_calls = calls.result()
        if tool_calls:
            # Some servers end a tool-calling answer with "stop": the calls are what counts.
            finish = "tool_calls"
        elif finish == "tool_calls":
            finish = "stop"  # it said tool calls but sent none: an (empty) answer
        yield Chunk(
            tool_calls=tool_calls or None,
            finish_reason=finish or "stop",
            usage=usage,
            seed=params.seed,
        )

    def close(self) -> None:
        # The client is closed with the event loop that used it; nothing blocks here.
        pass
