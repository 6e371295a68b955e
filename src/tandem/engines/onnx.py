"""The default embedded engine: onnxruntime with tandem's own continuous batching.

Why not onnxruntime-genai's own loop: its batching Engine needs a PagedAttention model, which
its builder makes only for CUDA, and one og.Generator per request does not batch (8 streams:
145 tok/s in total, against 488 for this loop; docs/architecture.md). Design:

* One scheduler thread owns the ONNX session. Each request holds a *slot*: a row of KV-cache
  buffers shaped [max_batch, kv_heads, capacity, head_dim], one pair per layer. The buffers
  are bound as both past and present (past_present_share_buffer), so GroupQueryAttention
  appends to them in place and nothing is copied per step.
* Active requests always occupy slots 0..n-1, so one decode step runs the contiguous rows
  [0:n] as one batch of n. When a request finishes, the last slot moves into its hole (one
  copy of that request's KV prefix, not per step).
* Every iteration admits waiting requests (prefill, in chunks so long prompts do not stall the
  others for long), then runs one decode step for all active requests: concurrent requests
  share steps instead of queueing behind each other's whole answers.
* A finished request's keys and values are kept in a prefix cache (`tandem.engines.prefix_cache`,
  `prefix_cache_mb`), so a conversation's next turn, or a regenerate, copies its history's
  cache into the new slot and prefills only the new tokens.
* LoRA adapter versions run over the same weights (`tandem.engines.onnx_lora`): each request
  names its adapter (or none); a decode step gives every row its own low-rank branch.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.base import (
    Chunk,
    EncodedPrompt,
    Engine,
    EngineError,
    ModelInfo,
    ensure_fits,
    relay,
)
from tandem.engines.onnx_graph import serving_graphs, session_options
from tandem.engines.onnx_lora import AdapterSet
from tandem.engines.prefix_cache import PrefixCache
from tandem.engines.sampling import sample_token
from tandem.engines.text import ChatTemplate, IncrementalDecoder, StopMatcher

PREFILL_CHUNK = 256
BASE_CAPACITY = 1024
# Shorter sequences prefill in a blink: not worth a copy into the prefix cache and back.
MIN_CACHED_PREFIX = 64
DEFAULT_PREFIX_CACHE_MB = 512
NO_TOKENS = np.empty(0, dtype=np.int64)  # what a repetition penalty of 1.0 needs to see


@dataclass(eq=False)
class _Request:
    prompt_ids: list[int]
    rendered_prompt: str
    params: SamplingParams
    seed: int
    emit: Callable[[Chunk | BaseException], None]
    decoder: IncrementalDecoder
    stopper: StopMatcher
    rng: np.random.Generator = field(init=False)
    cancelled: bool = False
    slot: int = -1
    cached: int = 0  # tokens whose keys/values are in the slot's cache
    next_token: int = -1  # sampled, not yet fed to the model
    generated: list[int] = field(default_factory=list)
    adapter: str | None = None  # the LoRA adapter this request runs with (None: the base)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def seen(self) -> np.ndarray:
        return np.unique(np.fromiter(self.prompt_ids + self.generated, dtype=np.int64))


class OnnxEngine(Engine):
    """Serves an onnxruntime-genai-built decoder (GroupQueryAttention, shared KV buffers)."""

    backend = "onnx"
    max_context: int  # always known: the model's own context, or less

    def __init__(
        self,
        model_dir: Path,
        model_id: str,
        max_batch: int = 16,
        max_context: int = 4096,
        threads: int | None = None,
        prefix_cache_mb: int = DEFAULT_PREFIX_CACHE_MB,
        lora_branches: bool = True,
    ) -> None:
        super().__init__(model_id)
        model_dir = Path(model_dir)
        config = json.loads((model_dir / "genai_config.json").read_text())["model"]
        decoder = config["decoder"]
        self.num_layers: int = decoder["num_hidden_layers"]
        self.kv_heads: int = decoder["num_key_value_heads"]
        self.head_size: int = decoder["head_size"]
        eos = config["eos_token_id"]
        self.eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
        self.max_batch = max_batch
        self.max_context = min(max_context, config.get("context_length", max_context))

        options = session_options(model_dir, threads)
        # No LoRA branches until an adapter is served: they cost production (adapters.json).
        plain, self._branched_graph, self.lora_sites = serving_graphs(
            model_dir / decoder["filename"], lora_branches
        )
        self.session = ort.InferenceSession(plain, options, providers=["CPUExecutionProvider"])
        self._options = options
        self._branched, self._pending_session = False, None  # `serve_adapters`
        self.adapters = AdapterSet(self.lora_sites)  # the base's own (rank 0) to start
        self._bound_adapters: tuple[str | None, ...] | None = None  # as `_bound_rows`
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.template = ChatTemplate.from_model_dir(model_dir)

        # The KV buffers' length is their *capacity*, not max_context: GroupQueryAttention's
        # cost grows with the bound buffer length (at batch 8: 405 tok/s with 1024, 225 with
        # 4096), so buffers start short, double when a request needs more, and shrink back
        # when the engine goes idle.
        self._capacity = 0
        self._cache: list[tuple[np.ndarray, np.ndarray]] = []
        self._bound_rows: tuple[int, int] | None = None  # the rows `_binding` has bound
        self._resize_cache(min(BASE_CAPACITY, self.max_context), keep_rows=0)
        self._active: list[_Request] = []
        self._waiting: deque[_Request] = deque()
        self.prefix_cache = PrefixCache(prefix_cache_mb * 2**20)
        self.reused_prefix_tokens = 0  # prompt tokens served from the prefix cache, in all
        self._wakeup = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"onnx-{model_id}", daemon=True)
        self._thread.start()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(id=self.model_id, backend=self.backend)

    def render_prompt(self, messages: Sequence[Message], continue_final: bool = False) -> str:
        return self.template.render(messages, continue_final=continue_final)

    # ---- public API -------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def serve_adapters(self) -> None:
        """Switch to the graph with LoRA branches (once, before the first adapter is added):
        built here, swapped in by the scheduler between steps (the KV buffers are the engine's,
        so requests in flight go on)."""
        if not self.lora_sites:
            raise EngineError("this model's graph has no projections to serve adapters on")
        if self._branched or self._pending_session is not None:
            return
        session = ort.InferenceSession(
            self._branched_graph, self._options, providers=["CPUExecutionProvider"]
        )
        with self._wakeup:
            if not self._branched and self._pending_session is None:
                self._pending_session = session
                self._wakeup.notify()

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams
    ) -> AsyncGenerator[Chunk, None]:
        async for chunk in self.stream_with(prompt, params, adapter=None):
            yield chunk

    async def stream_with(
        self, prompt: EncodedPrompt, params: SamplingParams, adapter: str | None
    ) -> AsyncGenerator[Chunk, None]:
        """`stream` with the LoRA adapter `adapter` (added to `adapters`), None for the base."""
        if adapter not in self.adapters:
            raise EngineError(f"adapter {adapter!r} is not loaded")
        assert prompt.text is not None and prompt.token_ids is not None  # from self.encode
        ids = list(prompt.token_ids)
        ensure_fits(len(ids), self.max_context)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

        def emit(item: Chunk | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                # The caller's event loop closed without closing this stream: nobody listens
                # any more. Cancel quietly; raising here would kill the scheduler thread, and
                # with it every other request.
                request.cancelled = True

        request = _Request(
            prompt_ids=ids,
            rendered_prompt=prompt.text,
            params=params,
            seed=params.seed if params.seed is not None else secrets.randbelow(2**31),
            emit=emit,
            decoder=IncrementalDecoder(self.tokenizer),
            stopper=StopMatcher(params.stop),
            adapter=adapter,
        )
        self._submit(request)

        def abandon() -> None:
            request.cancelled = True
            with self._wakeup:
                self._wakeup.notify()

        async for chunk in relay(queue, abandon):
            yield chunk

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join(timeout=5)

    # ---- scheduler --------------------------------------------------------------------------

    def _submit(self, request: _Request) -> None:
        with self._wakeup:
            if self._closed:
                raise EngineError("engine is closed")
            self._waiting.append(request)
            self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._closed and not self._waiting and not self._active:
                    if self._capacity > BASE_CAPACITY:
                        self._resize_cache(BASE_CAPACITY, keep_rows=0)
                    self._wakeup.wait()
                if self._closed:
                    break
                if self._pending_session is not None:  # adapters from now on (`serve_adapters`)
                    self.session, self._pending_session = self._pending_session, None
                    self._branched, self._bound_rows = True, None
                admitted: list[_Request] = []
                while self._waiting and len(self._active) + len(admitted) < self.max_batch:
                    admitted.append(self._waiting.popleft())
            try:
                for request in admitted:
                    self._admit(request)
                self._drop_cancelled()
                if self._active:
                    self._decode_step()
            except Exception as exc:  # reported to every affected caller
                failed = self._active
                self._active = []
                for request in failed:
                    request.emit(EngineError(f"generation failed: {exc}"))
        for request in [*self._active, *self._waiting]:
            request.emit(EngineError("engine closed"))

    def _admit(self, request: _Request) -> None:
        if request.cancelled:
            self._finish_unslotted(request, "cancelled")
            return
        ids = request.prompt_ids
        self._ensure_capacity(len(ids) + 1)
        request.slot = len(self._active)
        self._active.append(request)
        request.cached = self._reuse_prefix(request)
        logits = None
        # Chunked prefill: each chunk attends to the cached prefix of the earlier chunks.
        for start in range(request.cached, len(ids), PREFILL_CHUNK):
            chunk = np.asarray([ids[start : start + PREFILL_CHUNK]], dtype=np.int64)
            total = start + chunk.shape[1]
            mask = np.ones((1, total), dtype=np.int64)
            logits = self._forward(request.slot, 1, chunk, mask)
            request.cached = total
        assert logits is not None
        self._accept(request, logits[0, -1].copy())

    def _reuse_prefix(self, request: _Request) -> int:
        """Copy the cached keys/values of the longest known prefix of the prompt into the
        request's slot; returns how many tokens need no prefill. The last prompt token is
        always run, for the logits of the first answer token."""
        entry, common = self.prefix_cache.longest(request.prompt_ids, request.adapter)
        common = min(common, len(request.prompt_ids) - 1)
        if entry is None or common < MIN_CACHED_PREFIX:
            return 0
        for layer, (keys, values) in enumerate(self._cache):
            keys[request.slot, :, :common] = entry.kv[layer, 0, :, :common]
            values[request.slot, :, :common] = entry.kv[layer, 1, :, :common]
        self.reused_prefix_tokens += common
        return common

    def _park(self, request: _Request) -> None:
        """Keep a finished request's keys/values for a later request with the same prefix."""
        length = request.cached
        if length < MIN_CACHED_PREFIX or self.prefix_cache.budget_bytes <= 0:
            return
        kv = np.stack(
            [
                np.stack([keys[request.slot, :, :length], values[request.slot, :, :length]])
                for keys, values in self._cache
            ]
        )
        self.prefix_cache.put(
            (request.prompt_ids + request.generated)[:length], kv, request.adapter
        )

    def _decode_step(self) -> None:
        rows = self._active
        n = len(rows)
        ids = np.asarray([[r.next_token] for r in rows], dtype=np.int64)
        lengths = np.asarray([r.cached + 1 for r in rows])
        self._ensure_capacity(int(lengths.max()))
        mask = (np.arange(lengths.max()) < lengths[:, None]).astype(np.int64)
        logits = self._forward(0, n, ids, mask)
        for i, request in enumerate(list(rows)):
            request.cached += 1
            self._accept(request, logits[i, -1].copy())
        self._release_finished()

    def _forward(self, first_slot: int, n: int, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Run rows [first_slot, first_slot+n) with their KV buffers bound in place."""
        rows = (first_slot, n)
        if self._bound_rows != rows:
            # 120 buffer bindings: made once per batch shape, not every step (decode steps
            # repeat the same rows until a request joins or leaves).
            self._binding = self.session.io_binding()
            for layer, (keys, values) in enumerate(self._cache):
                for kind, buffer in (("key", keys), ("value", values)):
                    view = buffer[first_slot : first_slot + n]
                    args = ("cpu", 0, np.float32, list(view.shape), view.ctypes.data)
                    self._binding.bind_input(f"past_key_values.{layer}.{kind}", *args)
                    self._binding.bind_output(f"present.{layer}.{kind}", *args)
            self._binding.bind_output("logits", "cpu")
            self._bound_rows = rows
            self._bound_adapters = None
        adapters = tuple(r.adapter for r in self._active[first_slot : first_slot + n])
        if self._branched and adapters != self._bound_adapters:
            # Bound until the batch's adapters change (a request joins or leaves), like the
            # cache buffers: not 2 inputs per projection on every step.
            for key, (a, b, rows_mask) in self.adapters.values_for(adapters).items():
                site = self.lora_sites[key]
                self._binding.bind_ortvalue_input(site.a_input, a)
                self._binding.bind_ortvalue_input(site.b_input, b)
                self._binding.bind_ortvalue_input(site.mask_input, rows_mask)
            self._bound_adapters = adapters
        binding = self._binding
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        self.session.run_with_iobinding(binding)
        # Only the logits are copied out; the cache outputs alias the slot buffers.
        return binding.get_outputs()[-1].numpy()

    def _accept(self, request: _Request, logits: np.ndarray) -> None:
        """Sample the next token for a request and stream its text; mark it done if finished."""
        params = request.params
        seen = request.seen() if params.repetition_penalty != 1.0 else NO_TOKENS
        token = sample_token(logits, params, request.rng, seen)
        if token in self.eos_ids:
            request.next_token = -1
            self._finish(request, "stop")
            return
        request.generated.append(token)
        text, hit_stop = request.stopper.feed(request.decoder.push(token))
        if text:
            request.emit(Chunk(text=text))
        if hit_stop:
            self._finish(request, "stop")
        elif len(request.generated) >= params.max_tokens or request.cached + 1 >= self.max_context:
            self._finish(request, "length")
        elif request.cancelled:
            self._finish(request, "cancelled")
        else:
            request.next_token = token

    def _final_chunk(self, request: _Request, reason: str) -> Chunk:
        return Chunk(
            finish_reason=reason,
            usage=Usage(len(request.prompt_ids), len(request.generated)),
            rendered_prompt=request.rendered_prompt,
            seed=request.seed,
        )

    def _finish(self, request: _Request, reason: str) -> None:
        if reason != "stop" or not request.stopper.stops:
            tail = request.stopper.flush()
            if tail:
                request.emit(Chunk(text=tail))
        request.emit(self._final_chunk(request, reason))
        request.next_token = -1

    def _finish_unslotted(self, request: _Request, reason: str) -> None:
        request.emit(self._final_chunk(request, reason))

    def _drop_cancelled(self) -> None:
        for request in self._active:
            if request.cancelled and request.next_token != -1:
                self._finish(request, "cancelled")
        self._release_finished()

    def _release_finished(self) -> None:
        """Free the slots of finished requests, keeping active ones in slots 0..n-1."""
        i = 0
        while i < len(self._active):
            request = self._active[i]
            if request.next_token != -1:
                i += 1
                continue
            self._park(request)
            last = self._active.pop()
            if last is not request:
                self._move_slot(last, request.slot)
                self._active[i] = last
            # Else the finished request was the last one and is simply gone.

    def _ensure_capacity(self, tokens: int) -> None:
        if tokens > self._capacity:
            capacity = self._capacity
            while capacity < tokens:
                capacity *= 2
            self._resize_cache(min(capacity, self.max_context), keep_rows=len(self._active))

    def _resize_cache(self, capacity: int, keep_rows: int) -> None:
        """Reallocate the KV buffers with a new length, keeping the first `keep_rows` slots."""
        shape = (self.max_batch, self.kv_heads, capacity, self.head_size)
        old, kept = self._cache, min(self._capacity, capacity)
        # np.zeros maps untouched pages lazily, so memory grows with tokens actually cached.
        self._cache = [
            (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
            for _ in range(self.num_layers)
        ]
        for (new_k, new_v), (old_k, old_v) in zip(self._cache, old, strict=False):
            new_k[:keep_rows, :, :kept] = old_k[:keep_rows, :, :kept]
            new_v[:keep_rows, :, :kept] = old_v[:keep_rows, :, :kept]
        self._capacity = capacity
        self._bound_rows = None  # new buffers: bind again

    def _move_slot(self, request: _Request, slot: int) -> None:
        length = request.cached
        for keys, values in self._cache:
            keys[slot, :, :length] = keys[request.slot, :, :length]
            values[slot, :, :length] = values[request.slot, :, :length]
        request.slot = slot
