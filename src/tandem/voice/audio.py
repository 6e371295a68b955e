"""Audio in and out: recognising an upload's container by its bytes, decoding it (bounded) to
16 kHz mono for speech recognition, and writing 16-bit PCM as a WAV file.

    mime = sniff_audio(data)                     # "audio/webm", ... or None
    samples = decode_audio(data)                 # float32 in [-1, 1] at 16 kHz; AudioError
    wav = wav_bytes(int16_samples, 22050)

Uploads come from anyone with an account, so nothing is handed to the decoder (FFmpeg, through
PyAV) unless its first bytes name a container people record speech in, and decoding stops as
soon as the audio passes `MAX_AUDIO_SECONDS`: a small compressed file can hold hours of sound,
and the decoded samples are what costs memory and CPU.
"""

from __future__ import annotations

import io
import wave

import numpy as np

# OpenAI's limit for /v1/audio/transcriptions; the route reads no more than this.
MAX_AUDIO_BYTES = 25 * 1024 * 1024
# About a minute of CPU for the bundled tiny.en model on 2 cores; longer audio is refused.
MAX_AUDIO_SECONDS = 600
SAMPLE_RATE = 16_000  # what Whisper listens at
# The FFmpeg demuxer for each recognised container. It is named, never probed: probing could
# pick a demuxer that opens other files or URLs named inside the upload (HLS, concat).
DEMUXERS = {
    "audio/wav": "wav",
    "audio/webm": "matroska",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "mov",
    "audio/mpeg": "mp3",
}


class AudioError(ValueError):
    """The upload is not audio tandem can read; the message is a sentence for the caller."""


class AudioTooLong(AudioError):
    pass


def sniff_audio(data: bytes) -> str | None:
    """The container's media type from its magic bytes: what browsers' MediaRecorder makes
    (WebM, Ogg, MP4) and the formats OpenAI's endpoint takes (WAV, MP3, FLAC, M4A)."""
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"  # Matroska/WebM: Chrome's and Firefox's recordings
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[4:8] == b"ftyp":
        return "audio/mp4"  # M4A, MP4: Safari's recordings
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def decode_audio(
    data: bytes, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_AUDIO_SECONDS
) -> np.ndarray:
    """The first audio track as mono float32 samples at `sample_rate`. AudioError when the bytes
    are not a recognised container or do not decode; AudioTooLong past `max_seconds`."""
    import av  # PyAV bundles FFmpeg; imported here so the API starts without it loaded

    mime = sniff_audio(data)
    if mime is None:
        raise AudioError(
            "the file is not audio tandem can read: send WAV, WebM, Ogg, MP3, MP4/M4A or FLAC"
        )
    limit = int(max_seconds * sample_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        source = io.BytesIO(data)
        with av.open(source, "r", format=DEMUXERS[mime], metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio track")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    total += chunk.size
                    if total > limit:
                        raise AudioTooLong(f"the audio is longer than {max_seconds:g} seconds")
                    chunks.append(chunk)
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.FFmpegError:
        raise AudioError("the audio could not be decoded: the file is damaged or cut off") from None
    if not chunks:
        raise AudioError("the file holds no audio")
    return np.concatenate(chunks)[:limit].astype(np.float32) / 32768.0


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of `samples` (int16, or float in [-1, 1])."""
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()
