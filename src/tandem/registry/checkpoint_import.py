"""Bring your own model: a local Hugging Face causal-LM checkpoint into the registry as a base
version, a lineage root (no parent) that training starts from like the embedded model.

    tandem models import ./acme-1b --name acme-1b [--link] [--build-onnx/--no-build-onnx]

    row = import_checkpoint(session, home, Path("./acme-1b"), name="acme-1b")

The checkpoint is checked before anything is written (config.json, safetensors weights, a
tokenizer, a chat template, an architecture transformers' AutoModelForCausalLM loads without
custom code), then laid out as every version is (`write_version_files`): `hf/` (the files
copied, or symlinked with `link`), `onnx/` for the default engine when the model is small
enough to serve on a CPU, `README.md` (the card) and `manifest.json` last. Nothing is
downloaded: the tokenizer and the config are read from the directory, offline.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, InvalidInput
from tandem.registry.embedded import PreparationError, model_root
from tandem.registry.versions import CHAT, register_adapter, version_exists, write_version_files
from tandem.store.model_versions import ModelVersionRepo
from tandem.store.models import ModelVersion

log = logging.getLogger(__name__)

# The default engine runs int8 on the CPU. It decodes the 135M embedded model at ~80 tok/s
# on the project's 2 cores (docs/architecture.md, "Engines"); a decode step reads every weight,
# so the rate falls about in proportion to the parameter count: ~5 tok/s at 2B, the slowest a
# person still reads along with. The builder also loads the checkpoint in fp32 (8 GB at 2B),
# which a laptop still has. Above this, the default is a GPU server (vLLM) or
# `<id>@transformers`; `--build-onnx` overrides it either way.
ONNX_MAX_PARAMETERS = 2_000_000_000

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Top-level files that are not taken into hf/: other weight formats (only safetensors are
# read), training leftovers and custom code (never run: trust_remote_code stays off).
SKIPPED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".py")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")
# onnxruntime's GroupQueryAttention CPU kernel, which the builder's graph uses, refuses other
# head sizes at the first request (real models have 64 or 128; tiny test models may not).
ONNX_HEAD_SIZE_MULTIPLE = 16
SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}


@dataclass(frozen=True)
class CheckpointInfo:
    """What the checks found: recorded in the card, the manifest and the registry row."""

    source: Path
    architecture: str
    model_type: str
    parameters: int
    dtype: str
    chat_template_from: str  # the file the template was read from
    context_length: int | None
    head_size: int | None
    files: tuple[str, ...]  # the top-level files taken into hf/

    def record(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "architecture": self.architecture,
            "model_type": self.model_type,
            "parameters": self.parameters,
            "dtype": self.dtype,
            "chat_template_from": self.chat_template_from,
            "context_length": self.context_length,
        }


def version_name(source: Path) -> str:
    """The default version name: the directory's name with anything outside [A-Za-z0-9._-]
    replaced by '-' (a version id is a URL segment and a directory name; '@' picks an engine)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", source.name).strip(".-_")
    return name or "imported-model"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or len(name) > 100:
        raise InvalidInput(
            f"invalid version name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    return name


def _free_name(session: Session, home: Path, source: Path, name: str | None) -> str:
    """`name` (default: the directory's), checked and not yet registered."""
    name = check_name(name if name is not None else version_name(source))
    if version_exists(session, home, name):
        raise Conflict(f"model version {name!r} already exists: choose another --name")
    return name


def inspect_checkpoint(source: Path) -> CheckpointInfo:
    """Check that `source` is a checkpoint tandem can serve and train; InvalidInput with a
    one-line reason when it is not. Reads only the directory (configs, tokenizer, the
    safetensors headers), never the weights themselves."""
    if not source.is_dir():
        raise InvalidInput(f"{source} is not a directory")
    if not (source / "config.json").is_file():
        if (source / "adapter_config.json").is_file():
            raise InvalidInput(
                f"{source} is a PEFT adapter, not a checkpoint: import it with --adapter-of BASE"
            )
        raise InvalidInput(f"no config.json in {source}: not a Hugging Face checkpoint")
    try:
        config = json.loads((source / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{source}/config.json does not parse: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidInput(f"{source}/config.json is not a JSON object")
    weights = _safetensors_files(source)
    if not any((source / name).is_file() for name in TOKENIZER_FILES):
        raise InvalidInput(
            f"no tokenizer in {source}: expected tokenizer.json (or tokenizer.model, or "
            "vocab.json and merges.txt) beside config.json"
        )
    architecture = causal_lm_architecture(config)
    quantization = config.get("quantization_config")
    if quantization:
        method = quantization.get("quant_method") if isinstance(quantization, dict) else None
        raise InvalidInput(
            f"{source} holds {method or 'quantized'} weights: import the unquantized checkpoint "
            "(training and the ONNX builder start from float weights)"
        )
    template_from = _chat_template_source(source)
    parameters, dtype = _count_parameters(weights)
    context = config.get("max_position_embeddings")
    head_size: int | None = None
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    if isinstance(config.get("head_dim"), int):
        head_size = config["head_dim"]
    elif isinstance(hidden, int) and isinstance(heads, int) and heads > 0:
        head_size = hidden // heads
    files = tuple(
        sorted(
            p.name
            for p in source.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(SKIPPED_SUFFIXES)
        )
    )
    return CheckpointInfo(
        source=source,
        architecture=architecture,
        model_type=str(config.get("model_type")),
        parameters=parameters,
        dtype=dtype,
        chat_template_from=template_from,
        context_length=context if isinstance(context, int) else None,
        head_size=head_size,
        files=files,
    )


def causal_lm_architecture(config: dict[str, Any]) -> str:
    """The class AutoModelForCausalLM builds for this config, from the mapping of the
    installed transformers (no download, no custom code); InvalidInput when there is none, or
    when `architectures` names a class that is not a causal LM (a classifier, an encoder)."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.get("model_type")
    named = config.get("architectures") or []
    shown = named[0] if named else f"model_type {model_type!r}"
    custom = " (custom code in auto_map is not run)" if config.get("auto_map") else ""
    if not isinstance(model_type, str) or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InvalidInput(
            f"unsupported architecture {shown}: transformers {transformers.__version__} has "
            f"no causal LM for model_type {model_type!r}{custom}"
        )
    causal: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        causal.update([value] if isinstance(value, str) else value)
    if named and not any(a in causal for a in named):
        raise InvalidInput(
            f"unsupported architecture {shown}: not a causal language model "
            f"AutoModelForCausalLM loads{custom}"
        )
    loaded = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]
    return str(loaded if isinstance(loaded, str) else loaded[0])


def _safetensors_files(source: Path) -> list[Path]:
    found = sorted(source.glob("*.safetensors"))
    if not found:
        other = sorted(p.name for p in source.iterdir() if p.name.endswith((".bin", ".pth")))
        hint = f" (found {other[0]}: save it with save_pretrained(safe_serialization=True))"
        raise InvalidInput(f"no safetensors weights in {source}{hint if other else ''}")
    index = source / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise InvalidInput(f"{index} does not parse: {exc}") from None
        missing = sorted(s for s in shards if not (source / s).is_file())
        if missing:
            raise InvalidInput(f"weights incomplete: {len(missing)} shard(s) missing, {missing[0]}")
        return sorted(source / s for s in shards)  # not a stale single file beside the shards
    return found


def _chat_template_source(source: Path) -> str:
    """Where the tokenizer's chat template comes from, checked by loading the tokenizer the
    way training and the engines do; InvalidInput when it does not load or has no template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # a tokenizer that does not load says why in many ways
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"the tokenizer in {source} does not load: {reason}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInput(
            f"no chat template in {source}: add one (tokenizer_config.json's chat_template or "
            "chat_template.jinja); tandem renders every conversation with the model's own"
        )
    if (source / "chat_template.jinja").is_file():
        return "chat_template.jinja"
    if (source / "chat_template.json").is_file():
        return "chat_template.json"
    return "tokenizer_config.json"


def _count_parameters(weights: list[Path]) -> tuple[int, str]:
    """Parameter count and the dominant dtype, from the safetensors headers (an 8-byte length,
    then JSON): no tensor is read."""
    counts: Counter[str] = Counter()
    for path in weights:
        try:
            with path.open("rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            for key, entry in header.items():
                if key != "__metadata__":
                    counts[entry["dtype"]] += math.prod(entry["shape"])
        except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            raise InvalidInput(f"{path.name} is not a safetensors file: {exc}") from None
    if not counts:
        raise InvalidInput(f"no tensors in {weights[0].parent}'s safetensors files")
    dtype = counts.most_common(1)[0][0]
    return sum(counts.values()), SAFETENSORS_DTYPES.get(dtype, dtype.lower())


def render_import_card(name: str, info: CheckpointInfo, *, link: bool, onnx: str) -> str:
    """The base version's card: where it came from and what it is."""
    files = (
        "symlinked into `hf/` (moving or deleting them breaks this version)"
        if link
        else "copied into `hf/`"
    )
    context = f"{info.context_length:,} tokens" if info.context_length else "not stated"
    return f"""# {name}

A base model imported from a local Hugging Face checkpoint by `tandem models import`: a lineage
root (no parent) that training starts from (`tandem train sft --dataset DATA --base {name}`).

| | |
| --- | --- |
| source | `{info.source}`, {files} |
| architecture | {info.architecture} (`model_type` {info.model_type}) |
| parameters | {info.parameters:,} ({_short(info.parameters)}) |
| dtype | {info.dtype} |
| chat template | present ({info.chat_template_from}) |
| context length | {context} |
| ONNX (default engine) | {onnx} |
| imported | {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} |

The weights are the team's own: tandem has not evaluated them. Run the offline suites
(`tandem eval ...`) before serving it to anyone.
"""


def _short(parameters: int) -> str:
    if parameters >= 10**9:
        return f"{parameters / 10**9:.1f}B"
    return f"{parameters / 10**6:.0f}M" if parameters >= 10**6 else f"{parameters / 10**3:.0f}K"


def import_checkpoint(
    session: Session,
    home: Path,
    source: Path,
    *,
    name: str | None = None,
    link: bool = False,
    build_onnx: bool | None = None,
) -> ModelVersion:
    """Check `source`, lay it out under `$TANDEM_HOME/models/<name>/` and register it (status
    candidate, no parent). `build_onnx` None builds the default engine's int8 model when the
    checkpoint has at most ONNX_MAX_PARAMETERS parameters; a failed build then leaves the
    version to the transformers engine, while an asked-for build that fails is an error.
    InvalidInput for a checkpoint that fails a check, Conflict for a name already taken."""
    source = source.expanduser().resolve()
    info = inspect_checkpoint(source)
    name = _free_name(session, home, source, name)
    head_ok = info.head_size is None or info.head_size % ONNX_HEAD_SIZE_MULTIPLE == 0
    if build_onnx and not head_ok:
        raise InvalidInput(
            f"the default engine cannot serve a head size of {info.head_size} (onnxruntime's "
            f"attention needs a multiple of {ONNX_HEAD_SIZE_MULTIPLE}): import with "
            "--no-build-onnx and serve it with transformers"
        )
    build = info.parameters <= ONNX_MAX_PARAMETERS if build_onnx is None else build_onnx
    build = build and head_ok
    if build:
        onnx = "int8, built at import"
    elif build_onnx is False:
        onnx = "not built (`--no-build-onnx`)"
    elif not head_ok:
        onnx = (
            f"not built: head size {info.head_size}, and onnxruntime's attention needs a "
            f"multiple of {ONNX_HEAD_SIZE_MULTIPLE}; served as `{name}@transformers`"
        )
    else:
        onnx = f"not built: over {_short(ONNX_MAX_PARAMETERS)} parameters (`--build-onnx`)"

    root = model_root(home, name)
    # Staged outside models/ (as training does): write_version_files puts the manifest in
    # before the rename, and a server scanning models/ must not see it half-made.
    staging = home / "runs" / f"{name}.import-staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "hf").mkdir(parents=True)
    extra = {"imported": {**info.record(), "linked": link}}
    try:
        for file in info.files:
            target = staging / "hf" / file
            if link:
                target.symlink_to(source / file)
            else:
                shutil.copy2(source / file, target)
        (staging / "README.md").write_text(render_import_card(name, info, link=link, onnx=onnx))
        try:
            write_version_files(
                home, name, staging, kind=CHAT, parent=None,
                extra_manifest=extra, build_onnx_format=build,
            )  # fmt: skip
        except PreparationError as exc:
            if build_onnx is not None:
                raise InvalidInput(f"building the ONNX model failed: {_last_line(exc)}") from exc
            log.warning("no ONNX model for %s, served by transformers: %s", name, exc)
            onnx = f"build failed ({_last_line(exc)}); served as `{name}@transformers`"
            for leftover in ("onnx", "build-cache"):
                shutil.rmtree(staging / leftover, ignore_errors=True)
            (staging / "README.md").write_text(render_import_card(name, info, link=link, onnx=onnx))
            write_version_files(
                home, name, staging, kind=CHAT, parent=None,
                extra_manifest=extra, build_onnx_format=False,
            )  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; a leftover on error
    manifest = json.loads((root / "manifest.json").read_text())
    return ModelVersionRepo(session).upsert(
        name,
        parent_id=None,
        base_path=str(root),
        formats=manifest["formats"],
        status="candidate",
        card=(root / "README.md").read_text(),
        config={"kind": CHAT, "origin": "import", **extra["imported"]},
    )


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def import_adapter(
    session: Session, home: Path, source: Path, *, base: str, name: str | None = None
) -> ModelVersion:
    """Register a PEFT LoRA adapter trained elsewhere on `base` (a registry version) as an
    adapter version, as a LoRA training registers its own. InvalidInput for a directory that
    is not a LoRA adapter, NotFound for an unknown base, Conflict for a taken name."""
    try:
        config = json.loads((source / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{source} is not a PEFT adapter (no readable adapter_config.json)"
        ) from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise InvalidInput(f"{source} is a {config.get('peft_type')} adapter; tandem serves LoRA")
    if not (source / "adapter_model.safetensors").is_file():
        raise InvalidInput(f"no adapter_model.safetensors in {source}")
    name = _free_name(session, home, source, name)
    card = (
        f"# {name}\n\nA LoRA adapter of {base} (rank {config.get('r')}), imported from {source}.\n"
    )
    return register_adapter(session, home, name, source, parent=base, card=card)
