"""Fixtures for voice tests: a sentence spoken by espeak-ng (Debian's `espeak-ng`, installed by
`make system-test-deps`) into a WAV file, and a Chromium whose microphone plays that file.

    def test_x(spoken_wav): ...                # Path of the WAV; SENTENCE is what it says
    def test_y(mic_web): page = mic_web.signed_in("a@x.io")   # the mic hears spoken_wav

espeak-ng, not tandem's own voice, makes the recording, so a transcription test does not only
hear what tandem's synthesizer says well.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from collections.abc import Callable, Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest

from browser_fixtures import CHROMIUM, CHROMIUM_ARGS, Web

# Chosen because Whisper tiny.en hears espeak-ng's voice saying it word for word.
SENTENCE = "Tell me a joke about a cat and a dog."
SILENCE_S = 1.0  # before and after the sentence, as a person pauses


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: how transcripts are compared."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_match(heard: str, said: str = SENTENCE) -> float:
    """How much of what was said was heard, 0..1, by word sequence (1.0: the same words)."""
    return SequenceMatcher(None, words(heard), words(said)).ratio()


def espeak_wav(path: Path, text: str, silence_s: float = SILENCE_S) -> Path:
    """`text` spoken by espeak-ng as 16-bit mono WAV, padded with silence on both sides."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run `make system-test-deps` (installs it from Debian)")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    with wave.open(str(raw), "rb") as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    pad = b"\0" * (int(params.framerate * silence_s) * params.sampwidth * params.nchannels)
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(pad + frames + pad)
    raw.unlink()
    return path


@pytest.fixture(scope="session")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav(tmp_path_factory.mktemp("voice") / "sentence.wav", SENTENCE)


@pytest.fixture(scope="session")
def mic_browser(browser: Any, spoken_wav: Path) -> Iterator[Any]:
    """A second Chromium whose fake microphone plays `spoken_wav` once, then silence; media
    permission is granted and audio may play without a gesture."""
    mic = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={spoken_wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield mic
    mic.close()


@pytest.fixture
def mic_web_with(
    mic_browser: Any, settings: Any, live_server: Callable[..., str]
) -> Iterator[Callable[[Any], Web]]:
    """`mic_web_with(catalog)`: like `web_with`, in the browser whose microphone speaks."""
    from tandem.web.app import create_app

    made: list[Web] = []

    def make(catalog: Any) -> Web:
        app = create_app(settings, catalog)
        web = Web(live_server(app), app, mic_browser)
        made.append(web)
        return web

    yield make
    for web in made:
        web.close()
    errors = [e for web in made for e in web.errors]
    assert not errors, "JavaScript errors on the page:\n" + "\n".join(errors)


@pytest.fixture
def mic_web(mic_web_with: Callable[[Any], Web], fake_catalog: Any) -> Web:
    return mic_web_with(fake_catalog)
