"""One training run: dataset + base version + config -> a registered candidate version.

    from tandem.train.run import train
    result = train("dpo", "prefs.jsonl", "smollm2-135m-instruct", home=settings.home,
                   database_url=settings.database_url, config=resolve_config("dpo"))

The run directory `$TANDEM_HOME/runs/<version>/` holds the checkpoints (every `save_steps`),
the resolved config and the trainer's log. Running the same command again after an
interruption resumes from the newest checkpoint: the default version name is derived from the
base, the method, the data hash and the config, so the same command finds the same run. Under
`accelerate launch` every process trains; only the main one merges and registers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.core.signals import DATASET_KIND_FOR_METHOD, TRAIN_METHODS, is_train_method
from tandem.train.config import ConfigError, TrainConfig, resolve_config, save_config
from tandem.train.training_data import TrainingData, read_rows, resolve_training_data

log = logging.getLogger(__name__)

LOSS_CURVE = "loss_curve.png"
METRICS = "metrics.json"
CONFIG_FILE = "training_config.yaml"


@dataclass(frozen=True)
class TrainResult:
    version: str
    root: Path | None  # the registered version's directory; None on non-main processes
    metrics: dict[str, Any]


def code_version() -> str:
    """The git commit this code runs from (marked -dirty with uncommitted changes), else the
    package version: what a model version records to say which code trained it."""
    import tandem

    here = Path(tandem.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"tandem-{tandem.__version__}"


def default_version_name(base: str, method: str, data: TrainingData, config: TrainConfig) -> str:
    key = json.dumps([base, method, data.hash, config.fingerprint()])
    return f"{base}-{method}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint: the Trainer writes trainer_state.json last."""
    found = [
        (int(p.name.split("-")[1]), p)
        for p in run_dir.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").exists()
    ]
    return max(found)[1] if found else None


def base_checkpoint(home: Path, base: str) -> Path:
    """The base version's Hugging Face checkpoint, `models/<base>/hf`: the embedded model is
    prepared and an adapter version merged on demand (`merged_checkpoint`). Main process only
    under `accelerate launch`; the others read the same path once it exists."""
    from tandem.core.errors import NotFound
    from tandem.registry.embedded import EMBEDDED_VERSION, model_root, prepare_embedded_model
    from tandem.registry.versions import CHAT, merged_checkpoint, version_kind

    root = model_root(home, base)
    if base == EMBEDDED_VERSION:
        prepare_embedded_model(home)
    kind = version_kind(root)
    if kind is None:
        raise ConfigError(f"no model version {base!r} in {root.parent}")
    if kind != CHAT:
        raise ConfigError(f"{base} is a {kind} model; training starts from a chat model")
    try:
        return merged_checkpoint(home, base)
    except (NotFound, FileNotFoundError, ValueError) as e:  # an adapter of a remote version
        raise ConfigError(f"cannot train from {base}: {e}") from e


def _precision(config: TrainConfig) -> bool:
    """Whether to train in bf16 (autocast; weights and optimizer state stay fp32): on a GPU
    that supports it, or on a CPU that multiplies bf16 in hardware (1.5x faster DPO steps on
    the project's AVX512-BF16 machine). An emulated bf16 CPU trains fp32."""
    import torch

    from tandem.train.cpu import native_bf16

    has_bf16 = torch.cuda.is_bf16_supported() if torch.cuda.is_available() else native_bf16()
    if config.precision == "bf16" and not has_bf16:
        raise ConfigError("precision bf16 needs a GPU or CPU that supports it natively")
    return config.precision == "bf16" or (config.precision == "auto" and has_bf16)


def _cpu_speedups() -> Any:
    """tandem.train.cpu's compact LM head when training on the CPU (a GPU has it already)."""
    import contextlib

    import torch

    from tandem.train.cpu import compact_lm_head

    return contextlib.nullcontext() if torch.cuda.is_available() else compact_lm_head()


def _gradient_checkpointing(config: TrainConfig) -> bool:
    """Recomputing activations saves GPU memory and costs time; a CPU has the memory."""
    import torch

    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    return torch.cuda.is_available()


def _dataset(data: TrainingData, run_dir: Path) -> Any:
    """The rows as a `datasets.Dataset`: in memory for one process; under `accelerate launch`
    an Arrow file in the run directory that every process reads. TRL's trainers tokenize on the
    main process first and cache the result (and DPO/KTO the precomputed reference
    log-probabilities) beside the dataset's file, for the other processes to read; an in-memory
    dataset has no file, so each process would look in a temporary directory of its own."""
    import torch
    from accelerate import PartialState
    from datasets import Dataset, load_from_disk

    rows = read_rows(data.train_file)
    if data.kind == "kto":
        rows = [{**r, "label": bool(r["label"])} for r in rows]
    dataset = Dataset.from_list(rows)
    state = PartialState(cpu=not torch.cuda.is_available())  # as in train()
    if state.num_processes == 1:
        return dataset
    shared = run_dir / "dataset"
    if state.is_main_process:
        shutil.rmtree(shared, ignore_errors=True)  # a resumed run's, with its old caches
        dataset.save_to_disk(shared)
    state.wait_for_everyone()
    return load_from_disk(str(shared))


def _trainer_args(method: str, config: TrainConfig, run_dir: Path) -> Any:
    import torch

    common: dict[str, Any] = {
        "output_dir": str(run_dir),
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "warmup_steps": config.warmup_ratio,  # a float in [0, 1) is a ratio of the steps
        "seed": config.seed,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "logging_steps": config.logging_steps,
        "report_to": [],
        "bf16": _precision(config),
        "gradient_checkpointing": _gradient_checkpointing(config),
        "use_cpu": not torch.cuda.is_available(),
        "max_length": config.max_length,
    }
    if method == "sft":
        from trl import SFTConfig

        return SFTConfig(**common)
    if method == "dpo":
        from trl import DPOConfig

        return DPOConfig(
            **common, beta=config.beta, precompute_ref_log_probs=config.precompute_ref_log_probs
        )
    if method == "kto":
        from trl import KTOConfig

        return KTOConfig(
            **common, beta=config.beta, precompute_ref_log_probs=config.precompute_ref_log_probs
        )
    from trl import RewardConfig

    return RewardConfig(**common)


def _load_model(method: str, hf_dir: Path, tokenizer: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if method == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(
            hf_dir, num_labels=1, dtype=torch.float32
        )
        model.config.pad_token_id = tokenizer.pad_token_id
        return model
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)


def _lora(method: str, config: TrainConfig) -> Any:
    from peft import LoraConfig

    target: str | list[str] = config.lora_target
    if config.lora_target != "all-linear":
        target = [t.strip() for t in config.lora_target.split(",") if t.strip()]
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=target,
        # SEQ_CLS also trains (and saves) the new score head, which LoRA alone would not.
        task_type="SEQ_CLS" if method == "reward" else "CAUSAL_LM",
    )


def build_trainer(
    method: str,
    data: TrainingData,
    hf_dir: Path,
    config: TrainConfig,
    run_dir: Path,
    callbacks: Sequence[Any] = (),
) -> Any:
    """The TRL trainer for `method`. With LoRA, DPO and KTO use the base with the adapter
    disabled as their reference: no second copy of the model in memory."""
    from transformers import AutoTokenizer
    from trl import DPOTrainer, KTOTrainer, RewardTrainer, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _load_model(method, hf_dir, tokenizer)
    trainer_class = {
        "sft": SFTTrainer,
        "dpo": DPOTrainer,
        "kto": KTOTrainer,
        "reward": RewardTrainer,
    }[method]
    return trainer_class(
        model=model,
        args=_trainer_args(method, config, run_dir),
        train_dataset=_dataset(data, run_dir),
        processing_class=tokenizer,
        peft_config=None if config.full else _lora(method, config),
        callbacks=list(callbacks),
    )


def _metrics(trainer: Any, config: TrainConfig, wall_s: float, resumed_from: int) -> dict[str, Any]:
    state = trainer.state
    losses = [e["loss"] for e in state.log_history if "loss" in e]
    summary: dict[str, Any] = next(
        (e for e in reversed(state.log_history) if "train_loss" in e), {}
    )
    world = trainer.accelerator.num_processes
    samples = (state.global_step - resumed_from) * config.batch_size * config.grad_accum * world
    return {
        "final_loss": round(float(losses[-1]), 6) if losses else summary.get("train_loss"),
        "train_loss": summary.get("train_loss"),
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0), 4),
        "runtime_s": round(wall_s, 3),
        "samples": samples,
        # Trainer construction (tokenizing, precomputing reference log-probs) plus the steps.
        "samples_per_s": round(samples / wall_s, 4) if wall_s > 0 else None,
        "resumed_from_step": resumed_from,
        "processes": world,
        "log_history": state.log_history,
    }


def _check_same_config(method: str, config: TrainConfig, saved: Path) -> None:
    """Resuming with other hyperparameters would silently train a mixture of two runs."""
    if not saved.exists():
        return
    before = resolve_config(method, saved)
    if before.fingerprint() != config.fingerprint():
        changed = sorted(k for k, v in before.to_dict().items() if getattr(config, k) != v)
        raise ConfigError(
            f"the run in {saved.parent} was started with other settings ({', '.join(changed)}); "
            "use the same ones to resume, or --restart"
        )


def train(
    method: str,
    dataset: str,
    base: str,
    *,
    home: Path,
    database_url: str,
    config: TrainConfig,
    output_version: str | None = None,
    resume: bool | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train, merge and register. `resume`: None resumes when the run directory holds a
    checkpoint, True insists on one, False starts over. `callbacks` are Trainer callbacks."""
    from accelerate import PartialState

    from tandem.registry.embedded import model_root
    from tandem.registry.versions import CHAT, REWARD, register_trained, version_exists
    from tandem.store import make_engine, make_session_factory, migrate
    from tandem.train.card import render_model_card
    from tandem.train.loss_curve import plot_loss_curve
    from tandem.train.registry_files import save_trained

    if not is_train_method(method):
        raise ConfigError(f"method must be one of {', '.join(TRAIN_METHODS)}, got {method!r}")
    # Under `accelerate launch` every process runs this function; only the main one touches
    # the database and the registry, the others train and help save sharded weights.
    # `cpu` as the Trainer will (`use_cpu`): without it, processes launched on a host with no
    # GPU would not join a gloo group, each would think itself the main one, and all of them
    # would register the version.
    import torch

    is_main = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    data = resolve_training_data(home, dataset, DATASET_KIND_FOR_METHOD[method])
    hf_dir = base_checkpoint(home, base) if is_main else model_root(home, base) / "hf"
    PartialState().wait_for_everyone()  # the embedded model may have just been prepared
    version = output_version or default_version_name(base, method, data, config)
    db = make_engine(database_url)
    if is_main:
        migrate(db)
    sessions = make_session_factory(db)
    try:
        if is_main:
            with sessions() as session:
                if version_exists(session, home, version):
                    raise ConfigError(f"model version {version!r} already exists; name another")
        run_dir = home / "runs" / version
        checkpoint = latest_checkpoint(run_dir) if resume is not False else None
        if resume and checkpoint is None:
            raise ConfigError(f"nothing to resume: no checkpoint in {run_dir}")
        if resume is False and run_dir.exists() and is_main:
            shutil.rmtree(run_dir)
        PartialState().wait_for_everyone()
        run_dir.mkdir(parents=True, exist_ok=True)
        provenance: dict[str, Any] = {
            "method": method,
            "base": base,
            "dataset": data.provenance(),
            "code_version": code_version(),
        }
        resumed_from = 0
        if checkpoint is not None:
            _check_same_config(method, config, run_dir / CONFIG_FILE)
            state = json.loads((checkpoint / "trainer_state.json").read_text())
            resumed_from = int(state.get("global_step", 0))
            log.info("resuming %s from %s (step %d)", version, checkpoint.name, resumed_from)
        if is_main:
            save_config(config, run_dir / CONFIG_FILE, {k: str(v) for k, v in provenance.items()})

        # Import the training stack (seconds) before the clock starts: runtime_s and
        # samples_per_s measure loading the model, preparing the data and the steps.
        import datasets  # noqa: F401
        import peft  # noqa: F401
        from trl import DPOTrainer, KTOTrainer, RewardTrainer, SFTTrainer  # noqa: F401

        start = time.perf_counter()
        with _cpu_speedups():
            trainer = build_trainer(method, data, hf_dir, config, run_dir, callbacks)
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        wall_s = time.perf_counter() - start
        metrics = _metrics(trainer, config, wall_s, resumed_from)

        # Staged outside models/, so a server scanning the registry never sees it half-made.
        staging = run_dir / "version"
        if is_main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        save_trained(method, trainer, hf_dir, run_dir, staging)
        if not is_main:
            return TrainResult(version, None, metrics)

        title = f"{version} ({method}, {metrics['steps']} steps)"
        curve = plot_loss_curve(metrics["log_history"], staging / LOSS_CURVE, title)
        if curve is not None:
            shutil.copy(curve, run_dir / LOSS_CURVE)
        (staging / METRICS).write_text(json.dumps(metrics, indent=2))
        save_config(config, staging / CONFIG_FILE, {k: str(v) for k, v in provenance.items()})
        record = {k: v for k, v in metrics.items() if k != "log_history"}
        root = home / "models" / version
        record["loss_curve"] = str(root / LOSS_CURVE) if curve is not None else None
        card = render_model_card(
            version=version,
            base=base,
            method=method,
            data=data,
            config=config.to_dict(),
            metrics=record,
            code_version=provenance["code_version"],
            loss_curve=LOSS_CURVE if curve is not None else None,
        )
        (staging / "README.md").write_text(card)
        with sessions() as session:
            register_trained(
                session,
                home,
                version,
                staging,
                parent=base,
                kind=REWARD if method == "reward" else CHAT,
                config={**config.to_dict(), **provenance},
                metrics=record,
                card=card,
                build_onnx_format=config.build_onnx,
            )
        # The version is registered; the checkpoints only served getting there.
        for stale in [*run_dir.glob("checkpoint-*"), run_dir / "final", run_dir / "dataset"]:
            shutil.rmtree(stale, ignore_errors=True)
        return TrainResult(version, root, record)
    finally:
        db.dispose()
