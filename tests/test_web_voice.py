"""Voice in the chat page, in a real browser: reading answers aloud with the server's speech,
dictating into the composer, and hands-free voice mode. The dictation and voice-mode tests use
a Chromium whose fake microphone plays a sentence spoken by espeak-ng (tests/voice_fixtures.py)
and the real Whisper and Piper models; reading aloud runs on the fakes.

    .venv/bin/python -m pytest -q tests/test_web_voice.py
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from voice_fixtures import word_match

pytestmark = pytest.mark.browser

# Fails the test if anything still reaches for the browser's speech services, which send
# audio to a third party in Chromium-based browsers.
NO_WEB_SPEECH = """
window.__webSpeech = [];
for (const name of ["SpeechRecognition", "webkitSpeechRecognition"]) {
  window[name] = function () { window.__webSpeech.push(name); throw new Error(`${name} used`); };
}
if (window.speechSynthesis) {
  window.speechSynthesis.speak = () => { window.__webSpeech.push("speechSynthesis"); };
}
"""
# Every state voice mode shows, in order.
WATCH_VOICE_STATES = """
window.__voiceStates = [];
new MutationObserver(() => {
  const s = document.getElementById("voice-status")?.dataset.state;
  if (s && window.__voiceStates.at(-1) !== s) window.__voiceStates.push(s);
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
"""


def signed_in(web, email: str):
    page = web.new_page()
    page.context.add_init_script(NO_WEB_SPEECH)
    page.context.add_init_script(WATCH_VOICE_STATES)
    r = page.request.post("/api/auth/signup", data={"email": email, "password": "password-123"})
    assert r.status == 201, r.text()
    page.goto("/")
    page.wait_for_selector("body[data-ready]")
    return page


def composer(page):
    return page.get_by_role("textbox", name="Message")


def test_read_aloud_plays_the_servers_speech(web):
    page = signed_in(web, "listen@x.io")
    composer(page).fill("Read this back to me.")
    composer(page).press("Enter")
    expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(1)
    button = page.get_by_role("button", name="Read aloud")
    with page.expect_response("**/v1/audio/speech") as speech:
        button.click()
    assert speech.value.status == 200
    assert speech.value.headers["content-type"] == "audio/wav"
    assert "You said" in speech.value.request.post_data_json["input"]
    expect(button).to_have_class("icon-btn act speaking")
    # The fake voice speaks 60 ms a character: a few seconds, then the button is idle again.
    expect(button).not_to_have_class("icon-btn act speaking", timeout=15_000)
    assert page.evaluate("window.__webSpeech") == []


def test_read_aloud_stops_on_a_second_click(web):
    page = signed_in(web, "stop@x.io")
    composer(page).fill("A longer message, to be read out for a while before it is stopped.")
    composer(page).press("Enter")
    expect(page.locator(".msg.assistant:not(.streaming)")).to_have_count(1)
    button = page.get_by_role("button", name="Read aloud")
    button.click()
    expect(button).to_have_class("icon-btn act speaking")
    button.click()
    expect(button).to_have_class("icon-btn act")
    assert page.evaluate("document.querySelector('audio')?.paused ?? true")


@pytest.mark.model
def test_dictation_fills_the_composer(mic_web):
    """The microphone hears espeak-ng's sentence; Whisper on the server writes it into the
    composer, after what was typed before."""
    page = signed_in(mic_web, "dictate@x.io")
    composer(page).fill("Please:")
    mic = page.get_by_role("button", name="Dictate")
    expect(mic).to_be_visible()
    mic.click()
    stop = page.get_by_role("button", name="Stop dictation")
    expect(stop).to_be_visible()
    page.wait_for_timeout(5_000)  # the recording: 1 s of silence, the sentence, 1 s of silence
    # Generous timeouts: on a busy 2-core machine the server's transcription can queue.
    with page.expect_response("**/v1/audio/transcriptions", timeout=45_000) as heard:
        stop.click()
    assert heard.value.status == 200, heard.value.text()
    expect(page.get_by_role("button", name="Dictate")).to_be_enabled(timeout=45_000)
    text = composer(page).input_value()
    assert text.startswith("Please: "), text
    assert word_match(text.removeprefix("Please: ")) >= 0.8, text
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    assert page.evaluate("window.__webSpeech") == []


@pytest.mark.model
def test_voice_mode_sends_what_was_said_reads_the_answer_and_listens_again(mic_web):
    page = signed_in(mic_web, "handsfree@x.io")
    page.get_by_role("button", name="Voice mode").click()
    status = page.get_by_role("status").filter(has_text="…")
    expect(status).to_have_text("Listening…")
    # The sentence ends, a second of silence ends the utterance, and it is sent as a message.
    # Timeouts are generous: on a loaded 2-core machine transcription alone took up to 4 s.
    user = page.locator(".msg.user .bubble")
    expect(user).to_have_count(1, timeout=60_000)
    assert word_match(user.inner_text()) >= 0.8, user.inner_text()
    answer = page.locator(".msg.assistant:not(.streaming)")
    expect(answer).to_contain_text("You said", timeout=60_000)
    expect(status).to_have_text("Speaking…", timeout=60_000)
    expect(status).to_have_text("Listening…", timeout=60_000)  # after the answer was read
    page.get_by_role("button", name="Stop voice mode").click()
    expect(page.locator("#voice-status")).to_be_hidden()
    states = page.evaluate("window.__voiceStates")
    turn = ["listening", "hearing", "transcribing", "thinking", "speaking", "listening"]
    assert states[:6] == turn, states
    assert states[-1] == "off"
    assert page.locator(".msg.user").count() == 1  # silence afterwards sent nothing
    assert page.evaluate("window.__webSpeech") == []
