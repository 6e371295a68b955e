"""Generation records: which weights, engine, sampling and prompt produced an answer.

Written once, never updated: signals and dataset snapshots point at them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.errors import NotFound
from tandem.core.generation import GenerationRecord
from tandem.core.messages import Message
from tandem.store.models import StoredGeneration, new_id


class GenerationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        user_id: str,
        record: GenerationRecord,
        input_messages: Sequence[Message] = (),
        output_text: str = "",
        generation_id: str | None = None,
    ) -> StoredGeneration:
        row = StoredGeneration(
            id=generation_id or new_id(),
            user_id=user_id,
            model_version=record.model_version,
            backend=record.engine,
            sampling=record.sampling.to_dict(),
            seed=record.seed,
            rendered_prompt=record.rendered_prompt,
            input_messages=[m.to_dict() for m in input_messages],
            output_text=output_text,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            latency_s=record.latency_s,
            time_to_first_token_s=record.time_to_first_token_s,
            finish_reason=record.finish_reason,
            tool_calls=list(record.tool_calls),
            context=dict(record.context),
            notices=list(record.notices),
        )
        self.session.add(row)
        self.session.commit()
        return row

    def get(self, user_id: str, generation_id: str) -> StoredGeneration:
        row = self.session.scalar(
            select(StoredGeneration).where(
                StoredGeneration.id == generation_id, StoredGeneration.user_id == user_id
            )
        )
        if row is None:
            raise NotFound("generation", generation_id)
        return row

    def get_many(self, user_id: str, ids: Sequence[str]) -> dict[str, StoredGeneration]:
        """The user's records among `ids`, by id (others' and unknown ids are left out)."""
        if not ids:
            return {}
        rows = self.session.scalars(
            select(StoredGeneration).where(
                StoredGeneration.id.in_(list(ids)), StoredGeneration.user_id == user_id
            )
        )
        return {row.id: row for row in rows}

    def list(self, user_id: str, limit: int = 100) -> list[StoredGeneration]:
        return list(
            self.session.scalars(
                select(StoredGeneration)
                .where(StoredGeneration.user_id == user_id)
                .order_by(StoredGeneration.created_at.desc())
                .limit(limit)
            )
        )
