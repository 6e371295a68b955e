"""Training one candidate of a turn, meant to run in a child process (tandem.flywheel.child).

    trained = train_in_child("dpo", snapshot_id, "smollm2-135m-instruct", home=settings.home,
                             database_url=settings.database_url, overrides={"max_steps": 2})
    trained["version"], trained["losses"], trained["child_peak_rss_mb"]

`train_candidate` is `tandem train` for one method with a clock on the optimizer steps; it
returns what the flywheel's train stage records per method. `train_in_child` runs it in a
fresh process: training takes ~8 GB, which the flywheel would otherwise hold through the
evals that follow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tandem.core.offline import stay_offline
from tandem.flywheel.child import run_in_child

TARGET = "tandem.flywheel.training:train_candidate"


def train_in_child(
    method: str,
    dataset_id: str,
    base: str,
    home: Path | str,
    database_url: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """`train_candidate` in a child process; its result plus `child_peak_rss_mb`. Raises
    RuntimeError (with the child's traceback or exit status) when training fails."""
    kwargs = {
        "method": method,
        "dataset_id": dataset_id,
        "base": base,
        "home": str(home),
        "database_url": database_url,
        "overrides": overrides,
    }
    return run_in_child(TARGET, kwargs)


def train_candidate(
    method: str,
    dataset_id: str,
    base: str,
    home: str,
    database_url: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Train, merge and register one candidate; the train stage's record for `method`:
    version, dataset, config, metrics (without the log history), losses, seconds,
    merge_onnx_register_s and the step clock's setup_s, steps_s, s_per_step."""
    # Before transformers is imported (the hub reads it once): nothing is downloaded mid-turn.
    stay_offline()
    from tandem.train.config import resolve_config
    from tandem.train.run import METRICS, train

    train_config = resolve_config(method, None, overrides)
    clock = step_clock()
    start = time.perf_counter()
    result = train(
        method,
        dataset_id,
        base,
        home=Path(home),
        database_url=database_url,
        config=train_config,
        callbacks=[clock],
    )
    total = time.perf_counter() - start
    metrics = dict(result.metrics)
    metrics.pop("log_history", None)
    # The registered version keeps the trainer's full log (the returned record does not).
    saved = result.root / METRICS if result.root is not None else None
    history = json.loads(saved.read_text()).get("log_history") if saved else None
    losses = [
        {"step": e.get("step"), "loss": e["loss"]}
        for e in (history or [])
        if "loss" in e and "step" in e
    ]
    return {
        "version": result.version,
        "dataset": dataset_id,
        "config": train_config.to_dict(),
        "metrics": metrics,
        "losses": losses,
        "seconds": round(total, 3),
        # What train() does after the steps: merge LoRA, build the int8 ONNX model, register.
        "merge_onnx_register_s": round(total - float(metrics.get("runtime_s") or 0.0), 3),
        **clock.timings(),
    }


def step_clock() -> Any:
    """A Trainer callback timing when training proper began (after loading the model,
    tokenizing and scoring the reference) and how long the optimizer steps took."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.created = time.perf_counter()
            self.train_begin: float | None = None
            self.first_step: float | None = None
            self.last_step: float | None = None
            self.steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.train_begin = time.perf_counter()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.first_step is None:
                self.first_step = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.last_step = time.perf_counter()
            self.steps += 1

        def timings(self) -> dict[str, float | None]:
            steps_s = (
                self.last_step - self.first_step
                if self.first_step is not None and self.last_step is not None
                else None
            )
            return {
                "setup_s": _round(self.train_begin and self.train_begin - self.created),
                "steps_s": _round(steps_s),
                "s_per_step": _round(steps_s / self.steps if steps_s and self.steps else None),
            }

    return Clock()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
