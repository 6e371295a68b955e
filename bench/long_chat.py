"""Long chats: time to first token as the history grows, with and without the prefix cache.

    python -m bench.long_chat                 # writes docs/benchmarks/long_chat.json (~5 min)
    python -m bench.long_chat --chats 2       # a quick look

A chat of 8 turns whose user messages are ~330 tokens each (and whose answers are the
default engine's own, greedy, up to 48 tokens), so the 8th turn's prompt is ~3,000 tokens:
the web app's case of a long conversation. Every turn is timed from the request to the first
token. The same chats run through `OnnxEngine` with the prefix cache (the default,
`prefix_cache_mb=512`) and without it (`prefix_cache_mb=0`, every turn re-encodes the whole
history), each in its own child process so its peak RSS is its own, and their answers are
compared turn by turn: the cache must not change a single greedy token.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import record_figures

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks" / "long_chat.json"
TURNS = 8
ANSWER_TOKENS = 48
CACHE_MB = (512, 0)
TOPICS = (
    "The river runs past the old mill, under the stone bridge and through the meadow where "
    "the village keeps its sheep in summer.",
    "Our team moved the nightly backups to a new server, and the restore test on Friday took "
    "twice as long as the one before it.",
    "The bakery on the corner opens at six, sells out of rye bread by nine and closes early "
    "on Sundays when the owner visits her mother.",
    "A student measured the pendulum's period at four lengths and wants to know whether the "
    "square-root law holds for her data.",
    "The city plans a cycle lane on the main street, and the shop owners worry that losing "
    "the parking spaces will cost them customers.",
)


def user_message(topic: str, turn: int) -> str:
    # ~330 tokens: the topic repeated with the turn's own question, so no two turns are equal.
    return (
        f"Turn {turn + 1}. " + " ".join([topic] * 12) + f" What should happen at step {turn + 1}?"
    )


def child(cache_mb: int, chats: int) -> dict:
    from tandem.core.generation import SamplingParams
    from tandem.core.messages import Message
    from tandem.core.settings import Settings
    from tandem.engines.onnx import OnnxEngine
    from tandem.registry.embedded import prepare_embedded_model

    prepared = prepare_embedded_model(Settings.from_env().home)
    engine = OnnxEngine(prepared.onnx_dir, "embedded", prefix_cache_mb=cache_mb)
    params = SamplingParams(temperature=0.0, max_tokens=ANSWER_TOKENS, repetition_penalty=1.0)

    async def one_chat(topic: str) -> tuple[list[float], list[int], list[str]]:
        history: list[Message] = []
        ttfts, prompts, answers = [], [], []
        for turn in range(TURNS):
            history.append(Message.text("user", user_message(topic, turn)))
            start = time.perf_counter()
            first, pieces, prompt_tokens = None, [], 0
            async for chunk in engine.stream(history, params):
                if chunk.text and first is None:
                    first = time.perf_counter() - start
                pieces.append(chunk.text)
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens
            answer = "".join(pieces)
            history.append(Message.text("assistant", answer))
            ttfts.append(round(first if first is not None else time.perf_counter() - start, 3))
            prompts.append(prompt_tokens)
            answers.append(answer)
        return ttfts, prompts, answers

    async def run_all() -> list[tuple[list[float], list[int], list[str]]]:
        return [await one_chat(TOPICS[i % len(TOPICS)]) for i in range(chats)]

    results = asyncio.run(run_all())
    engine.close()
    return {
        "prefix_cache_mb": cache_mb,
        "ttft_s": [r[0] for r in results],
        "prompt_tokens": [r[1] for r in results],
        "answers": [r[2] for r in results],
        "reused_prefix_tokens": engine.reused_prefix_tokens,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=5, help="chats per setting (p50 over them)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.chats)))
        return

    runs = {}
    for cache_mb in CACHE_MB:
        print(f"prefix_cache_mb={cache_mb}: {args.chats} chats of {TURNS} turns...", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bench.long_chat", "--chats", str(args.chats),
             "--child", str(cache_mb)],
            check=True, capture_output=True, text=True, cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        runs[cache_mb] = json.loads(done.stdout.strip().splitlines()[-1])
    cached, plain = runs[512], runs[0]
    last = TURNS - 1
    same = sum(
        a == b
        for chat_a, chat_b in zip(cached["answers"], plain["answers"], strict=True)
        for a, b in zip(chat_a, chat_b, strict=True)
    )
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m bench.long_chat --chats " + str(args.chats),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "turns": TURNS,
        "answer_tokens": ANSWER_TOKENS,
        "last_turn_prompt_tokens": statistics.median(p[last] for p in cached["prompt_tokens"]),
        "long_chat_ttft_s": statistics.median(t[last] for t in cached["ttft_s"]),
        "long_chat_ttft_s_without_prefix_cache": statistics.median(
            t[last] for t in plain["ttft_s"]
        ),
        "ttft_s_by_turn": [statistics.median(t[i] for t in cached["ttft_s"]) for i in range(TURNS)],
        "ttft_s_by_turn_without_prefix_cache": [
            statistics.median(t[i] for t in plain["ttft_s"]) for i in range(TURNS)
        ],
        "answers_identical": f"{same}/{args.chats * TURNS}",
        "reused_prefix_tokens": cached["reused_prefix_tokens"],
        "peak_rss_mb": cached["peak_rss_mb"],
        "peak_rss_mb_without_prefix_cache": plain["peak_rss_mb"],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    figures = {
        "long_chat_ttft_s": report["long_chat_ttft_s"],
        "long_chat_ttft_s_without_prefix_cache": report["long_chat_ttft_s_without_prefix_cache"],
        "long_chat_peak_rss_mb": report["peak_rss_mb"],
    }
    record_figures(figures, report["command"])
    print(json.dumps({k: v for k, v in report.items() if "by_turn" not in k}, indent=2))


if __name__ == "__main__":
    main()
