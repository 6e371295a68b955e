"""Answer quality: agreement with the transformers fp32 reference, and instruction checks.

Agreement is measured on text, not token ids, because the default engine is measured through
`Engine.stream`, which yields text: the matched prefix is the longest run of the reference's
tokens whose decoded text is a prefix of the engine's answer. Quantized weights make greedy
decoding diverge eventually; the question is how early.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.prompts import Prompt


def matched_prefix(
    reference_ids: list[int], answer: str, decode: Callable[[list[int]], str]
) -> int:
    """How many of the reference's first tokens the answer reproduces before diverging."""
    best = 0
    for k in range(1, len(reference_ids) + 1):
        # A partial UTF-8 character decodes to U+FFFD and fails here, yet the next k can match
        # again, so the scan keeps going rather than stopping at the first failure.
        if answer.startswith(decode(reference_ids[:k])):
            best = k
    return best


def score_quality(
    results: dict[str, dict], reference: list[dict], prompts: tuple[Prompt, ...], hf_dir: Path
) -> None:
    """Add a `quality` section to every engine's result (the reference scores itself: 1.0)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True)

    for result in results.values():
        answers = result.get("quality_answers")
        if answers is None:
            continue
        fractions, exact, per_prompt = [], 0, []
        checks_passed, checks = 0, 0
        for prompt, ref, ans in zip(prompts, reference, answers, strict=True):
            ref_ids = ref["ids"]
            k = matched_prefix(ref_ids, ans["text"], decode) if ref_ids else 0
            fraction = k / len(ref_ids) if ref_ids else float(ans["text"] == "")
            fractions.append(fraction)
            same = ans["text"].strip() == ref["text"].strip()
            exact += same
            entry = {"prompt": prompt.text, "prefix_agreement": round(fraction, 3), "exact": same}
            if prompt.check is not None:
                ok = bool(prompt.check(ans["text"]))
                checks += 1
                checks_passed += ok
                entry[f"check:{prompt.check_name}"] = ok
            entry["answer"] = ans["text"]
            per_prompt.append(entry)
        result["quality"] = {
            "prompts": len(fractions),
            "mean_prefix_agreement": round(sum(fractions) / len(fractions), 3),
            "exact_match_rate": round(exact / len(fractions), 3),
            "instruction_checks": checks,
            "instruction_pass_rate": round(checks_passed / checks, 3) if checks else None,
            "per_prompt": per_prompt,
        }
        # The raw answers are in per_prompt now; ids are only needed for scoring.
        del result["quality_answers"]
