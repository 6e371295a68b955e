"""The voice API, hermetic: `/v1/audio/transcriptions` and `/v1/audio/speech` with the fake
transcriber and synthesizer (tests/fake_voice.py), real decoding and WAV writing. Every bad
upload or body gets a useful 4xx, never a 500. The real models: tests/test_voice_model.py."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from conftest import new_user
from tandem.voice import MAX_AUDIO_BYTES, AudioError, AudioTooLong, decode_audio, wav_bytes

URL = "/v1/audio/transcriptions"


def tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 0.3).astype(np.float32)


def encoded(fmt: str, codec: str, seconds: float = 1.5, rate: int = 48_000) -> bytes:
    """A tone encoded by PyAV into `fmt` (the containers browsers and clients send)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        samples = (tone(seconds, rate) * 32767).astype(np.int16).reshape(1, -1)
        frame_size = 960
        for start in range(0, samples.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(
                samples[:, start : start + frame_size], format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def transcribe(client, headers, data: bytes, name: str = "a.wav", **fields):
    form = {"model": "whisper-1", **fields}
    return client.post(URL, files={"file": (name, data, "audio/wav")}, data=form, headers=headers)


@pytest.fixture
def user(client) -> dict:
    return new_user(client, "voice@x.io")


# -- transcription -----------------------------------------------------------------------------


def test_transcription_answers_openai_shapes(client, user):
    wav = wav_bytes(tone(2.0), 16_000)
    r = transcribe(client, user, wav)
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "you said 2.0 seconds of audio"}

    r = transcribe(client, user, wav, response_format="text")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == "you said 2.0 seconds of audio"

    r = transcribe(client, user, wav, response_format="verbose_json", language="en")
    body = r.json()
    assert body["language"] == "en" and body["duration"] == pytest.approx(2.0, abs=0.01)
    assert body["segments"][0]["text"] == body["text"]
    # The server's own model name is accepted beside OpenAI's.
    assert transcribe(client, user, wav, model="fake-whisper").status_code == 200


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("webm", "libopus"),
        ("ogg", "libopus"),
        ("mp3", "libmp3lame"),
        ("flac", "flac"),
        ("ipod", "aac"),
    ],
)
def test_recordings_in_every_container_decode_to_16khz(fmt, codec):
    """What MediaRecorder makes (WebM/Ogg Opus, Safari's MP4/AAC) and OpenAI's other formats
    decode to mono 16 kHz of the right length."""
    samples = decode_audio(encoded(fmt, codec, seconds=1.5))
    assert samples.dtype == np.float32
    assert samples.size / 16_000 == pytest.approx(1.5, abs=0.1)
    assert 0.1 < float(np.abs(samples).max()) <= 1.0


def test_a_browser_recording_is_transcribed(client, user):
    r = transcribe(client, user, encoded("webm", "libopus", 3.0), name="speech.webm")
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "you said 3.0 seconds of audio"


def test_bad_uploads_get_a_useful_4xx(client, user):
    wav = wav_bytes(tone(1.0), 16_000)
    cases = {
        "empty": (b"", 400, "empty_file"),
        "text": (b"hello, I am not audio at all", 400, "unsupported_audio_format"),
        "png": (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 400, "unsupported_audio_format"),
        # A playlist would make FFmpeg open the files and URLs it names: never decoded.
        "playlist": (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", 400, "unsupported_audio_format"),
        # A WAV header and then nothing a decoder can use.
        "damaged": (wav[:12] + b"\xff" * 200, 400, "invalid_audio"),
        "cut off": (wav[:44], 400, "invalid_audio"),
    }
    for name, (data, status, code) in cases.items():
        r = transcribe(client, user, data)
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"]["code"] == code, (name, r.text)
        assert r.json()["error"]["message"], name


def test_oversized_and_overlong_audio_is_413(client, user):
    r = transcribe(client, user, b"RIFF\0\0\0\0WAVE" + b"\0" * MAX_AUDIO_BYTES)
    assert r.status_code == 413 and r.json()["error"]["code"] == "audio_too_large", r.text
    # 11 minutes of 8 kHz 8-bit silence: 5 MB, but longer than the 10 minutes allowed.
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * (8000 * 660))
    r = transcribe(client, user, buf.getvalue())
    assert r.status_code == 413 and r.json()["error"]["code"] == "audio_too_long", r.text


def test_decode_errors_are_audio_errors():
    with pytest.raises(AudioError):
        decode_audio(b"OggS" + b"\0" * 100)
    with pytest.raises(AudioTooLong):
        decode_audio(wav_bytes(tone(3.0), 16_000), max_seconds=2)


def test_bad_fields_get_a_useful_4xx(client, user):
    wav = wav_bytes(tone(1.0), 16_000)
    r = transcribe(client, user, wav, model="gpt-9")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert "whisper-1" in r.json()["error"]["message"]
    r = transcribe(client, user, wav, language="fr")  # the fake, like tiny.en, is English-only
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_language"
    r = transcribe(client, user, wav, language="xx")
    assert r.status_code == 400 and "transcribes only: en" in r.json()["error"]["message"]
    assert transcribe(client, user, wav, language="english").status_code == 400
    assert transcribe(client, user, wav, response_format="srt").status_code == 400
    assert transcribe(client, user, wav, temperature="3").status_code == 400
    r = transcribe(client, user, wav, user_id="someone-else")
    assert r.status_code == 400 and "user_id" in r.json()["error"]["message"]
    r = client.post(URL, data={"model": "whisper-1"}, headers=user)  # no file
    assert r.status_code == 400 and "file" in r.json()["error"]["message"]
    r = client.post(URL, files={"file": ("a.wav", wav)}, headers=user)  # no model
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]
    r = client.post(URL, data={"model": "whisper-1", "file": "not a file"}, headers=user)
    assert r.status_code == 400


def test_prompt_and_temperature_reach_the_transcriber(client, user, app):
    wav = wav_bytes(tone(1.0), 16_000)
    r = transcribe(client, user, wav, prompt="tandem, Piper", temperature="0.2")
    assert r.status_code == 200
    call = app.state.voice.transcriber().calls[-1]
    assert call == {"language": None, "prompt": "tandem, Piper", "temperature": 0.2}


def test_the_web_session_needs_its_csrf_token(client):
    client.post("/api/auth/signup", json={"email": "web@x.io", "password": "password-123"})
    wav = wav_bytes(tone(1.0), 16_000)
    r = transcribe(client, {}, wav)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    csrf = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}
    assert transcribe(client, csrf, wav).status_code == 200
    assert client.post("/v1/audio/speech", json=SPEECH, headers=csrf).status_code == 200
    client.cookies.clear()
    assert transcribe(client, {}, wav).status_code == 401
    assert client.post("/v1/audio/speech", json=SPEECH).status_code == 401


def test_voice_counts_against_the_generation_rate_limit(tandem_home, sqlite_url):
    from fastapi.testclient import TestClient

    from fake_engine import FakeEngine
    from tandem.core.settings import RateLimit, Settings
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    settings = Settings(home=tandem_home, database_url=sqlite_url, rate_generation=RateLimit(2, 60))
    with TestClient(create_app(settings, catalog)) as client:
        user = new_user(client, "busy@x.io")
        wav = wav_bytes(tone(0.5), 16_000)
        assert transcribe(client, user, wav).status_code == 200
        assert client.post("/v1/audio/speech", json=SPEECH, headers=user).status_code == 200
        r = transcribe(client, user, wav)
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert client.post("/v1/audio/speech", json=SPEECH, headers=user).status_code == 429


def test_a_missing_model_is_503_not_500(tandem_home, sqlite_url, tmp_path):
    from fastapi.testclient import TestClient

    from fake_engine import FakeEngine
    from tandem.core.settings import Settings
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    settings = Settings(
        home=tandem_home, database_url=sqlite_url, transcriber="nope", synthesizer="nope"
    )
    with TestClient(create_app(settings, catalog)) as client:
        user = new_user(client, "admin@x.io")
        r = transcribe(client, user, wav_bytes(tone(0.5), 16_000))
        assert r.status_code == 503 and "TANDEM_TRANSCRIBER" in r.json()["error"]["message"]
        r = client.post("/v1/audio/speech", json=SPEECH, headers=user)
        assert r.status_code == 503 and "TANDEM_SYNTHESIZER" in r.json()["error"]["message"]


def test_real_backends_refuse_a_directory_that_is_not_a_model(tmp_path):
    """Checked before anything loads: a directory without tokenizer.json would otherwise make
    faster-whisper fetch one from a hub."""
    from tandem.voice import VoiceUnavailable
    from tandem.voice.speech import PiperSynthesizer
    from tandem.voice.transcription import WhisperTranscriber

    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(VoiceUnavailable, match=r"tokenizer\.json is missing"):
        WhisperTranscriber(tmp_path, "whisper-x")
    with pytest.raises(VoiceUnavailable, match="not a Piper voice"):
        PiperSynthesizer(tmp_path / "voice.onnx")


# -- speech ------------------------------------------------------------------------------------

SPEECH = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}


def read_wav(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        return w.getnchannels(), w.getsampwidth(), rate, w.getnframes() / rate


def test_speech_is_a_wav_file(client, user):
    r = client.post("/v1/audio/speech", json=SPEECH, headers=user)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    channels, width, rate, seconds = read_wav(r.content)
    assert (channels, width, rate) == (1, 2, 16_000)
    assert seconds == pytest.approx(len("Hello there.") * 0.06, rel=0.01)
    # The server's own voice and model names work too, and speed changes the length.
    body = SPEECH | {"model": "fake-tts", "voice": "fakey", "speed": 2.0, "response_format": "wav"}
    r = client.post("/v1/audio/speech", json=body, headers=user)
    assert r.status_code == 200
    assert read_wav(r.content)[3] == pytest.approx(seconds / 2, rel=0.01)


def test_bad_speech_requests_get_a_useful_4xx(client, user):
    cases = {
        "blank input": (SPEECH | {"input": "   "}, 400),
        "too long": (SPEECH | {"input": "a" * 4097}, 400),
        "mp3": (SPEECH | {"response_format": "mp3"}, 400),
        "too fast": (SPEECH | {"speed": 5}, 400),
        "unknown voice": (SPEECH | {"voice": "darth"}, 400),
        "unknown model": (SPEECH | {"model": "tts-9"}, 404),
        "no voice": ({"model": "tts-1", "input": "hi"}, 400),
        "smuggled": (SPEECH | {"user_id": "x"}, 400),
    }
    for name, (body, status) in cases.items():
        r = client.post("/v1/audio/speech", json=body, headers=user)
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"]["message"], name
    r = client.post("/v1/audio/speech", json=SPEECH | {"voice": "darth"}, headers=user)
    assert "fakey" in r.json()["error"]["message"]


def test_the_openai_client_transcribes_and_speaks(app, live_server):
    """The official `openai` client's multipart and JSON shapes, against a real socket."""
    import openai
    from fastapi.testclient import TestClient

    base = live_server(app)
    with TestClient(app) as tc:
        key = new_user(tc, "sdk@x.io")["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=20)
    wav = wav_bytes(tone(1.5), 16_000)
    text = client.audio.transcriptions.create(model="whisper-1", file=("note.wav", wav))
    assert text.text == "you said 1.5 seconds of audio"
    plain = client.audio.transcriptions.create(
        model="whisper-1", file=("note.wav", wav), response_format="text", language="en"
    )
    assert plain.strip() == "you said 1.5 seconds of audio"
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hi!", response_format="wav"
    )
    assert read_wav(speech.content)[:3] == (1, 2, 16_000)
    with pytest.raises(openai.BadRequestError, match="not audio tandem can read"):
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio"))
    client.close()
