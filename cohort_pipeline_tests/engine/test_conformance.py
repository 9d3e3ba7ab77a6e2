"""Every PostHog conformance scenario through the public entry points (evaluate_cohorts + CSV import).

Every scenario must give exactly PostHog's members or error, behavioural ones included (issue #3): actions are
passed as PostHog action JSON with integer ids (``Case.actions``). Scenarios whose cohorts are stored both as
legacy ``groups`` and as PostHog's own conversion into ``filters`` also run from the ``groups`` alone, through the
model's conversion (spec 6.5), and must give the same members.
"""

from __future__ import annotations

import pytest

from cohort_pipeline import evaluate_cohorts, import_static_csv
from cohort_pipeline.errors import CalculationError, CohortValidationError
from cohort_pipeline_tests.conformance_cases import SCENARIO_COHORT_ID, Case, all_case_paths


def _static_members(case: Case, raw: dict) -> list[str]:
    return import_static_csv(raw["csv"], case.persons(), case.person_distinct_ids()).person_ids


def _run(case: Case, *, legacy: bool = False) -> list[str]:
    cohort = case.data["cohort"]
    if cohort.get("is_static") and "csv" in cohort:
        return sorted(_static_members(case, cohort))
    static_memberships = {}
    others = []
    for raw, definition in case.other_definitions():
        if raw.get("is_static") and "csv" in raw:
            static_memberships[definition["id"]] = _static_members(case, raw)
        else:
            others.append(definition)
    memberships = evaluate_cohorts(
        [case.definition(cohort, SCENARIO_COHORT_ID, legacy=legacy), *others],
        case.persons(),
        case.person_distinct_ids(),
        case.events(),
        now=case.now,
        static_memberships=static_memberships,
        actions=case.actions(),
    )
    return sorted(memberships.filter(memberships["cohort_id"] == SCENARIO_COHORT_ID)["person_id"].to_list())


@pytest.mark.parametrize("path", all_case_paths(), ids=lambda p: p.stem)
def test_conformance(path):
    case = Case.load(path)
    if "expected_error" in case.data:
        with pytest.raises((CohortValidationError, CalculationError)):
            _run(case)
        return
    assert _run(case) == case.expected_members()


def _legacy_cases() -> list:
    return [path for path in all_case_paths()
            if Case.load(path).data["cohort"].get("legacy_groups") is not None
            and "expected_error" not in Case.load(path).data]


@pytest.mark.parametrize("path", _legacy_cases(), ids=lambda p: p.stem)
def test_conformance_from_legacy_groups(path):
    """The same scenario with the cohort given only by its legacy ``groups`` (048, 051, 060 use action groups)."""
    case = Case.load(path)
    assert _run(case, legacy=True) == case.expected_members()
