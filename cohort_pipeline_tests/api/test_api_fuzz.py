"""Property-based fuzzing of the published OpenAPI schema with schemathesis: no request may cause a 5xx.

Every operation of ``/api/schema/`` is called with generated path ids, query parameters and bodies (JSON and
multipart, valid and invalid), authenticated with a key holding every scope, against a store seeded with cohorts
of each kind and a flag. Bounded (``MAX_EXAMPLES`` per operation, no Hypothesis database) so it runs in well under
a minute; CI runs it with the rest of the suite (``.venv/bin/pytest cohort_pipeline_tests/api/test_api_fuzz.py``).

The app is built when the module is imported (in a temporary folder removed at exit): schemathesis' fixture-based
loader does not work with pytest 9, so the schema is loaded eagerly.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.api.conftest import (
    DISTINCT_IDS_1,
    EVENTS_1,
    P1,
    PAGEVIEW_FILTERS,
    PERSONS_1,
    PRO_FILTERS,
    make_app,
    write_project,
)

MAX_EXAMPLES = 12

_WORKDIR = tempfile.TemporaryDirectory(prefix="cohort_api_fuzz_")


def _seeded_app() -> tuple[Any, str]:
    root = Path(_WORKDIR.name)
    write_project(root / "data", 1, PERSONS_1, DISTINCT_IDS_1, EVENTS_1)
    store = CohortStore(f"sqlite:///{root / 'store.db'}")
    store.migrate()
    store.create_project("Fuzzed", project_id=1)
    key = store.create_api_key(1, ["*"], label="fuzzer")[1]
    pro = store.create_cohort(1, name="pro", filters=PRO_FILTERS)
    store.request_calculation(pro.id)
    store.create_cohort(1, name="visitors", filters=PAGEVIEW_FILTERS)
    static = store.create_cohort(1, name="static", is_static=True)
    store.add_static_members(static.id, [P1])
    store.create_feature_flag(1, key="beta", filters={"groups": [{"properties": [
        {"type": "cohort", "key": "id", "value": pro.id}]}]})
    return make_app(store, root / "data"), key


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _APP, _KEY = _seeded_app()
    schema = schemathesis.openapi.from_asgi("/api/schema/", _APP)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_request_causes_a_server_error(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, checks=[not_a_server_error])
