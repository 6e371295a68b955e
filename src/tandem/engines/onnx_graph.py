"""The edits the embedded engine makes to the builder's decoder graph when it loads it (the
graph is loaded without its weights; the session is pointed at their folder):

* `last_position_logits`: the LM head scores the last position only;
* `add_lora_branches`: every projection MatMul of the decoder layers (the builder's packed
  `qkv_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`) gets a low-rank branch whose
  matrices are *inputs* of the graph, so LoRA adapters run over the shared base weights
  (`tandem.engines.onnx_lora` feeds them):

      y = MatMul(x, W)                          # the base weights, int8 or fp32, shared
      y = y + MatMul(MatMul(x, A) * M, B)       # A [K, R], B [R, N], M [rows, 1, R]: fed
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime as ort


def last_position_logits(model: onnx.ModelProto) -> None:
    """Make the decoder graph apply the LM head to the last position only (in place): logits
    come out `[batch, 1, vocab]`. The builder's graph scores every position, which in a prefill
    chunk of 256 tokens is a fifth of the model's multiply-adds (the 49,152 x 576 head) and a
    50 MB logits tensor, of which the engine reads one row."""
    graph = model.graph
    head = next(n for n in graph.node if "logits" in n.output)
    for name, value in (("last_pos/starts", -1), ("last_pos/ends", 2**62), ("last_pos/axes", 1)):
        graph.initializer.append(
            onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [1], [value])
        )
    last = onnx.helper.make_node(
        "Slice",
        [head.input[0], "last_pos/starts", "last_pos/ends", "last_pos/axes"],
        ["last_pos/hidden"],
        name="/last_pos/Slice",
    )
    head.input[0] = "last_pos/hidden"
    nodes = list(graph.node)
    nodes.insert(nodes.index(head), last)  # before the head: the graph stays in order
    del graph.node[:]
    graph.node.extend(nodes)
    logits = next(o for o in graph.output if o.name == "logits")
    logits.type.tensor_type.shape.dim[1].ClearField("dim_param")
    logits.type.tensor_type.shape.dim[1].dim_value = 1


# The genai builder's node names for the decoder's projections, and the Hugging Face modules
# each one was built from (q, k and v are packed into one MatMul, in that order).
# `MatMul_Q8` / `MatMul_Q4` in quantized graphs (MatMulNBits), `MatMul` in fp32 ones.
_SITE_NODE = re.compile(
    r"/model/layers\.(\d+)/(attn|mlp)/(qkv_proj|o_proj|gate_proj|up_proj|down_proj)"
    r"/MatMul(?:_Q\d+)?$"
)
_HF_MODULES = {
    "qkv_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "o_proj": ("self_attn.o_proj",),
    "gate_proj": ("mlp.gate_proj",),
    "up_proj": ("mlp.up_proj",),
    "down_proj": ("mlp.down_proj",),
}


@dataclass(frozen=True)
class LoraSite:
    """One projection with a LoRA branch: its graph inputs and the HF modules packed in it."""

    a_input: str
    b_input: str
    mask_input: str
    in_features: int
    # (HF module name under `model.layers.<i>.`, its output features), in packing order
    parts: tuple[tuple[str, int], ...]

    @property
    def out_features(self) -> int:
        return sum(n for _, n in self.parts)


@dataclass(frozen=True)
class DecoderShapes:
    hidden: int
    heads: int
    kv_heads: int
    head_size: int
    intermediate: int


def _site_shape(proj: str, shapes: DecoderShapes) -> tuple[int, tuple[tuple[str, int], ...]]:
    """A projection's input features and its packed HF modules' output features."""
    q_out, kv_out = shapes.heads * shapes.head_size, shapes.kv_heads * shapes.head_size
    in_features, outputs = {
        "qkv_proj": (shapes.hidden, (q_out, kv_out, kv_out)),
        "o_proj": (q_out, (shapes.hidden,)),
        "gate_proj": (shapes.hidden, (shapes.intermediate,)),
        "up_proj": (shapes.hidden, (shapes.intermediate,)),
        "down_proj": (shapes.intermediate, (shapes.hidden,)),
    }[proj]
    return in_features, tuple(zip(_HF_MODULES[proj], outputs, strict=True))


def intermediate_size(model: onnx.ModelProto) -> int | None:
    """The MLP's width, read off the first gate projection (genai_config does not say it);
    None for a graph without one (an architecture whose projections have no branches here)."""
    initializers = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        match = _SITE_NODE.match(node.name)
        if match is None or match.group(3) != "gate_proj":
            continue
        if node.op_type == "MatMulNBits":
            return next(int(a.i) for a in node.attribute if a.name == "N")
        return int(initializers[node.input[1]].dims[1])  # a plain MatMul's weight is [K, N]
    return None


def add_lora_branches(model: onnx.ModelProto, shapes: DecoderShapes) -> dict[str, LoraSite]:
    """Give every projection MatMul a LoRA branch fed by three new graph inputs (in place):
    A [K, R] and B [R, N], the ranks of every adapter in the batch side by side, and a mask
    M [rows, 1, R] that keeps, for each row, its own adapter's part of R (rows 1: one adapter
    for the whole batch). Returns the sites by key `"<layer>/<proj>"`."""
    graph = model.graph
    sites: dict[str, LoraSite] = {}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        nodes.append(node)
        match = _SITE_NODE.match(node.name)
        if match is None:
            continue
        layer, _, proj = match.groups()
        key = f"{layer}/{proj}"
        in_features, parts = _site_shape(proj, shapes)
        site = LoraSite(f"lora/{key}/A", f"lora/{key}/B", f"lora/{key}/M", in_features, parts)
        x, y = node.input[0], node.output[0]
        base_out, low, masked, delta = (
            f"{y}/base",
            f"lora/{key}/xA",
            f"lora/{key}/xAM",
            f"lora/{key}/xAMB",
        )
        node.output[0] = base_out
        nodes += [
            onnx.helper.make_node("MatMul", [x, site.a_input], [low], name=f"/lora/{key}/A"),
            onnx.helper.make_node("Mul", [low, site.mask_input], [masked], name=f"/lora/{key}/M"),
            onnx.helper.make_node("MatMul", [masked, site.b_input], [delta], name=f"/lora/{key}/B"),
            onnx.helper.make_node("Add", [base_out, delta], [y], name=f"/lora/{key}/Add"),
        ]
        # Each site its own symbolic dims: ranks differ per site (q/k/v packed is 3r).
        rows, rank = f"lora_rows_{layer}_{proj}", f"lora_rank_{layer}_{proj}"
        graph.input.extend(
            [
                onnx.helper.make_tensor_value_info(
                    site.a_input, onnx.TensorProto.FLOAT, [in_features, rank]
                ),
                onnx.helper.make_tensor_value_info(
                    site.b_input, onnx.TensorProto.FLOAT, [rank, site.out_features]
                ),
                onnx.helper.make_tensor_value_info(
                    site.mask_input, onnx.TensorProto.FLOAT, [rows, 1, rank]
                ),
            ]
        )
        sites[key] = site
    del graph.node[:]
    graph.node.extend(nodes)
    return sites


def serving_graphs(
    model_path: Path, lora_branches: bool = True
) -> tuple[bytes, bytes, dict[str, LoraSite]]:
    """The builder's decoder graph as the engine runs it (without its weights: the session is
    pointed at their folder), plain and with LoRA branches, read once, and the branches'
    sites. No branched graph (b"", no sites) for a benchmark's control (`lora_branches`
    False) or a graph without gate projections: no adapters then."""
    model = onnx.load(str(model_path), load_external_data=False)
    last_position_logits(model)
    plain = model.SerializeToString()
    decoder = json.loads((model_path.parent / "genai_config.json").read_text())["model"]["decoder"]
    intermediate = intermediate_size(model)
    if not lora_branches or intermediate is None:
        return plain, b"", {}
    shapes = DecoderShapes(
        hidden=decoder["hidden_size"],
        heads=decoder["num_attention_heads"],
        kv_heads=decoder["num_key_value_heads"],
        head_size=decoder["head_size"],
        intermediate=intermediate,
    )
    sites = add_lora_branches(model, shapes)
    return plain, model.SerializeToString(), sites


def session_options(model_dir: Path, threads: int | None) -> ort.SessionOptions:
    """How the engine's sessions run (the graphs of `serving_graphs`, weights in `model_dir`)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    # No spin-waiting between operators: spinning threads keep every core busy while the
    # web server's threads wait for one (bench/load.py, 50 users on 2 shared cores: the
    # answers' p50 went from 7.4 s to 2.6 s; docs/security.md, "Load").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The graph is loaded without its weights and handed over with the folder they live in.
    options.add_session_config_entry(
        "session.model_external_initializers_file_folder_path", str(model_dir)
    )
    return options
