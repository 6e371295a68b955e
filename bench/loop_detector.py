"""The loop detector's settings, checked on the project's own prompts (never IFEval).

    .venv/bin/python -m bench.loop_detector [--home DIR]     # ~5 minutes on 2 cores

The instruction suite's dev split is answered once by the default engine with loops left to
run to the 1,024-token cap (greedy, the eval settings otherwise); then each detector setting is
replayed on those answers: the answer is fed to `LoopDetector` a few characters at a time, cut
where it fires, and graded again. Greedy decoding makes a cut answer a prefix of the uncut
one, so the replay is what `stop_loops` would have produced. Reported per setting: grades
changed against the uncut answers (the figure that must stay small), answers cut, characters
saved. Writes docs/benchmarks/loop_detector.json. `bench.ifeval` then reads the chosen
setting's effect on IFEval, once, as a report.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

from tandem.engines import loops

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "benchmarks" / "loop_detector.json"
MODEL = "smollm2-135m-instruct"
PIECE = 4  # characters per feed, about a token
# name -> module constants it sets; "current" is what tandem ships.
SETTINGS: dict[str, dict[str, int]] = {
    "until 2026-12: units up to 200 characters, 4 copies": {
        "MAX_UNIT": 200, "MAX_SHORT_UNIT": 200, "MIN_REPEATS": 4,
    },
    "short units 4 copies, long units 3": {"MIN_REPEATS": 4},
    "short units 6 copies, long units 3": {"MIN_REPEATS": 6},
    "current: short units 8 copies, long units 3": {},
    "short units 12 copies, long units 3": {"MIN_REPEATS": 12},
    "short units 8 copies, long units 4": {"LONG_REPEATS": 4},
    "short units 8 copies, loops span 400 characters": {"MIN_SPAN": 400},
}  # fmt: skip
TUNABLE = ("MAX_UNIT", "MAX_SHORT_UNIT", "MIN_REPEATS", "LONG_REPEATS", "MIN_SPAN")


def cut_point(text: str) -> int | None:
    detector = loops.LoopDetector()
    for end in range(PIECE, len(text) + PIECE, PIECE):
        if detector.feed(text[end - PIECE : end]):
            return min(end, len(text))
    return None


def configure(values: dict[str, int]) -> None:
    for name, value in values.items():
        setattr(loops, name, value)
    loops.WINDOW = loops.tail_needed()


def replay(task: Any, examples: list, answers: list[str], setting: dict[str, int]) -> dict:
    saved = {k: getattr(loops, k) for k in TUNABLE}
    configure(setting)
    try:
        changed, cut, chars_saved, flips = 0, 0, 0, []
        for example, answer in zip(examples, answers, strict=True):
            at = cut_point(answer)
            if at is None:
                continue
            cut += 1
            chars_saved += len(answer) - at
            if task.grade(example, answer[:at]).passed != task.grade(example, answer).passed:
                changed += 1
                flips.append(example.id)
        return {
            "answers_cut": cut,
            "grade_changes": changed,
            "grade_change_rate": round(changed / len(examples), 4),
            "chars_saved": chars_saved,
            "changed_ids": flips,
        }
    finally:
        configure(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, default=Path.home() / ".cache" / "tandem" / "bench" / "ifeval-home"
    )
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TANDEM_HOME"] = str(args.home)

    from tandem.core.settings import Settings
    from tandem.engines.setup import build_catalog
    from tandem.evals.runs import EVAL_SAMPLING, generate_answers
    from tandem.evals.tasks import get_task
    from tandem.registry.embedded import prepare_embedded_model

    settings = Settings.from_env()
    prepare_embedded_model(settings.home)
    task = get_task("instructions", split="dev")
    examples = list(task.examples())
    cache = args.home / "loop-detector-answers.json"
    if cache.exists() and json.loads(cache.read_text())["ids"] == [e.id for e in examples]:
        answers = json.loads(cache.read_text())["answers"]
    else:
        catalog = build_catalog(settings)
        params = dataclasses.replace(EVAL_SAMPLING, stop_loops=False)
        try:
            done = asyncio.run(generate_answers(catalog.get(MODEL), examples, params))
        finally:
            catalog.close()
        answers = [c.text for c in done]
        cache.write_text(json.dumps({"ids": [e.id for e in examples], "answers": answers}))
    report = {
        "date": datetime.date.today().isoformat(),
        "data": f"instructions suite, dev split ({len(examples)} prompts), answered to the "
        "1,024-token cap (greedy, no repetition penalty)",
        "settings": {
            name: {**s, **replay(task, examples, answers, s)} for name, s in SETTINGS.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in report["settings"].items():
        print(name, {k: v for k, v in row.items() if k != "changed_ids"})


if __name__ == "__main__":
    main()
