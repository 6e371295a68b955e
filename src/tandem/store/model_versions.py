"""Model versions as the registry records them: lineage, formats on disk, status, card.

Not user-owned: every signed-in user may list them, and only the registry writes them.

    repo = ModelVersionRepo(session)
    repo.upsert("smollm2-135m-instruct", base_path="/…/models/smollm2-135m-instruct",
                formats={"hf": "hf", "onnx": "onnx-int8"}, status="production")
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.errors import InvalidInput, NotFound
from tandem.store.models import MODEL_STATUSES, ModelVersion

_FIELDS = ("parent_id", "base_path", "formats", "status", "card", "metrics", "config")


class ModelVersionRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(self, model_id: str, **fields: Any) -> ModelVersion:
        """Create the version or update the given fields of an existing one.

        Fields: parent_id, base_path, formats (dict), status (candidate|production|retired),
        card (markdown), metrics (dict), config (dict)."""
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError(f"unknown model version fields {sorted(unknown)}")
        if "status" in fields and fields["status"] not in MODEL_STATUSES:
            raise InvalidInput(f"status must be one of {MODEL_STATUSES}")
        row = self.session.get(ModelVersion, model_id)
        if row is None:
            row = ModelVersion(id=model_id)
            self.session.add(row)
        for key, value in fields.items():
            setattr(row, key, value)
        self.session.commit()
        return row

    def get(self, model_id: str) -> ModelVersion:
        row = self.session.get(ModelVersion, model_id)
        if row is None:
            raise NotFound("model version", model_id)
        return row

    def list(self, status: str | None = None) -> list[ModelVersion]:
        stmt = select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)
        if status is not None:
            stmt = stmt.where(ModelVersion.status == status)
        return list(self.session.scalars(stmt))

    def lineage(self, model_id: str) -> builtins.list[ModelVersion]:
        """The version and its ancestors, newest first."""
        chain: list[ModelVersion] = []
        row: ModelVersion | None = self.get(model_id)
        while row is not None and row not in chain:
            chain.append(row)
            row = self.session.get(ModelVersion, row.parent_id) if row.parent_id else None
        return chain
