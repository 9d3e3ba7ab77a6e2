"""Every cohort definition of the PostHog conformance scenarios goes through the model as the engine uses it.

The scenarios name cohorts by ``ref``; they are given integer ids here, as PostHog's tests used real ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import parse_cohort
from cohort_pipeline.model.filters import COHORT_LEAF_TYPES, iter_leaves

CONFORMANCE_DIR = Path(__file__).parents[1] / "fixtures" / "conformance"
CASES = sorted(CONFORMANCE_DIR.glob("*.json"))
UNKNOWN_COHORT_ID = 999_999


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def resolve(node: Any, ids: dict[str, int]) -> Any:
    if isinstance(node, dict):
        out = {key: resolve(value, ids) for key, value in node.items()}
        if out.get("type") in COHORT_LEAF_TYPES and isinstance(out.get("value"), str) and out["value"] in ids:
            out["value"] = ids[out["value"]]
        return out
    if isinstance(node, list):
        return [resolve(value, ids) for value in node]
    return node


def definitions(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenario's cohorts as PostHog cohort objects (filters win over legacy groups, as in PostHog)."""
    others = case.get("other_cohorts") or []
    ids = {other["ref"]: 1000 + index for index, other in enumerate(others)} | {"c_missing": UNKNOWN_COHORT_ID}
    out = []
    for raw in [case["cohort"], *others]:
        definition: dict[str, Any] = {"is_static": raw.get("is_static", False)}
        if raw.get("filters") is not None:
            definition["filters"] = resolve(raw["filters"], ids)
        elif raw.get("legacy_groups"):
            definition["groups"] = resolve(raw["legacy_groups"], ids)
        out.append(definition)
    return out


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_definitions_parse_on_the_engine_path(path: Path) -> None:
    case = load(path)
    if "expected_error" in case:
        with pytest.raises(CohortValidationError):
            for definition in definitions(case):
                parse_cohort(definition, internal=True)
        return
    for definition in definitions(case):
        cohort = parse_cohort(definition, internal=True)
        for leaf in cohort.leaves():
            if leaf.type in ("person", "person_metadata"):
                assert leaf.operator is not None  # clarification 16: missing means exact


@pytest.mark.parametrize("path", [p for p in CASES if "legacy_groups" in load(p)["cohort"]],
                         ids=lambda p: p.stem)
def test_legacy_groups_alone_give_posthogs_conversion(path: Path) -> None:
    cohort = load(path)["cohort"]
    if "expected_error" in load(path):
        with pytest.raises(CohortValidationError, match="Cohort id must be an integer, got '0 OR 1=1'"):
            parse_cohort({"groups": cohort["legacy_groups"]}, internal=True)
        return
    from_groups = parse_cohort({"groups": cohort["legacy_groups"]}, internal=True).effective_filters()
    from_filters = parse_cohort({"filters": cohort["filters"]}, internal=True).effective_filters()
    for converted, posthog in zip(iter_leaves(from_groups), iter_leaves(from_filters), strict=True):
        if converted.type == "behavioral" and converted.value == "performed_event":
            # 6.5 keeps operator_value 0; PostHog's dump leaves it out; performed_event never reads it
            assert (converted.operator_value, posthog.operator_value) == (0, None)
            converted = converted.model_copy(update={"operator_value": None})
        assert converted.model_dump() == posthog.model_dump()


def test_008_is_rejected_with_posthogs_rule() -> None:
    # conformance 008: performed_event_multiple with eq 0 is a ValueError in PostHog; a 400 here
    case = load(next(CONFORMANCE_DIR.glob("008_*.json")))
    with pytest.raises(CohortValidationError) as caught:
        parse_cohort(case["cohort"])
    assert caught.value.detail == "filters.properties.values[0]: operator_value must be greater than 0"


def test_076_is_rejected_from_clients_twice_over() -> None:
    # conformance 076: the dynamic-cohort type is internal, and the id is not an integer
    case = load(next(CONFORMANCE_DIR.glob("076_*.json")))
    with pytest.raises(CohortValidationError) as caught:
        parse_cohort({"filters": case["cohort"]["filters"]})
    assert caught.value.detail == (
        "filters.properties.values[0].values[0].value: Cohort id must be an integer, got '0 OR 1=1'")
