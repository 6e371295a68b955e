"""A fake transcriber and synthesizer for hermetic tests (conftest.hermetic_voice puts them in
place of Whisper and Piper). The audio path around them is real: uploads are sniffed and
decoded by PyAV, speech is written as a WAV file.

    FakeTranscriber: "you said N.N seconds of audio", English only
    FakeSynthesizer: a 440 Hz tone, 60 ms per character, at 16 kHz
"""

from __future__ import annotations

import numpy as np

from tandem.voice import Speech, Transcript
from tandem.voice.transcription import Segment

FAKE_RATE = 16_000
SECONDS_PER_CHAR = 0.06


class FakeTranscriber:
    name = "fake-whisper"
    languages = frozenset({"en"})

    def __init__(self) -> None:
        self.calls: list[dict] = []

    @classmethod
    def from_settings(cls, settings: object) -> FakeTranscriber:
        return cls()

    def transcribe(self, samples, *, language=None, prompt=None, temperature=None) -> Transcript:
        self.calls.append({"language": language, "prompt": prompt, "temperature": temperature})
        seconds = samples.size / 16_000
        text = f"you said {seconds:.1f} seconds of audio"
        return Transcript(text, language or "en", round(seconds, 3), (Segment(0, seconds, text),))


class FakeSynthesizer:
    name = "fake-tts"
    voices = ("fakey",)

    @classmethod
    def from_settings(cls, settings: object) -> FakeSynthesizer:
        return cls()

    def synthesize(self, text: str, *, voice: str, speed: float = 1.0) -> Speech:
        seconds = len(text) * SECONDS_PER_CHAR / speed
        t = np.arange(int(seconds * FAKE_RATE)) / FAKE_RATE
        return Speech((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), FAKE_RATE)
