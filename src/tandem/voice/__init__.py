"""tandem.voice: speech to text and text to speech, on this server, with models that ship in
PyPI wheels (Whisper tiny.en through faster-whisper; a Piper voice). No audio leaves the
machine and nothing is downloaded at run time.

    voice = VoiceService(settings)
    (await voice.transcribe(webm_bytes)).text
    (await voice.speak("Hello.", voice="joe")).samples

The API serves it as OpenAI's `/v1/audio/transcriptions` and `/v1/audio/speech`
(tandem.api.routes.audio); docs/voice.md is the user's view.
"""

from tandem.voice.audio import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    AudioError,
    AudioTooLong,
    decode_audio,
    sniff_audio,
    wav_bytes,
)
from tandem.voice.service import VoiceBusy, VoiceService
from tandem.voice.speech import Speech, Synthesizer, register_synthesizer
from tandem.voice.transcription import (
    Segment,
    Transcriber,
    Transcript,
    VoiceUnavailable,
    register_transcriber,
)

__all__ = [
    "MAX_AUDIO_BYTES",
    "MAX_AUDIO_SECONDS",
    "AudioError",
    "AudioTooLong",
    "Segment",
    "Speech",
    "Synthesizer",
    "Transcriber",
    "Transcript",
    "VoiceBusy",
    "VoiceService",
    "VoiceUnavailable",
    "decode_audio",
    "register_synthesizer",
    "register_transcriber",
    "sniff_audio",
    "wav_bytes",
]
