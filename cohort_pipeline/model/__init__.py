"""The PostHog cohort object and filter grammar, and every 400-class validation rule (ARCHITECTURE: model/).

The API, the CLI and Dagster validate client input with :func:`parse_cohort` / :func:`parse_filters` and so
reject the same bad definition with the same message; the engine parses stored and legacy definitions with
``internal=True``.
"""

from cohort_pipeline.model.cohort import (
    CohortDefinition,
    check_root_not_negated,
    negation_flag,
    parse_cohort,
)
from cohort_pipeline.model.cohort_type import (
    compute_cohort_type,
    required_cohort_type,
    validate_cohort_type,
)
from cohort_pipeline.model.filters import (
    PERSON_OPERATORS,
    BehavioralFilter,
    CohortFilter,
    CohortFilters,
    EventFilterGroup,
    EventPropertyFilter,
    FilterGroup,
    Leaf,
    PersonFilter,
    PersonMetadataFilter,
    iter_leaves,
    parse_filters,
)
from cohort_pipeline.model.legacy import convert_legacy_groups
from cohort_pipeline.model.references import dependency_order, find_cycle, validate_no_cycles

__all__ = [
    "PERSON_OPERATORS",
    "BehavioralFilter",
    "CohortDefinition",
    "CohortFilter",
    "CohortFilters",
    "EventFilterGroup",
    "EventPropertyFilter",
    "FilterGroup",
    "Leaf",
    "PersonFilter",
    "PersonMetadataFilter",
    "check_root_not_negated",
    "compute_cohort_type",
    "convert_legacy_groups",
    "dependency_order",
    "find_cycle",
    "iter_leaves",
    "negation_flag",
    "parse_cohort",
    "parse_filters",
    "required_cohort_type",
    "validate_cohort_type",
    "validate_no_cycles",
]
