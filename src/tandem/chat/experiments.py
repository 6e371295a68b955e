"""Whether a chat turn is drawn into a running behavior experiment, and with which variants.

    draw = draw_experiment(session, rng, servable, conversation, profile)   # or None
    draw.models          # the model each side asks for (None: the turn's own)
    draw.arms            # the two variants, A then B before the sides are shuffled

A chat meets its profile's running experiment, else the site default's (tandem.store.
experiments). At the experiment's `comparison_rate` a turn becomes a blind comparison of two of
its variants, a random pair; the sides are shuffled with the rest of the comparison
(tandem.chat.service). A chat or request that pins its own model is left alone, as rollouts
leave it, and so are variants whose model this server cannot serve.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tandem.store.experiments import ExperimentRepo
from tandem.store.models import Conversation, Profile


@dataclass(frozen=True)
class Arm:
    """One variant as a side of a comparison."""

    variant_id: str
    name: str
    prompt_addition: str
    model_version: str | None


@dataclass(frozen=True)
class ExperimentDraw:
    experiment_id: str
    arms: tuple[Arm, Arm]

    @property
    def models(self) -> tuple[str | None, str | None]:
        return self.arms[0].model_version, self.arms[1].model_version


def draw_experiment(
    session: Session,
    rng: random.Random,
    servable: Callable[[str], bool],
    conversation: Conversation,
    profile: Profile | None,
    model: str | None = None,
) -> ExperimentDraw | None:
    """Two variants of the running experiment for this turn, or None (no experiment runs
    here, the turn was not drawn, or the chat pins its model). The random stream is only
    read when an experiment runs, so chats without one draw exactly as before."""
    if model is not None or conversation.model:
        return None
    repo = ExperimentRepo(session)
    experiment = repo.applicable(profile.id if profile else None)
    if experiment is None:
        return None
    arms = [
        Arm(v.id, v.name, v.prompt_addition, v.model_version)
        for v in repo.variants(experiment.id)
        if v.model_version is None or servable(v.model_version)
    ]
    if len(arms) < 2 or rng.random() >= experiment.comparison_rate:
        return None
    a, b = rng.sample(arms, 2)
    return ExperimentDraw(experiment.id, (a, b))
