"""Image backends: another model that turns a text prompt into a picture, for the image tool.

One is built in, `openai`: any server speaking the OpenAI images API (`POST /images/generations`),
which OpenAI itself, LocalAI and several Stable Diffusion front ends do. Others plug in by kind:

    @register_image_backend("mine")
    class MyBackend:
        @classmethod
        def from_config(cls, config: ImageBackendConfig, settings: Settings) -> MyBackend: ...
        async def generate(self, prompt: str, size: str) -> bytes: ...

The backend is chosen by admins (`TANDEM_IMAGE_BACKEND`), never by a request. What it sends
back is not trusted: the bytes must be a PNG, JPEG or WebP by their magic bytes, the response is
size-capped while it is read, the whole call has a deadline, and an image handed back as a URL
is fetched through `tandem.net.safe_fetch` (a backend could otherwise point us at an internal
address).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from tandem.core.images import MAX_UPLOAD_BYTES, sniff_image_mime
from tandem.core.settings import ImageBackendConfig, Settings
from tandem.net.safe_fetch import FetchError, fetch

# A generated image is stored as an upload, so it obeys the upload cap.
MAX_IMAGE_BYTES = MAX_UPLOAD_BYTES
# base64 makes 3 bytes into 4; the JSON envelope around it is small.
MAX_RESPONSE_BYTES = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
# OpenAI's dall-e-3 takes up to 4000 characters; longer prompts are cut, not refused.
MAX_PROMPT_CHARS = 4000
IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp")


class ImageBackendError(RuntimeError):
    """The backend could not make an image; the message is a sentence for the user."""


class ImageBackend(Protocol):
    async def generate(self, prompt: str, size: str) -> bytes:
        """The image's bytes (PNG, JPEG or WebP), or ImageBackendError."""
        ...


IMAGE_BACKENDS: dict[str, Callable[[ImageBackendConfig, Settings], ImageBackend]] = {}


def register_image_backend(kind: str) -> Callable[[type], type]:
    """Class decorator: the class's `from_config` builds the backend for `kind`."""

    def register(cls: type) -> type:
        IMAGE_BACKENDS[kind] = cls.from_config  # type: ignore[attr-defined]  # every registered class defines it
        return cls

    return register


def image_backend_for(settings: Settings) -> ImageBackend:
    """The configured backend (settings.image_backend, which must be set)."""
    config = settings.image_backend
    if config is None:
        raise ImageBackendError("no image backend is configured")
    factory = IMAGE_BACKENDS.get(config.kind)
    if factory is None:
        known = ", ".join(sorted(IMAGE_BACKENDS))
        raise ImageBackendError(f"no image backend of kind {config.kind!r}; known: {known}")
    return factory(config, settings)


def image_mime(data: bytes) -> str:
    """The image's type by its magic bytes; anything else (HTML, SVG, an error page) is an
    ImageBackendError, so it is never stored or served as an image."""
    mime = sniff_image_mime(data)
    if mime not in IMAGE_MIMES:
        raise ImageBackendError(
            "the image backend sent back something that is not a PNG, JPEG or WebP image"
        )
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageBackendError(f"the generated image is larger than {MAX_IMAGE_BYTES} bytes")
    return mime


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, or ImageBackendError as soon as it passes `limit` (whatever its headers say)."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ImageBackendError(f"the image backend's answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(body: bytes) -> str:
    """OpenAI's `{"error": {"message"}}`, or the start of whatever the server said."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")
    return " ".join(str(message).split())[:300]


@register_image_backend("openai")
class OpenAIImagesBackend:
    """A server speaking the OpenAI images API.

    backend = OpenAIImagesBackend("https://api.openai.com/v1", "sk-...", "dall-e-3")
    png = await backend.generate("a lighthouse at dusk, watercolour", "1024x1024")
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        timeout_s: float = 120.0,
        fetch_allow_private: tuple[str, ...] = (),
    ) -> None:
        self.url = base_url.rstrip("/") + "/images/generations"
        self._api_key = api_key
        self.model = model
        self.timeout_s = timeout_s
        # For an image handed back as a URL: the admin's own opening of private addresses.
        self.fetch_allow_private = fetch_allow_private

    @classmethod
    def from_config(cls, config: ImageBackendConfig, settings: Settings) -> OpenAIImagesBackend:
        return cls(
            config.base_url,
            config.api_key,
            config.model,
            config.timeout_s,
            settings.fetch_allow_private,
        )

    def _scrub(self, text: str) -> str:
        # Some servers quote the key they were given in their error message.
        return text.replace(self._api_key, "***") if self._api_key else text

    async def generate(self, prompt: str, size: str) -> bytes:
        body: dict[str, Any] = {
            "prompt": prompt[:MAX_PROMPT_CHARS],
            "n": 1,
            "size": size,
            "response_format": "b64_json",
        }
        if self.model:
            body["model"] = self.model
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            # httpx's timeouts bound each read, not the whole answer: a server that trickles
            # bytes would never time out, so the call as a whole has a deadline too.
            async with asyncio.timeout(self.timeout_s):
                return await self._generate(body, headers)
        except TimeoutError:
            raise ImageBackendError(
                f"the image backend did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ImageBackendError(
                self._scrub(f"the image backend is unreachable: {exc}")
            ) from None

    async def _generate(self, body: dict[str, Any], headers: dict[str, str]) -> bytes:
        timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", self.url, json=body, headers=headers) as response,
        ):
            raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        if response.status_code >= 400:
            detail = self._scrub(_error_detail(raw))
            raise ImageBackendError(
                f"the image backend answered {response.status_code}: {detail}".rstrip(": ")
            )
        try:
            item = json.loads(raw)["data"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ImageBackendError(
                "the image backend's answer is not an OpenAI images response"
            ) from None
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            try:
                data = base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError):
                raise ImageBackendError("the image backend's b64_json is not base64") from None
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            data = await self._fetch_url(item["url"])
        else:
            raise ImageBackendError("the image backend's answer has neither b64_json nor url")
        image_mime(data)
        return data

    async def _fetch_url(self, url: str) -> bytes:
        """The image at the URL the backend chose: through safe_fetch, because the answer
        could name any address (a cloud metadata service, an admin page on loopback)."""
        try:
            fetched = await fetch(
                url,
                allow_private=self.fetch_allow_private,
                max_bytes=MAX_IMAGE_BYTES,
                timeout_s=self.timeout_s,
                content_types=IMAGE_MIMES,
            )
        except FetchError as exc:
            raise ImageBackendError(f"the image's URL could not be fetched: {exc}") from None
        return fetched.body
