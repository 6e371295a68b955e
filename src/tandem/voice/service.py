"""The voice service the API calls: models built lazily (once, on first use), decoding and
inference on worker threads so the event loop never waits on them.

    voice = VoiceService(settings)                 # cheap: nothing loads yet
    transcript = await voice.transcribe(upload_bytes, language="en")
    speech = await voice.speak("Hello.", voice="joe", speed=1.0)
    voice.close()

Transcription and speech each get one worker thread of their own: each model already uses
several cores per call, so running two calls of one model at once only makes both slower,
and a long transcription must not hold up the reading of an answer (nor the reverse). At most
`MAX_WAITING` calls wait for a worker; beyond that the server says it is busy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from tandem.core.settings import Settings
from tandem.voice.audio import decode_audio
from tandem.voice.speech import Speech, Synthesizer, build_synthesizer
from tandem.voice.transcription import Transcriber, Transcript, build_transcriber

MAX_WAITING = 8
T = TypeVar("T")
M = TypeVar("M")


class VoiceBusy(RuntimeError):
    """Too many voice requests are already waiting; try again shortly."""


class _Worker(Generic[M]):
    """A model built on first use plus the one thread that runs it."""

    def __init__(self, name: str, build: Callable[[], M]) -> None:
        self._build = build
        self._model: M | None = None
        self._lock = threading.Lock()
        self._name = name
        self._pool: ThreadPoolExecutor | None = None  # made on first use, again after close()
        self._waiting = 0

    def model(self) -> M:
        with self._lock:
            if self._model is None:
                self._model = self._build()
            return self._model

    async def run(self, fn: Callable[[], T]) -> T:
        if self._waiting >= MAX_WAITING:
            raise VoiceBusy("the server is busy with other voice requests; try again shortly")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"tandem-{self._name}"
            )
        self._waiting += 1  # only the event loop's thread touches the counter
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        # An app whose lifespan ends and starts again (tests do) gets a new thread; the loaded
        # model is kept.
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class VoiceService:
    def __init__(
        self,
        settings: Settings,
        transcriber: Transcriber | None = None,
        synthesizer: Synthesizer | None = None,
    ) -> None:
        """`transcriber` / `synthesizer` replace the configured backends (tests pass fakes)."""
        self._stt = _Worker("transcribe", lambda: transcriber or build_transcriber(settings))
        self._tts = _Worker("speak", lambda: synthesizer or build_synthesizer(settings))

    def transcriber(self) -> Transcriber:
        """The speech-to-text backend, built on first call (blocks while a model loads)."""
        return self._stt.model()

    def synthesizer(self) -> Synthesizer:
        return self._tts.model()

    async def transcriber_ready(self) -> Transcriber:
        """The transcriber, loading it off the event loop if this is the first use."""
        return await self._stt.run(self.transcriber)

    async def synthesizer_ready(self) -> Synthesizer:
        return await self._tts.run(self.synthesizer)

    async def transcribe(
        self,
        data: bytes,
        *,
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
    ) -> Transcript:
        """Decode an uploaded recording and transcribe it. AudioError for bytes that are not
        readable audio, VoiceUnavailable when the model cannot be loaded."""

        def work() -> Transcript:
            samples = decode_audio(data)
            return self.transcriber().transcribe(
                samples, language=language, prompt=prompt, temperature=temperature
            )

        return await self._stt.run(work)

    async def speak(self, text: str, *, voice: str, speed: float = 1.0) -> Speech:
        return await self._tts.run(
            lambda: self.synthesizer().synthesize(text, voice=voice, speed=speed)
        )

    def close(self) -> None:
        self._stt.close()
        self._tts.close()
