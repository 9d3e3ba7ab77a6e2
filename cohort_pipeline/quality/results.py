"""What a quality validation reports: one result per check, and the verdict per cohort.

These types are plain data with no GX or Dagster objects inside, so the service layer, the CLI and Dagster checks
can all read them, keep them in calculation history and turn them into their own presentation
(``to_metadata()`` is Dagster-ready: only strings and numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How a failed check is handled. The values are the names of Dagster's ``AssetCheckSeverity`` members."""

    ERROR = "ERROR"
    """Blocks publishing of the cohorts the failure concerns."""
    WARN = "WARN"
    """Reported only; the cohort is still published."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    ``description`` says what was checked when it passed and what failed otherwise, with a few example rows.
    ``unexpected_count`` is GX's count of offending rows (membership checks) or cohorts (cohort-level checks).
    ``cohort_ids`` are the cohorts a failure concerns; ``examples`` a few offending rows as plain dicts.
    """

    name: str
    severity: Severity
    success: bool
    description: str
    unexpected_count: int = 0
    cohort_ids: frozenset[int] = frozenset()
    examples: tuple[Mapping[str, Any], ...] = ()

    @property
    def status(self) -> str:
        """``passed``, ``failed`` (an ERROR check) or ``warned`` (a WARN check)."""
        if self.success:
            return "passed"
        return "failed" if self.severity is Severity.ERROR else "warned"

    def to_metadata(self) -> dict[str, int | str]:
        """This check alone as Dagster metadata (e.g. for an ``AssetCheckResult``)."""
        return {
            "status": self.status,
            "unexpected": self.unexpected_count,
            "cohort_ids": _ids_text(self.cohort_ids),
            "description": self.description,
        }


@dataclass(frozen=True)
class MembershipValidation:
    """The result of validating one candidate membership (every cohort of one run).

    ``success`` considers ERROR checks only. ``failed_cohort_ids`` are the cohorts an ERROR failure concerns:
    a run refuses to publish exactly those and publishes ``publishable_cohort_ids``.
    """

    checks: tuple[CheckResult, ...]
    cohort_ids: frozenset[int]
    """Every cohort of the run: those with candidate rows, expected counts or previous counts."""
    row_count: int
    seconds: float

    @property
    def success(self) -> bool:
        return all(check.success for check in self.checks if check.severity is Severity.ERROR)

    @property
    def errors(self) -> tuple[CheckResult, ...]:
        """Failed ERROR checks."""
        return tuple(c for c in self.checks if not c.success and c.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        """Failed WARN checks."""
        return tuple(c for c in self.checks if not c.success and c.severity is Severity.WARN)

    @property
    def failed_cohort_ids(self) -> frozenset[int]:
        return frozenset().union(*(c.cohort_ids for c in self.errors))

    @property
    def warned_cohort_ids(self) -> frozenset[int]:
        return frozenset().union(*(c.cohort_ids for c in self.warnings))

    @property
    def publishable_cohort_ids(self) -> frozenset[int]:
        return self.cohort_ids - self.failed_cohort_ids

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``; ``KeyError`` if it did not run."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no quality check named {name!r}; ran: {', '.join(c.name for c in self.checks)}")

    def failure_message(self, cohort_id: int) -> str | None:
        """Why ``cohort_id`` must not be published (for the run log and its calculation history), or ``None``."""
        reasons = [f"{c.name}: {c.description}" for c in self.errors if cohort_id in c.cohort_ids]
        return "Quality checks failed: " + " | ".join(reasons) if reasons else None

    @property
    def status(self) -> str:
        if not self.success:
            return "failed"
        return "passed with warnings" if self.warnings else "passed"

    def summary(self) -> str:
        """One line per check, failures with their description."""
        lines = [f"Membership quality {self.status}: {self.row_count:,} rows, {len(self.cohort_ids)} cohorts."]
        for check in self.checks:
            detail = "" if check.success else f": {check.description}"
            lines.append(f"[{check.status}] {check.name} ({check.severity}){detail}")
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, int | float | str]:
        """Dagster metadata: numbers (plotted across runs) and strings only."""
        metadata: dict[str, int | float | str] = {
            "quality/status": self.status,
            "quality/rows": self.row_count,
            "quality/cohorts": len(self.cohort_ids),
            "quality/failed_cohorts": len(self.failed_cohort_ids),
            "quality/failed_cohort_ids": _ids_text(self.failed_cohort_ids),
            "quality/warned_cohort_ids": _ids_text(self.warned_cohort_ids),
            "quality/seconds": round(self.seconds, 3),
        }
        for check in self.checks:
            metadata[f"quality/{check.name}"] = check.status
            metadata[f"quality/{check.name}/unexpected"] = check.unexpected_count
        metadata["quality/summary"] = self.summary()
        return metadata


def _ids_text(ids: frozenset[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids)) if ids else "none"
