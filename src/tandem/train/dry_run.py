"""A dry run of `accelerate launch --config_file CONFIG -m tandem.train ...`: what it would
start, without starting it, on any machine (no GPU, no DeepSpeed needed).

    python -m tandem.train.dry_run configs/accelerate/fsdp.yaml
    python -m tandem.train.dry_run configs/accelerate/deepspeed_zero3.yaml --num-processes 4 \\
        -- dpo --dataset prefs-v1 --base smollm2-135m-instruct

The installed accelerate has no dry-run flag, so this goes through its own launch steps up to
the point of starting processes: its config loader and argument checks
(`_validate_launch_command`), the environment its FSDP/multi-GPU or DeepSpeed launcher would
set (`prepare_multi_gpu_env`, `prepare_deepspeed_cmd_env`), the torchrun arguments it would
pass (`_filter_args`), and the FSDP or DeepSpeed plugin that `Accelerator` builds from that
environment in each process. Then tandem's own requirements: the main process registers the
checkpoint the trainer saves, so FSDP must gather a full state dict and ZeRO-3 the 16-bit
weights. Exit status 0: ready to launch; 2: the config is refused, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Variables a launcher sets that are noise in a report (they depend on the machine).
_UNREPORTED = {"PYTHONPATH"}


@dataclass(frozen=True)
class LaunchPlan:
    config_file: Path
    distributed_type: str  # DEEPSPEED, FSDP, MULTI_GPU, ...
    num_processes: int
    mixed_precision: str
    command: list[str]  # the torchrun command the launcher runs in-process
    env: dict[str, str]  # what the launcher sets in the processes' environment
    plugin: dict[str, Any]  # what Accelerator's FSDP/DeepSpeed plugin reads from that env
    problems: list[str] = field(default_factory=list)  # tandem's requirements not met

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "config_file": str(self.config_file)}


def plan_launch(
    config_file: Path,
    num_processes: int | None = None,
    train_args: Sequence[str] = ("sft", "--dataset", "DATASET"),
) -> LaunchPlan:
    """What `accelerate launch --config_file config_file [--num_processes N] -m tandem.train
    train_args` would run. ValueError (with accelerate's or tandem's reason) when the config
    would not launch."""
    import torch.distributed.run as torchrun
    from accelerate.commands.launch import (
        _filter_args,
        _validate_launch_command,
        launch_command_parser,
    )
    from accelerate.utils import patch_environment
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    if not config_file.is_file():
        raise ValueError(f"{config_file} is not a file")
    argv = ["--config_file", str(config_file)]
    if num_processes is not None:
        argv += ["--num_processes", str(num_processes)]
    args = launch_command_parser().parse_args([*argv, "-m", "tandem.train", *train_args])
    try:
        args, defaults, precision_from_config = _validate_launch_command(args)
    except TypeError as e:  # ClusterConfig(**yaml): a key accelerate does not know
        raise ValueError(f"{config_file}: {e}") from None
    if defaults is None:
        raise ValueError(f"{config_file}: accelerate read no config from it")
    if args.cpu or not (args.use_deepspeed or args.use_fsdp or args.multi_gpu):
        raise ValueError(
            f"{config_file}: distributed_type {defaults.distributed_type} starts one process; "
            "the configs here are for several GPUs (DEEPSPEED, FSDP or MULTI_GPU)"
        )
    if args.use_deepspeed:
        # As launch_command does before calling the DeepSpeed launcher.
        fields = list(defaults.deepspeed_config)
        if precision_from_config:
            fields.append("mixed_precision")
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        cmd, env = prepare_deepspeed_cmd_env(args)
        if cmd is not None:  # several machines: DeepSpeed's own launcher, pdsh or the like
            raise ValueError(f"{config_file}: multi-machine DeepSpeed launches are not checked")
    else:
        env = prepare_multi_gpu_env(args)
    changed = {k: v for k, v in env.items() if os.environ.get(k) != v and k not in _UNREPORTED}
    script = ["--training_script", args.training_script]
    script += ["--training_script_args", args.training_script_args]
    run = _filter_args(args, torchrun.get_args_parser(), script)
    command = [
        "torchrun",
        f"--nnodes={run.nnodes}",
        f"--nproc_per_node={run.nproc_per_node}",
        f"--rdzv_backend={run.rdzv_backend}",
        f"--master_addr={run.master_addr}",
        f"--master_port={run.master_port}",
        "-m",
        run.training_script,
        *run.training_script_args,
    ]
    with patch_environment(**changed):
        plugin = _plugin(args.use_deepspeed, args.use_fsdp)
    plan = LaunchPlan(
        config_file=config_file,
        distributed_type=str(defaults.distributed_type).rsplit(".", 1)[-1],
        num_processes=int(args.num_processes),
        mixed_precision=str(args.mixed_precision),
        command=command,
        env=changed,
        plugin=plugin,
    )
    plan.problems.extend(_tandem_problems(plan))
    return plan


def _plugin(deepspeed: bool, fsdp: bool) -> dict[str, Any]:
    """Accelerator's plugin, built from the launcher's environment as each process builds it
    (it reads ACCELERATE_DEEPSPEED_* / FSDP_*, and refuses values it does not know). Neither
    imports DeepSpeed."""
    if deepspeed:
        from accelerate.utils import DeepSpeedPlugin

        ds = DeepSpeedPlugin()
        return {"zero_stage": ds.zero_stage, "deepspeed_config": ds.deepspeed_config}
    if fsdp:
        from accelerate.utils import FullyShardedDataParallelPlugin

        fs = FullyShardedDataParallelPlugin()
        return {
            "fsdp_version": fs.fsdp_version,
            "state_dict_type": str(fs.state_dict_type).rsplit(".", 1)[-1],
            "auto_wrap_policy": getattr(fs.auto_wrap_policy, "__name__", None),
            "reshard_after_forward": fs.reshard_after_forward,
            "cpu_ram_efficient_loading": fs.cpu_ram_efficient_loading,
        }
    return {}


def _tandem_problems(plan: LaunchPlan) -> list[str]:
    """The main process registers what the trainer saved: it must be whole, not one shard."""
    problems = []
    if plan.distributed_type == "FSDP" and plan.plugin["state_dict_type"] != "FULL_STATE_DICT":
        problems.append(
            "fsdp_state_dict_type must be FULL_STATE_DICT: the main process registers the "
            "saved checkpoint, and a sharded one holds only its own shard"
        )
    zero = plan.plugin.get("deepspeed_config", {}).get("zero_optimization", {})
    if zero.get("stage") == 3 and not zero.get("stage3_gather_16bit_weights_on_model_save"):
        problems.append(
            "ZeRO-3 needs zero3_save_16bit_model: true, or the saved checkpoint holds no weights"
        )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.train.dry_run",
        usage="%(prog)s CONFIG [--num-processes N] [--json] [-- TRAIN_ARGS ...]",
        description="What `accelerate launch --config_file CONFIG -m tandem.train ...` would "
        "run, without running it. After --: the tandem.train arguments "
        "(default: sft --dataset DATASET).",
    )
    parser.add_argument("config", type=Path, help="an accelerate config (configs/accelerate/)")
    parser.add_argument("--num-processes", type=int, help="as accelerate's --num_processes")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:split])
    train_args = argv[split + 1 :] or ["sft", "--dataset", "DATASET"]
    try:
        plan = plan_launch(ns.config, ns.num_processes, train_args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(plan.to_dict(), indent=2, default=str))
    else:
        print(
            f"{plan.config_file}: {plan.distributed_type}, {plan.num_processes} processes, "
            f"mixed precision {plan.mixed_precision}\n"
            f"would run: {' '.join(plan.command)}\n"
            "with: " + " ".join(f"{k}={v}" for k, v in sorted(plan.env.items())) + "\n"
            f"plugin: {json.dumps(plan.plugin, default=str)}"
        )
    for problem in plan.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if plan.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
