"""Voice, OpenAI-compatible: `POST /v1/audio/transcriptions` (speech to text) and
`POST /v1/audio/speech` (text to speech), both run on this server (tandem.voice).

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="tk-...")
    client.audio.transcriptions.create(model="whisper-1", file=open("note.webm", "rb")).text
    client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.",
                               response_format="wav").write_to_file("hello.wav")

The web app calls the same routes with its session cookie (and CSRF header). A recording may
be WAV, WebM, Ogg, MP3, MP4/M4A or FLAC, recognised by its bytes, at most 25 MB and 10
minutes; speech comes back as a WAV file. Both count against the generation rate limit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field, field_validator

from tandem.api.deps import CurrentUser
from tandem.api.errors import ApiError
from tandem.api.rate_limit import GenerationQuota
from tandem.api.responses import ErrorBody
from tandem.api.schemas import Body, ModelId, form_fields
from tandem.voice import MAX_AUDIO_BYTES, VoiceService, sniff_audio, wav_bytes

router = APIRouter(prefix="/v1/audio", tags=["openai"])
READ_CHUNK = 1 << 20
# OpenAI's model names are accepted and served by this server's own models.
OPENAI_TRANSCRIPTION_MODELS = frozenset({"whisper-1"})
OPENAI_SPEECH_MODELS = frozenset({"tts-1", "tts-1-hd"})
# OpenAI's voice names, spoken by this server's default voice so OpenAI clients work as is.
OPENAI_VOICES = frozenset(
    [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]
)
MAX_SPEECH_CHARS = 4096  # OpenAI's limit for one request
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "a voice model is missing or misconfigured, or busy"}
}


def get_voice(request: Request) -> VoiceService:
    return request.app.state.voice


VoiceDep = Annotated[VoiceService, Depends(get_voice)]


async def _read_audio(file: UploadFile) -> bytes:
    """The upload's bytes: 413 past the limit (whatever its headers say), 400 when it is empty
    or its first bytes name no audio container."""
    chunks, size = [], 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > MAX_AUDIO_BYTES:
            raise ApiError(
                413, f"an audio file may be at most {MAX_AUDIO_BYTES} bytes", "audio_too_large"
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ApiError(400, "the audio file is empty", "empty_file")
    if sniff_audio(data) is None:
        raise ApiError(
            400,
            "the file is not audio tandem can read: send WAV, WebM, Ogg, MP3, MP4/M4A or FLAC",
            "unsupported_audio_format",
        )
    return data


@router.post(
    "/transcriptions",
    dependencies=[
        form_fields("file", "model", "language", "prompt", "response_format", "temperature"),
        GenerationQuota,
    ],
    responses={200: {"content": {"text/plain": {}}}, **UNAVAILABLE},
)
async def create_transcription(
    voice: VoiceDep,
    _: CurrentUser,
    file: UploadFile,
    model: Annotated[str, Form(min_length=1, max_length=200)],
    language: Annotated[str | None, Form(pattern=r"^[a-z]{2,3}$")] = None,
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    response_format: Annotated[Literal["json", "text", "verbose_json"], Form()] = "json",
    temperature: Annotated[float | None, Form(ge=0, le=1)] = None,
) -> Any:
    """Speech to text. `model` is "whisper-1" or this server's model name; `language` an ISO
    639-1 code (the bundled model is English-only)."""
    data = await _read_audio(file)
    transcriber = await voice.transcriber_ready()
    if model not in OPENAI_TRANSCRIPTION_MODELS | {transcriber.name}:
        raise ApiError(
            404,
            f"the model '{model}' does not exist: use 'whisper-1' or '{transcriber.name}'",
            "model_not_found",
        )
    known = transcriber.languages
    if language is not None and known is not None and language not in known:
        what = f"only: {', '.join(sorted(known))}" if len(known) <= 10 else f"not '{language}'"
        raise ApiError(
            400,
            f"this server's model ({transcriber.name}) transcribes {what}",
            "unsupported_language",
        )
    transcript = await voice.transcribe(
        data, language=language, prompt=prompt, temperature=temperature
    )
    if response_format == "text":
        return PlainTextResponse(transcript.text)
    if response_format == "verbose_json":
        return {
            "task": "transcribe",
            "language": transcript.language,
            "duration": transcript.duration_s,
            "text": transcript.text,
            "segments": [
                {"id": i, "start": s.start, "end": s.end, "text": s.text}
                for i, s in enumerate(transcript.segments)
            ],
        }
    return {"text": transcript.text}


class SpeechRequest(Body):
    model: ModelId
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    voice: str = Field(min_length=1, max_length=64)
    # OpenAI's default is mp3; tandem writes WAV only, and answers WAV when none is asked for.
    response_format: Literal["wav"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input has nothing to say")
        return value


@router.post(
    "/speech",
    dependencies=[GenerationQuota],
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, **UNAVAILABLE},
)
async def create_speech(body: SpeechRequest, voice: VoiceDep, _: CurrentUser) -> Response:
    """Text to speech as a WAV file. `voice` is one of this server's voices; OpenAI's names
    (alloy, echo, ...) are spoken by its default voice."""
    synthesizer = await voice.synthesizer_ready()
    if body.model not in OPENAI_SPEECH_MODELS | {synthesizer.name}:
        raise ApiError(
            404,
            f"the model '{body.model}' does not exist: use 'tts-1' or '{synthesizer.name}'",
            "model_not_found",
        )
    if body.voice in synthesizer.voices:
        chosen = body.voice
    elif body.voice in OPENAI_VOICES:
        chosen = synthesizer.voices[0]
    else:
        raise ApiError(
            400,
            f"unknown voice '{body.voice}': this server has {', '.join(synthesizer.voices)} "
            "(OpenAI's voice names are spoken by the first)",
            "invalid_value",
        )
    speech = await voice.speak(body.input, voice=chosen, speed=body.speed)
    return Response(
        wav_bytes(speech.samples, speech.sample_rate),
        media_type="audio/wav",
        headers={"Cache-Control": "no-store"},
    )
