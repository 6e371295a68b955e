"""LoRA adapters served over one shared ONNX base model: a candidate costs its adapter, not a
second model. The engine's graph has a low-rank branch beside every projection
(`tandem.engines.onnx_graph.add_lora_branches`); this module turns adapters into what those
branches are fed.

A PEFT adapter (`adapter_config.json` + `adapter_model.safetensors`) becomes A = lora_A.T and
B = scale * lora_B.T per projection; the packed q/k/v projection gets the three concatenated
along the rank (B block-diagonal). An adapter trained on another adapter version (a chain) is
the concatenation of the chain's branches along the rank: x A1 B1 + x A2 B2 = x [A1 A2] [B1; B2].

A batch feeds `rows` = 1 when every request in it uses the same adapter (it broadcasts over the
batch, no copy), or one row per request when they differ (each row its own A and B,
zero-padded to the largest rank: the batched-LoRA idea of S-LoRA/Punica, done with a plain
batched MatMul). The base model itself runs with rank 0: an empty branch that adds nothing.

    weights = load_adapter_chain([adapter_dir], engine.lora_sites)   # per adapter version
    engine.adapters.add("my-lora-v1", weights)
"""

from __future__ import annotations

import json
import math
import re
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


def stack_rows(rows: list[AdapterWeights]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row branches for a batch whose rows use different adapters: [rows, K, r_max] and
    [rows, r_max, N], each row's own matrices zero-padded to the largest rank (zeros add
    nothing, so a shorter adapter, or the base, answers as alone)."""
    stacked = {}
    for key in rows[0]:
        rank = max(w[key][0].shape[1] for w in rows)
        k, n = rows[0][key][0].shape[0], rows[0][key][1].shape[1]
        a = np.zeros((len(rows), k, rank), np.float32)
        b = np.zeros((len(rows), rank, n), np.float32)
        for i, weights in enumerate(rows):
            wa, wb = weights[key]
            a[i, :, : wa.shape[1]] = wa
            b[i, : wb.shape[0]] = wb
        stacked[key] = (a, b)
    return stacked


def adapter_nbytes(weights: AdapterWeights) -> int:
    return sum(a.nbytes + b.nbytes for a, b in weights.values())


class AdapterSet:
    """The adapters an engine serves, as the OrtValues fed to its graph's branches. Only the
    engine's scheduler thread asks for values; adding and removing are single dict writes."""

    def __init__(self, sites: dict[str, LoraSite]) -> None:
        self._weights: dict[str | None, AdapterWeights] = {None: empty_branches(sites)}
        self._values: dict[str | None, dict[str, tuple[ort.OrtValue, ort.OrtValue]]] = {}
        self._mixed: tuple[tuple[str | None, ...], dict[str, tuple[ort.OrtValue, ...]]] | None
        self._mixed = None
        self._values[None] = self._as_values(self._weights[None], batched=False)

    def __contains__(self, name: str | None) -> bool:
        return name in self._weights

    def add(self, name: str, weights: AdapterWeights) -> None:
        self._values[name] = self._as_values(weights, batched=False)
        self._weights[name] = weights

    def remove(self, name: str) -> None:
        self._weights.pop(name, None)
        self._values.pop(name, None)

    def values_for(self, rows: tuple[str | None, ...]) -> dict[str, tuple[ort.OrtValue, ...]]:
        """The branches' inputs for a batch whose rows use `rows`' adapters: one adapter's
        batch-1 values (broadcast), or every row its own, stacked and kept while the batch
        stays the same."""
        if len(set(rows)) == 1:
            return dict(self._values[rows[0]])
        if self._mixed is None or self._mixed[0] != rows:
            stacked = stack_rows([self._weights[name] for name in rows])
            self._mixed = (rows, self._as_values(stacked, batched=True))
        return self._mixed[1]

    @staticmethod
    def _as_values(
        weights: AdapterWeights, batched: bool
    ) -> dict[str, tuple[ort.OrtValue, ort.OrtValue]]:
        # OrtValues wrap the arrays without a copy (and keep a reference to them).
        def value(matrix: np.ndarray) -> ort.OrtValue:
            return ort.OrtValue.ortvalue_from_numpy(matrix if batched else matrix[None])

        return {key: (value(a), value(b)) for key, (a, b) in weights.items()}
