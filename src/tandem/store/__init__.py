"""The database: SQLAlchemy 2 models, Alembic migrations, and the repositories that hold every
query. Every repository method touching user-owned data takes the acting user's id; another
user's row raises `NotFound`, exactly like a missing one.

    from tandem.store import make_engine, make_session_factory, migrate, ConversationRepo
    engine = make_engine(settings.database_url); migrate(engine)
    with make_session_factory(engine)() as session:
        conv = ConversationRepo(session).create(user_id, title="hello")
"""

from tandem.store.comparisons import ComparisonRepo
from tandem.store.conversations import ConversationRepo
from tandem.store.datasets import DatasetRepo
from tandem.store.db import SessionFactory, make_engine, make_session_factory, migrate
from tandem.store.evals import EvalRepo
from tandem.store.experiments import ExperimentRepo
from tandem.store.feedback import FeedbackRepo
from tandem.store.files import FileRepo
from tandem.store.generations import GenerationRepo
from tandem.store.group_commit import one_transaction
from tandem.store.implicit import ImplicitSignalRepo
from tandem.store.improvements import ImprovementRepo
from tandem.store.jobs import JobRepo
from tandem.store.memories import MemoryRepo
from tandem.store.model_versions import ModelVersionRepo
from tandem.store.privacy import delete_user_data
from tandem.store.profiles import CustomInstructionsRepo, ProfileRepo
from tandem.store.rater_tasks import RaterTaskRepo
from tandem.store.rollouts import RolloutRepo
from tandem.store.uploads import UploadRepo
from tandem.store.users import (
    ApiKeyRepo,
    SiteSettingsRepo,
    UserRepo,
    WebSessionRepo,
    bootstrap_admin,
)

__all__ = [
    "ApiKeyRepo",
    "ComparisonRepo",
    "ConversationRepo",
    "CustomInstructionsRepo",
    "DatasetRepo",
    "EvalRepo",
    "ExperimentRepo",
    "FeedbackRepo",
    "FileRepo",
    "GenerationRepo",
    "ImplicitSignalRepo",
    "ImprovementRepo",
    "JobRepo",
    "MemoryRepo",
    "ModelVersionRepo",
    "ProfileRepo",
    "RaterTaskRepo",
    "RolloutRepo",
    "SessionFactory",
    "SiteSettingsRepo",
    "UploadRepo",
    "UserRepo",
    "WebSessionRepo",
    "bootstrap_admin",
    "delete_user_data",
    "make_engine",
    "make_session_factory",
    "migrate",
    "one_transaction",
]
