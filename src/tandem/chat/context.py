"""Everything a chat turn is built from, read once, in the request's one transaction.

    with one_transaction(session_factory) as session:
        ctx = load_context(session, catalog, user_id, conversation_id, model, draw=rng)
    ctx.conversation, ctx.profile, ctx.engine    # the chat, its profile, the model that answers
    ctx.system_prompt()                          # instructions, memories, profile, chat prompt
    ctx.compared                                 # two engines when the turn is a blind comparison

A web chat message used to read its conversation, profile and rollout twice (once to decide
whether the turn is a blind comparison, once to answer it), in six or seven transactions; now
one function reads them once and returns a value every later step takes.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tandem.chat.experiments import ExperimentDraw, draw_experiment
from tandem.chat.render import render_system_prompt
from tandem.core.errors import NotFound
from tandem.core.generation import SamplingParams
from tandem.engines.base import Engine
from tandem.engines.catalog import ModelCatalog
from tandem.rollout.routing import applicable_rollout, served_version
from tandem.store import (
    ConversationRepo,
    CustomInstructionsRepo,
    MemoryRepo,
    ProfileRepo,
    RolloutRepo,
    SiteSettingsRepo,
    UserRepo,
)
from tandem.store.models import Conversation, CustomInstructions, Memory, Profile

# A chat ends an answer that starts repeating itself (tandem.engines.loops): the person sees it
# was cut and can continue it; the /v1 API sends what the client asked for.
CHAT_SAMPLING: dict[str, Any] = {"stop_loops": True}


def resolve_sampling(
    defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> SamplingParams:
    """SamplingParams from profile defaults, then per-request overrides (None means unset)."""
    merged = {**(defaults or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return SamplingParams.from_dict(merged)


@dataclass(frozen=True)
class ChatContext:
    """A conversation as one request found it: who asks, in which chat, answered by what."""

    user_id: str
    conversation: Conversation
    # None without one, or when its owner stopped sharing it: the chat goes on without it.
    profile: Profile | None
    custom: CustomInstructions
    # Memory is on for the user and for this chat; `memories` are then in the system message.
    memory_on: bool
    memories: tuple[str, ...]
    engine: Engine
    # The two engines of a blind comparison (drawn for this turn or asked for), A then B
    # before the sides are shuffled; None when the turn has one answer.
    compared: tuple[Engine, Engine] | None = None
    # The behavior experiment's two variants when the comparison was drawn for one (their
    # models are `compared`; a system-prompt variant's text goes into its side's prompt).
    experiment: ExperimentDraw | None = None

    def sampling(self, overrides: Mapping[str, Any] | None = None) -> SamplingParams:
        """The chat's defaults (loops cut, the profile's), then the request's `overrides`."""
        defaults = {**CHAT_SAMPLING, **(self.profile.sampling if self.profile else {})}
        return resolve_sampling(defaults, overrides)

    def system_prompt(self) -> str | None:
        custom = self.custom if self.custom.enabled else None
        return render_system_prompt(
            about_user=custom.about_user if custom else "",
            response_style=custom.response_style if custom else "",
            profile_instructions=self.profile.instructions if self.profile else "",
            system_prompt=self.conversation.system_prompt or "",
            memories=self.memories,
        )

    def remembering(self, memory: Memory | None) -> ChatContext:
        """This context with a memory the request just saved, listed last like the newest."""
        if memory is None:
            return self
        return dataclasses.replace(self, memories=(*self.memories, memory.text))


def draw_comparison(
    session: Session,
    rng: random.Random,
    servable: Callable[[str], bool],
    conversation: Conversation,
    profile: Profile | None,
    model: str | None = None,
) -> tuple[str | None, str | None] | None:
    """Whether the next user turn is answered as a blind comparison (admin setting
    `comparison_rate`, default 0), and with which two models (`comparison_models`;
    (None, None) means two samples of the turn's own model).

    When neither the request (`model`) nor the conversation pins a model, a rollout with a
    candidate `in_comparisons` pits that candidate against its production, at the rollout's
    own `comparison_rate` when it sets one."""
    site = SiteSettingsRepo(session)
    rate = site.get_float("comparison_rate")
    models = site.get("comparison_models")
    pair = None
    if model is None:
        pair, rollout_rate = _rollout_pair(session, rng, servable, conversation, profile)
        rate = rollout_rate if pair is not None and rollout_rate is not None else rate
    if rate <= 0 or rng.random() >= rate:
        return None
    if pair is not None:
        return pair
    # A configured model that has since been removed must not break every chat: fall back to
    # two samples of the turn's own model.
    if isinstance(models, list) and len(models) == 2 and all(servable(m) for m in models):
        return str(models[0]), str(models[1])
    return None, None


def _rollout_pair(
    session: Session,
    rng: random.Random,
    servable: Callable[[str], bool],
    conversation: Conversation,
    profile: Profile | None,
) -> tuple[tuple[str, str] | None, float | None]:
    """(production, candidate) of the conversation's rollout, and the rollout's own comparison
    rate; (None, None) when no rollout applies or none of its servable candidates is in
    comparisons."""
    if conversation.model:
        return None, None
    rollout = applicable_rollout(
        session, profile.id if profile else None, profile.model_version if profile else None
    )
    if rollout is None or not servable(rollout.production_version):
        return None, None
    compared = [
        c.version
        for c in RolloutRepo(session).candidates(rollout.id)
        if c.in_comparisons and servable(c.version)
    ]
    if not compared:
        return None, None
    return (rollout.production_version, rng.choice(compared)), rollout.comparison_rate


def load_context(
    session: Session,
    catalog: ModelCatalog,
    user_id: str,
    conversation_id: str,
    model: str | None = None,
    *,
    default_model: str | None = None,
    versus: tuple[str | None, str | None] | None = None,
    draw: random.Random | None = None,
) -> ChatContext:
    """The user's conversation `conversation_id` (NotFound for another's) and what answers it:
    `model`, else the chat's pinned model, the rollout's version for this user, the profile's
    model, `default_model`, the catalog's default. `versus` asks for a blind comparison of two
    models (None: the turn's own); with `draw`, the admin's comparison rate decides whether
    this turn is one (tandem.chat.comparison). An unknown model is ModelNotFound, before
    anything is stored."""
    conversation = ConversationRepo(session).get(user_id, conversation_id)
    profile = None
    if conversation.profile_id:
        try:
            profile = ProfileRepo(session).get(user_id, conversation.profile_id)
        except NotFound:
            profile = None  # the owner stopped sharing it; chat goes on without it
    custom = CustomInstructionsRepo(session).get(user_id)
    memory_on = UserRepo(session).get(user_id).memory_enabled and conversation.use_memory
    memories = tuple(m.text for m in MemoryRepo(session).list(user_id)) if memory_on else ()

    def servable(version: str) -> bool:
        return version in catalog

    pair = versus
    experiment = None
    if draw is not None:
        # A running behavior experiment draws first (at its own rate); the turns it leaves
        # are drawn as before (the site's rate, a rollout's candidates).
        experiment = draw_experiment(session, draw, servable, conversation, profile, model)
        drawn = experiment.models if experiment is not None else None
        if drawn is None:
            drawn = draw_comparison(session, draw, servable, conversation, profile, model)
        if drawn is not None:
            pair = (drawn[0] or model, drawn[1] or model)
    asked = [pair[0], pair[1] or pair[0]] if pair else [model]
    if experiment is not None and pair is not None:
        asked = list(pair)  # each side's own model: None is the turn's, not the other side's
    rolled = None
    if any(not (m or conversation.model) for m in asked):
        # No pin: the rollout decides (sticky per user), read per turn so a promotion or
        # rollback serves at once. The generation record names the version.
        rolled = served_version(
            session,
            user_id,
            profile.id if profile else None,
            profile.model_version if profile else None,
            servable,
        )
    fallback = (profile.model_version if profile else None) or default_model
    engines = [
        catalog.get(m or conversation.model or rolled or fallback or catalog.default_model)
        for m in asked
    ]
    return ChatContext(
        user_id,
        conversation,
        profile,
        custom,
        memory_on,
        memories,
        engines[0],
        (engines[0], engines[1]) if pair else None,
        experiment,
    )
