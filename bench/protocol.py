"""What every engine adapter implements, and the values passed between the bench and a worker.

An adapter wraps one engine the way a server built on it would use it. The bench asks it for
two things only: one answer (`generate`), and many answers to requests submitted at the same
instant (`generate_concurrent`), where the adapter chooses the engine's best server-side
strategy and says which in `concurrency_mode`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer


@dataclass(frozen=True)
class Request:
    """One chat request, already rendered with the model's chat template and tokenized.

    Every engine gets the same token ids; the default engine renders `messages` itself (that is
    the path the server uses), and the bench checks that it renders the same prompt.
    """

    messages: list[dict[str, str]]
    prompt: str
    ids: list[int]


@dataclass
class Result:
    text: str
    n_tokens: int
    # Seconds from submission to the first generated token, and to the last one.
    ttft_s: float
    latency_s: float
    ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Artifacts:
    """The same weights in every engine's format; built once by `bench.artifacts`."""

    hf_dir: Path
    # The registry's ONNX model (what the default engine serves) and its precision, and the
    # builder's other precision, built by the bench for comparison.
    onnx_default_dir: Path
    onnx_default_precision: str
    onnx_alt_dir: Path | None
    onnx_alt_precision: str
    ct2_int8_dir: Path
    gguf_path: Path

    def to_dict(self) -> dict[str, str | None]:
        return {k: (str(v) if v is not None else None) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifacts:
        def value(key: str, v: str | None) -> Path | str | None:
            return v if v is None or key.endswith("_precision") else Path(v)

        return cls(**{k: value(k, v) for k, v in d.items()})


class Stopwatch:
    """Times one request: call `token()` for each generated token, `result()` at the end."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.perf_counter() if start is None else start
        self.first: float | None = None
        self.ids: list[int] = []

    def token(self, token_id: int | None = None) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        if token_id is not None:
            self.ids.append(token_id)

    def result(self, text: str, n_tokens: int | None = None) -> Result:
        end = time.perf_counter()
        first = self.first if self.first is not None else end
        return Result(
            text=text,
            n_tokens=len(self.ids) if n_tokens is None else n_tokens,
            ttft_s=first - self.start,
            latency_s=end - self.start,
            ids=list(self.ids),
        )


class Adapter(ABC):
    """One engine, loaded in its own worker process so its peak memory is its own."""

    # Short key used on the command line (`--engines`) and in the JSON.
    key: str = ""
    label: str = ""
    weights: str = ""
    # How 16 simultaneous requests are served: the strategy a server on this engine would use.
    concurrency_mode: str = ""
    # Whether `generate(..., ignore_eos=True)` really ignores EOS; the default engine goes
    # through `Engine.stream`, which always stops at EOS (the throughput prompts are long).
    can_ignore_eos: bool = True

    def __init__(self, artifacts: Artifacts, threads: int, eos_ids: list[int]) -> None:
        self.artifacts = artifacts
        self.threads = threads
        self.eos_ids = set(eos_ids)

    @abstractmethod
    def load(self) -> None:
        """Import the engine and load the weights (timed as the load time)."""

    @abstractmethod
    def generate(self, request: Request, max_new_tokens: int, ignore_eos: bool) -> Result:
        """Greedy answer to one request."""

    @abstractmethod
    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        """Greedy answers to requests all submitted now, EOS ignored; TTFT from submission."""

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @property
    def tokenizer(self) -> Tokenizer:
        if not hasattr(self, "_tokenizer"):
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.artifacts.hf_dir / "tokenizer.json"))
        return self._tokenizer

    def close(self) -> None:
        """Release threads and sessions."""
