"""Static cohorts from uploaded ids: CSV parsing (spec 7.2) and matching ids to persons (spec 7.3, 7.4).

One call does the whole CSV import::

    result = import_static_csv(upload_bytes, persons, person_distinct_ids)
    result.person_ids            # unique member person ids, sorted
    result.parsed.rows_skipped   # parse-stage accounting (PostHog's CohortCSVImport)
    result.match.unmatched_count # match-stage accounting

The two stages stay separate functions because PostHog runs them at different times (parse synchronously in
the request, so a bad file is a 400 at once; match later in a task) and ``_create_static_person_ids`` needs only
the second one (``match_person_ids``). This package does no I/O and keeps no state: storing members and the
import record is the store layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from cohort_pipeline.static.csv_import import IdType, ParsedCSV, parse_cohort_csv
from cohort_pipeline.static.matching import (
    UNMATCHED_SAMPLE_CAP,
    FrameLike,
    StaticMatch,
    match_ids,
    match_person_ids,
)

__all__ = [
    "UNMATCHED_SAMPLE_CAP",
    "FrameLike",
    "IdType",
    "ParsedCSV",
    "StaticImport",
    "StaticMatch",
    "import_static_csv",
    "match_ids",
    "match_person_ids",
    "parse_cohort_csv",
]


@dataclass(frozen=True)
class StaticImport:
    """A finished CSV import: what was read from the file and whom it resolved to."""

    parsed: ParsedCSV
    match: StaticMatch

    @property
    def person_ids(self) -> list[str]:
        """The cohort's members from this upload (unique, sorted)."""
        return self.match.person_ids


def import_static_csv(
    data: bytes | bytearray | memoryview | str,
    persons: FrameLike,
    person_distinct_ids: FrameLike,
) -> StaticImport:
    """Parse a static-cohort CSV upload and resolve its ids to the project's persons.

    Raises ``CSVImportError`` (PostHog's exact message) when the file is rejected; unknown ids are not an error,
    they are counted in ``match.unmatched_count``. Re-importing the same file yields the same members, so adding
    them to a cohort is idempotent once the store ignores existing pairs (spec 7.4).
    """
    parsed = parse_cohort_csv(data)
    return StaticImport(parsed=parsed, match=match_ids(parsed.id_type, parsed.ids, persons, person_distinct_ids))
