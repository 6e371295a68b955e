"""A training job: `tandem train METHOD` with the job's spec, progress written to its row.

The spec is what the console's form sent, checked by `train_spec` before the job was queued:

    {"method": "dpo", "dataset": SNAPSHOT_ID, "base": "smollm2-135m-instruct",
     "output_version": "smollm2-dpo-ab12", "config": {"max_steps": 2, ...}}

`output_version` is fixed when the job is created, so a resumed attempt writes into the same run
directory and continues from its newest checkpoint (tandem.train.run: resume=None resumes when
one exists).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tandem.core.settings import Settings
from tandem.jobs.context import JobContext
from tandem.train.config import TrainConfig, resolve_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSpec:
    method: str
    dataset: str
    base: str
    output_version: str
    config: dict[str, Any]

    @classmethod
    def of(cls, spec: dict[str, Any]) -> TrainSpec:
        return cls(
            method=str(spec["method"]),
            dataset=str(spec["dataset"]),
            base=str(spec["base"]),
            output_version=str(spec["output_version"]),
            config=dict(spec.get("config") or {}),
        )

    def resolved_config(self) -> TrainConfig:
        return resolve_config(self.method, None, self.config)


def progress_callback(context: JobContext) -> Any:
    """A Trainer callback that writes steps and losses to the job row and stops the run when
    the row says so (the exception leaves trainer.train(); the checkpoints stay)."""
    from transformers import TrainerCallback

    class JobProgress(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            context.progress(phase="training", step=state.global_step, total_steps=state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            context.progress(step=state.global_step, total_steps=state.max_steps)
            context.check()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                context.progress(points=[[state.global_step, float(logs["loss"])]])

        def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            context.progress(phase="merging, building the served model and registering it")

    return JobProgress()


def run_train_job(spec_json: dict[str, Any], context: JobContext, settings: Settings) -> None:
    from tandem.train.run import train

    spec = TrainSpec.of(spec_json)
    context.progress(phase="loading the model and the dataset")
    result = train(
        spec.method,
        spec.dataset,
        spec.base,
        home=settings.home,
        database_url=settings.database_url,
        config=spec.resolved_config(),
        output_version=spec.output_version,
        resume=None,
        callbacks=[progress_callback(context)],
    )
    if result.root is not None:
        context.result(version=result.version, metrics=_public_metrics(result.metrics))


def _public_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("steps", "final_loss", "runtime_s", "samples_per_s", "resumed_from_step")
    return {k: metrics[k] for k in keep if k in metrics}
