"""The loss curve of a training run, drawn as a PNG next to the model it produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_points(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, training loss) from a Trainer's `state.log_history`; the closing summary entry
    (`train_loss`) is an average, not a point on the curve."""
    return [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e and "step" in e]


def plot_loss_curve(log_history: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Write the curve; None when the run logged no loss (fewer steps than logging_steps)."""
    points = loss_points(log_history)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot's import
    import matplotlib.pyplot as plt

    steps, losses = zip(*points, strict=True)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, marker="o" if len(points) < 30 else None, linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
