"""The model card of a trained version: what it was trained from, on what, how, and how it went."""

from __future__ import annotations

from typing import Any

from tandem.train.training_data import TrainingData

METHOD_NAMES = {
    "sft": "supervised fine-tuning (TRL SFTTrainer)",
    "dpo": "direct preference optimisation (TRL DPOTrainer)",
    "kto": "Kahneman-Tversky optimisation on unpaired thumbs (TRL KTOTrainer)",
    "reward": "reward model, Bradley-Terry on preference pairs (TRL RewardTrainer)",
}

_USE = {
    "reward": (
        "Scores an answer to a conversation (higher is better), for ranking candidates, "
        "filtering data or as an RL reward. It is a sequence classifier: it cannot chat."
    ),
    "chat": (
        "A candidate chat model: evaluate it offline and in blind comparisons before promoting "
        "it (`tandem models set-status VERSION production`)."
    ),
}


def render_model_card(
    *,
    version: str,
    base: str,
    method: str,
    data: TrainingData,
    config: dict[str, Any],
    metrics: dict[str, Any],
    code_version: str,
    loss_curve: str | None,
) -> str:
    if config.get("full"):
        adapter = "full fine-tuning"
    elif method == "reward":  # the new score head is trained whole: kept merged
        adapter = "LoRA, merged into the base weights"
    else:
        adapter = f"LoRA adapter of {base} (served over it; merged weights only on demand)"
    settings = "\n".join(f"| `{k}` | {v} |" for k, v in config.items())
    shown = ("final_loss", "steps", "epochs", "runtime_s", "samples_per_s", "resumed_from_step")
    results = "\n".join(f"| {k} | {metrics[k]} |" for k in shown if metrics.get(k) is not None)
    summary = f"\n\n{data.summary.strip()}" if data.summary.strip() else ""
    curve = f"![loss curve]({loss_curve})" if loss_curve else "(no loss was logged: too few steps)"
    kind = "reward" if method == "reward" else "chat"
    return f"""# {version}

Trained from **{base}** by {METHOD_NAMES[method]}, {adapter}.

## Data

- dataset: `{data.source}`{f" (snapshot `{data.snapshot_id}`)" if data.snapshot_id else ""}
- content hash: `{data.hash}`
- kind: {data.kind}, {data.rows} training examples{summary}

## Training config

| setting | value |
| --- | --- |
{settings}

Code version: `{code_version}`.

## Results

| metric | value |
| --- | --- |
{results}

{curve}

## Intended use

{_USE[kind]}

## Limitations

- Trained on {data.rows} examples from this deployment's own users: it inherits their topics,
  their language and their biases, and may be worse than the base model outside them.
- The training loss says how well it fits that data, not whether people prefer it: judge it
  with evals and blind comparisons.
- The base model ({base}) is small; training does not add knowledge it lacks.
"""
