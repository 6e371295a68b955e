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

# Behavior experiments (docs/experiments.md): an admin's variants of a default behavior, met
# blind in comparisons. A variant adds text to the system prompt or swaps the model version.
VariantKind = Literal["system_prompt", "model_version"]
VARIANT_KINDS: tuple[VariantKind, ...] = get_args(VariantKind)
VARIANT_KIND_LABELS: dict[VariantKind, str] = {
    "system_prompt": "System prompt addition",
    "model_version": "Model version",
}
ExperimentStatus = Literal["draft", "running", "stopped"]
EXPERIMENT_STATUSES: tuple[ExperimentStatus, ...] = get_args(ExperimentStatus)
# What an experiment's result recommends (tandem.evals.experiments).
Recommendation = Literal["make_default", "personalize", "no_difference"]
RECOMMENDATIONS: tuple[Recommendation, ...] = get_args(Recommendation)
RECOMMENDATION_LABELS: dict[Recommendation, str] = {
    "make_default": "Make it the default",
    "personalize": "Offer it as a personalization",
    "no_difference": "No difference yet",
}

# Implicit signals: what people do with an answer without rating it (tandem.store.implicit).
# Each points at the generation it judges: the answer regenerated, stopped mid-stream, copied,
# the answer to a question the user edited and resent, the answer the next message corrects.
ImplicitKind = Literal["regenerate", "stop", "copy", "edit_resend", "corrective_followup"]
IMPLICIT_KINDS: tuple[ImplicitKind, ...] = get_args(ImplicitKind)
IMPLICIT_KIND_LABELS: dict[ImplicitKind, str] = {
    "regenerate": "Regenerated",
    "stop": "Stopped mid-answer",
    "copy": "Copied",
    "edit_resend": "Question edited and resent",
    "corrective_followup": "Corrected by the next message",
}
# The kinds that say "this answer was not good enough": the weak KTO negatives (label false).
# A copy says the opposite, so it never becomes a negative.
IMPLICIT_NEGATIVE_KINDS: tuple[ImplicitKind, ...] = (
    "regenerate",
    "stop",
    "edit_resend",
    "corrective_followup",
)
# The implicit kinds a client reports itself (POST /api/messages/{id}/signals); the others are
# recorded by the server as the chat happens.
ClientImplicitKind = Literal["copy"]
CLIENT_IMPLICIT_KINDS: tuple[ClientImplicitKind, ...] = get_args(ClientImplicitKind)

# The signals the admin console lists (GET /api/admin/signals): thumbs (with reasons and a
# comment), blind-comparison votes, improved answers, and the implicit kinds.
SignalKind = Literal["thumbs", "vote", "improvement", ImplicitKind]
SIGNAL_KINDS: tuple[SignalKind, ...] = get_args(SignalKind)
SIGNAL_KIND_LABELS: dict[SignalKind, str] = {
    "thumbs": "Thumbs",
    "vote": "Comparison votes",
    "improvement": "Improved answers",
}
for _kind in IMPLICIT_KINDS:
    SIGNAL_KIND_LABELS[_kind] = IMPLICIT_KIND_LABELS[_kind]

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


# Rater tasks (docs/raters.md): what raters do with a task's items, and the snapshot kind each
# task kind feeds. A ranking orders N answers (ties allowed, 1 = best); a demonstration is a
# multi-turn conversation in which the rater rewrote the model's turns where they fell short;
# a spec label judges one response against the behavior spec, behavior by behavior (it
# measures a model, so it feeds no dataset); a red-team finding is a conversation on which the
# model broke a named rule, and becomes a regression case (tandem.evals.regressions).
RaterTaskKind = Literal["ranking", "demonstration", "spec_label", "red_team"]
RATER_TASK_KINDS: tuple[RaterTaskKind, ...] = get_args(RaterTaskKind)
RATER_TASK_KIND_LABELS: dict[RaterTaskKind, str] = {
    "ranking": "Ranking: order answers to a prompt",
    "demonstration": "Demonstration: chat, rewriting the model's turns",
    "spec_label": "Spec labels: judge a response against the behavior spec",
    "red_team": "Red team: find a prompt on which the model breaks a rule",
}
# A spec label, behavior by behavior.
SpecLabel = Literal["pass", "fail", "na"]
SPEC_LABELS: tuple[SpecLabel, ...] = get_args(SpecLabel)
SPEC_LABEL_NAMES: dict[SpecLabel, str] = {"pass": "Pass", "fail": "Fail", "na": "Not applicable"}
DATASET_KIND_FOR_TASK: dict[RaterTaskKind, DatasetKind] = {
    "ranking": "preference",
    "demonstration": "sft",
}
AssignmentStatus = Literal["pending", "submitted"]
ASSIGNMENT_STATUSES: tuple[AssignmentStatus, ...] = get_args(AssignmentStatus)
# Where a snapshot's rows come from: the product's signals, or one rater task.
DatasetSource = Literal["signals", "rater_task"]
DATASET_SOURCES: tuple[DatasetSource, ...] = get_args(DatasetSource)
# Provenance keys a rater row carries beside its ids: values, not signal ids, so they are
# written to provenance.jsonl but not recorded as signals the snapshot read.
PROVENANCE_VALUES: tuple[str, ...] = ("item_agreement", "adjudicated_by")


def is_rater_task_kind(value: str) -> TypeGuard[RaterTaskKind]:
    return value in RATER_TASK_KINDS
