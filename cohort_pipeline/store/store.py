"""``CohortStore``: the one place where the pipeline's state lives (see the package docstring)."""

from __future__ import annotations

from sqlalchemy.engine import URL

from cohort_pipeline.store._base import Clock
from cohort_pipeline.store.api_keys import ApiKeysMixin
from cohort_pipeline.store.cohorts import CohortsMixin
from cohort_pipeline.store.engine import default_store_url
from cohort_pipeline.store.feature_flags import FeatureFlagsMixin
from cohort_pipeline.store.history import HistoryMixin
from cohort_pipeline.store.members import MembersMixin
from cohort_pipeline.store.migrate import current_revision, head_revision, upgrade
from cohort_pipeline.store.projects import ProjectsMixin
from cohort_pipeline.store.versions import VersioningMixin


class CohortStore(
    ProjectsMixin, CohortsMixin, VersioningMixin, MembersMixin, HistoryMixin, ApiKeysMixin, FeatureFlagsMixin
):
    """Projects, cohorts and their calculation state, memberships, history, API keys and feature flags.

    Construct it from a SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql://...``; default
    ``default_store_url()``) and call ``migrate()`` once before use. Every method runs in its own transaction
    and returns plain frozen records. ``clock`` returns "now" (timezone-aware) for timestamps the store sets;
    tests pass a fake one.
    """

    def __init__(self, url: str | URL | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(url if url is not None else default_store_url(), clock=clock)

    def migrate(self, revision: str = "head") -> str:
        """Run the Alembic migrations up to ``revision`` (idempotent); returns the revision now current."""
        upgrade(self._engine, revision)
        current = current_revision(self._engine)
        assert current is not None
        return current

    def is_migrated(self) -> bool:
        """Whether the database is at the newest migration shipped with this code."""
        return current_revision(self._engine) == head_revision()

    def __repr__(self) -> str:
        return f"CohortStore({self.url.render_as_string(hide_password=True)!r})"
