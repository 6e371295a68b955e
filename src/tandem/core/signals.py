"""The vocabularies of signals and datasets, declared once for every layer.

The database checks against these tuples, the API validates with them, the web pages hand the
labels to the templates and the JavaScript, and the training code maps methods to the dataset
kinds they read. Adding a reason or a column is a change to this file and nowhere else.
"""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

# Why a person gave a thumbs-down, with the label the chat shows for it.
FeedbackReason = Literal[
    "not_factual", "didnt_follow_instructions", "refused", "too_long", "unsafe", "other"
]
FEEDBACK_REASONS: tuple[FeedbackReason, ...] = get_args(FeedbackReason)
FEEDBACK_REASON_LABELS: dict[FeedbackReason, str] = {
    "not_factual": "Not factually correct",
    "didnt_follow_instructions": "Didn't follow instructions",
    "refused": "Refused when it shouldn't have",
    "too_long": "Too long",
    "unsafe": "Unsafe or harmful",
    "other": "Other",
}

RatingValue = Literal["up", "down"]
RATINGS: tuple[RatingValue, ...] = get_args(RatingValue)

# A blind comparison's outcome: answer a, answer b, a tie, or neither is good.
Verdict = Literal["a", "b", "tie", "both_bad"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
VERDICT_LABELS: dict[Verdict, str] = {
    "a": "A is better",
    "b": "B is better",
    "tie": "Tie",
    "both_bad": "Both are bad",
}

# The signals the admin console lists (GET /api/admin/signals): thumbs (with reasons and a
# comment), blind-comparison votes, and improved answers.
SignalKind = Literal["thumbs", "vote", "improvement"]
SIGNAL_KINDS: tuple[SignalKind, ...] = get_args(SignalKind)
SIGNAL_KIND_LABELS: dict[SignalKind, str] = {
    "thumbs": "Thumbs",
    "vote": "Comparison votes",
    "improvement": "Improved answers",
}

# Dataset snapshot kinds and their columns: TRL's column names, exactly (SFTTrainer,
# DPOTrainer/RewardTrainer, KTOTrainer).
DatasetKind = Literal["sft", "preference", "kto"]
DATASET_KINDS: tuple[DatasetKind, ...] = get_args(DatasetKind)
DATASET_COLUMNS: dict[DatasetKind, tuple[str, ...]] = {
    "sft": ("messages",),
    "preference": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}

# Training methods and the dataset kind each one reads.
TrainMethod = Literal["sft", "dpo", "kto", "reward"]
TRAIN_METHODS: tuple[TrainMethod, ...] = get_args(TrainMethod)
DATASET_KIND_FOR_METHOD: dict[TrainMethod, DatasetKind] = {
    "sft": "sft",
    "dpo": "preference",
    "kto": "kto",
    "reward": "preference",
}


def is_dataset_kind(value: str) -> TypeGuard[DatasetKind]:
    """Narrows a string from outside (a CLI option, a request) to a dataset kind."""
    return value in DATASET_KINDS


def is_train_method(value: str) -> TypeGuard[TrainMethod]:
    """Narrows a string from outside (a CLI command, a flywheel config) to a training method."""
    return value in TRAIN_METHODS
