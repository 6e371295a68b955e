"""LoRA adapters served over one shared ONNX base model: a candidate costs its adapter, not a
second model. The engine's graph has a low-rank branch beside every projection
(`tandem.engines.onnx_graph.add_lora_branches`); this module turns adapters into what those
branches are fed.

A PEFT adapter (`adapter_config.json` + `adapter_model.safetensors`) becomes A = lora_A.T and
B = scale * lora_B.T per projection; the packed q/k/v projection gets the three concatenated
along the rank (B block-diagonal). An adapter trained on another adapter version (a chain) is
the concatenation of the chain's branches along the rank: x A1 B1 + x A2 B2 = x [A1 A2] [B1; B2].

A batch is fed its adapters' ranks side by side and a mask per row that keeps the row's own
(`AdapterSet`): the segmented idea of S-LoRA/Punica's batched LoRA, done with a plain MatMul
and a Mul. The base model itself runs with rank 0: an empty branch that adds nothing.

    weights = load_adapter_chain([adapter_dir], engine.lora_sites)   # per adapter version
    engine.adapters.add("my-lora-v1", weights)
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tandem.engines.onnx_graph import LoraSite

_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight$")


class AdapterNotServable(ValueError):
    """An adapter this engine cannot apply over its base (the version needs merged weights)."""


# site key -> (A [K, r], B [r, N]); r may be 0 for a site the adapter does not touch
AdapterWeights = dict[str, tuple[np.ndarray, np.ndarray]]


def empty_branches(sites: dict[str, LoraSite]) -> AdapterWeights:
    """Rank 0 everywhere: the base model."""
    return {
        key: (
            np.zeros((site.in_features, 0), np.float32),
            np.zeros((0, site.out_features), np.float32),
        )
        for key, site in sites.items()
    }


def _read_peft(adapter_dir: Path) -> tuple[float, dict[tuple[int, str], dict[str, np.ndarray]]]:
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise AdapterNotServable("only plain LoRA adapters are served over a shared base")
    if config.get("modules_to_save") or config.get("lora_bias"):
        raise AdapterNotServable("the adapter trains whole modules or biases: merge it instead")
    rank = int(config["r"])
    alpha = float(config.get("lora_alpha", rank))
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise AdapterNotServable("per-module ranks are not served over a shared base")
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    modules: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, value in tensors.items():
        match = _PEFT_KEY.match(name)
        if match is None:
            raise AdapterNotServable(f"the adapter changes {name}, which has no LoRA branch here")
        layer, module, which = match.groups()
        modules.setdefault((int(layer), module), {})[which] = value.astype(np.float32)
    return scale, modules


def load_adapter_chain(adapter_dirs: list[Path], sites: dict[str, LoraSite]) -> AdapterWeights:
    """The branches of a chain of adapters (base first), ready to feed as A and B."""
    by_module = {
        (int(key.split("/")[0]), module): (key, i)
        for key, site in sites.items()
        for i, (module, _) in enumerate(site.parts)
    }
    per_site: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {key: [] for key in sites}
    for adapter_dir in adapter_dirs:
        scale, modules = _read_peft(adapter_dir)
        for (layer, module), pair in modules.items():
            if (layer, module) not in by_module or set(pair) != {"A", "B"}:
                raise AdapterNotServable(f"the adapter's {module} of layer {layer} has no branch")
        for key, site in sites.items():
            layer = int(key.split("/")[0])
            used = [
                (i, modules[(layer, m)])
                for i, (m, _) in enumerate(site.parts)
                if (layer, m) in modules
            ]
            if not used:
                continue
            offsets = np.cumsum([0] + [n for _, n in site.parts])
            a = np.concatenate([p["A"].T for _, p in used], axis=1)  # [K, sum r]
            b = np.zeros((a.shape[1], site.out_features), np.float32)
            row = 0
            for i, pair in used:
                r = pair["A"].shape[0]
                b[row : row + r, offsets[i] : offsets[i + 1]] = scale * pair["B"].T
                row += r
            if a.shape[0] != site.in_features:
                raise AdapterNotServable(f"the adapter's shapes do not match the base at {key}")
            per_site[key].append((a, b))
    weights = empty_branches(sites)
    for key, branches in per_site.items():
        if branches:
            weights[key] = (
                np.ascontiguousarray(np.concatenate([a for a, _ in branches], axis=1)),
                np.ascontiguousarray(np.concatenate([b for _, b in branches], axis=0)),
            )
    return weights


def adapter_nbytes(weights: AdapterWeights) -> int:
    return sum(a.nbytes + b.nbytes for a, b in weights.values())


@dataclass
class _Group:
    """The branches' inputs for a batch of these adapters: A and B with their ranks side by
    side, and where each adapter's part of the rank is (per site)."""

    values: dict[str, tuple[ort.OrtValue, ort.OrtValue]]
    spans: dict[str, dict[str | None, tuple[int, int]]]
    ones: dict[str, ort.OrtValue]  # the mask of a batch of one adapter: all of R


def _value(matrix: np.ndarray) -> ort.OrtValue:
    # Wraps the array without a copy (and keeps a reference to it).
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(matrix))


class AdapterSet:
    """The adapters an engine serves, as the inputs of its graph's branches. The scheduler
    thread asks for values; requests' threads add and remove adapters.

    A batch whose rows use adapters a1..am (the base counts, with rank 0) is fed A = [A1 .. Am]
    and B = [B1; ..; Bm] once per such group (no copy for a group of one adapter besides the
    base) and a mask per row: the cost of a step grows with the group's total rank, not with
    the rows, and a request joining or leaving rebuilds only the small masks."""

    GROUPS_KEPT = 4

    def __init__(self, sites: dict[str, LoraSite]) -> None:
        self._weights: dict[str | None, AdapterWeights] = {None: empty_branches(sites)}
        self._groups: OrderedDict[tuple[str | None, ...], _Group] = OrderedDict()
        self._batch: tuple[tuple[str | None, ...], dict[str, tuple[ort.OrtValue, ...]]] | None
        self._batch = None
        self._lock = threading.Lock()

    def __contains__(self, name: str | None) -> bool:
        return name in self._weights

    def add(self, name: str, weights: AdapterWeights) -> None:
        self._weights[name] = weights

    def remove(self, name: str) -> None:
        with self._lock:
            self._weights.pop(name, None)
            for members in [m for m in self._groups if name in m]:
                del self._groups[members]
            if self._batch is not None and name in self._batch[0]:
                self._batch = None

    def values_for(self, rows: tuple[str | None, ...]) -> dict[str, tuple[ort.OrtValue, ...]]:
        """A, B and M for each site, for a batch whose rows use `rows`' adapters."""
        with self._lock:
            if self._batch is not None and self._batch[0] == rows:
                return self._batch[1]
            members = tuple(dict.fromkeys(rows))
            group = self._group(members)
            values: dict[str, tuple[ort.OrtValue, ...]] = {}
            for key, (a, b) in group.values.items():
                if len(members) == 1:
                    mask = group.ones[key]
                else:
                    rank = a.shape()[1]
                    matrix = np.zeros((len(rows), 1, rank), np.float32)
                    for i, name in enumerate(rows):
                        start, end = group.spans[key][name]
                        matrix[i, 0, start:end] = 1
                    mask = _value(matrix)
                values[key] = (a, b, mask)
            self._batch = (rows, values)
            return values

    def _group(self, members: tuple[str | None, ...]) -> _Group:
        if members in self._groups:
            self._groups.move_to_end(members)
            return self._groups[members]
        values, spans, ones = {}, {}, {}
        for key in self._weights[None]:
            pairs = [(name, *self._weights[name][key]) for name in members]
            used = [(a, b) for _, a, b in pairs if a.shape[1]]
            if len(used) == 1:  # one adapter (and the base): its own arrays, no copy
                a, b = used[0]
            else:
                a = np.concatenate([a for _, a, _ in pairs], axis=1)
                b = np.concatenate([b for _, _, b in pairs], axis=0)
            offsets = np.cumsum([0] + [a.shape[1] for _, a, _ in pairs])
            spans[key] = {
                name: (int(offsets[i]), int(offsets[i + 1])) for i, (name, _, _) in enumerate(pairs)
            }
            values[key] = (_value(a), _value(b))
            ones[key] = _value(np.ones((1, 1, a.shape[1]), np.float32))
        group = _Group(values, spans, ones)
        self._groups[members] = group
        while len(self._groups) > self.GROUPS_KEPT:
            self._groups.popitem(last=False)
        return group
