"""Every behaviour on random data against the naive per-person oracle of test_behavior_plan.py.

The data is built to hit the corners the fused plan optimises around: timestamps on a coarse grid (many events
of one person at the same instant), several distinct ids per person (a sequence may start on one and finish on
another), events of unknown distinct ids, events before, inside and after every window, filter keys present,
missing or null. Each seed is one world; every leaf of the battery (plus same-event and action sequences) must
give exactly the oracle's members.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from cohort_pipeline import evaluate_cohorts
from cohort_pipeline_tests.engine.test_behavior import behavioral, group
from cohort_pipeline_tests.engine.test_behavior_plan import ACTIONS, BATTERY, DECLARED, NOW, TIMEZONE, oracle_member, wd

EVENTS = ["$pageview", "purchase", "feature_used", "signed_up", "$autocapture", "$pageleave"]
URLS = ["https://app.example.com/pricing", "https://app.example.com/settings/billing", "https://example.com/docs",
        "https://app.example.com/Pricing?plan=Pro", "https://app.example.com/\u212aey", {"path": "/PRICING"},
        "https://app.example.com/caf\u00e9/pricing", "https://app.example.com/\u017fettings/billing"]
"""URLs spelled to trip a raw-text shortcut: another case, a Kelvin sign (``(?i)k`` matches it), a JSON object (its
text is the minified object), non-ASCII text; some documents also spell ``/`` as ``\\/`` (see random_world)."""

EXTRA = [
    behavioral("performed_event_sequence", key="purchase", time_value=14, time_interval="day", seq_event="purchase",
               seq_event_type="events", seq_time_value=1, seq_time_interval="day"),
    behavioral("performed_event_sequence", key=2, event_type="actions", time_value=30, time_interval="day",
               seq_event=1, seq_event_type="actions", seq_time_value=6, seq_time_interval="hour"),
    behavioral("performed_event_sequence", key="$pageview", time_value=90, time_interval="day",
               seq_event="feature_used", seq_event_type="events", seq_time_value=3, seq_time_interval="day"),
    behavioral("performed_event_regularly", key="feature_used", operator="gte", operator_value=1, time_value=1,
               time_interval="day", min_periods=3, total_periods=40),
    behavioral("performed_event_first_time", key="purchase", time_value=30, time_interval="day",
               event_filters=[{"type": "event", "key": "$browser", "operator": "exact", "value": "Chrome"}]),
]
LEAVES = BATTERY + EXTRA

#: A negative event filter (a missing $browser passes), with its own oracle: the rows whose JSON the engine skips
#: must answer as a missing property does.
NOT_CHROME = behavioral("performed_event", key="$pageview", time_value=30, time_interval="day",
                        event_filters=[{"type": "event", "key": "$browser", "operator": "is_not", "value": "Chrome"}])


#: Case-insensitive substring filters on $current_url (the engine may skip a document that cannot hold the value).
SUBSTRING_LEAVES = {
    1001: ("icontains", "/pricing"), 1002: ("not_icontains", "/PRICING"), 1003: ("icontains", "/key"),
    1004: ("icontains", ["/docs", "billing"]), 1005: ("icontains", "pro"), 1006: ("icontains", "/settings"),
}


def substring_leaf(operator: str, value: Any) -> dict[str, Any]:
    return behavioral("performed_event", key="$pageview", time_value=30, time_interval="day",
                      event_filters=[{"type": "event", "key": "$current_url", "operator": operator, "value": value}])


def substring_member(events: list[dict[str, Any]], operator: str, value: Any) -> bool:
    """The oracle: the property's text (objects as minified JSON) searched like the engine's ``(?is)`` regex
    (whose case folding matches the Kelvin sign with k and the long s with s)."""
    lower, upper = wd(30, "day")
    needles = value if isinstance(value, list) else [value]

    def answer(url: Any) -> bool:
        if url is None:
            return operator == "not_icontains"
        text = url if isinstance(url, str) else json.dumps(url, separators=(",", ":"), ensure_ascii=False)
        found = any(re.search(re.escape(needle), text, re.IGNORECASE | re.DOTALL) for needle in needles)
        return found if operator == "icontains" else not found

    return any(e["event"] == "$pageview" and lower <= e["ts"] <= upper and answer(e["properties"].get("$current_url"))
               for e in events)


def not_chrome_member(events: list[dict[str, Any]]) -> bool:
    lower, upper = wd(30, "day")
    return any(e["event"] == "$pageview" and lower <= e["ts"] <= upper and e["properties"].get("$browser") != "Chrome"
               for e in events)


def random_world(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = random.Random(seed)
    persons = [f"p{i:03d}" for i in range(40)]
    distinct_ids = {f"{p}-{k}": p for p in persons for k in range(rng.choice([1, 1, 2, 3]))}
    distinct_ids |= {p: p for p in persons if rng.random() < 0.5}
    owners = list(distinct_ids) + ["ghost-1", "ghost-2"]
    start = NOW - timedelta(days=120)
    # each id is active over its own stretch of days (first-time and restarted need late starters and pauses)
    active = {owner: sorted(rng.sample(range(125), 2)) for owner in owners}
    rows = []
    for _ in range(6000):
        owner = rng.choice(owners)
        # a coarse grid (2 h steps) makes same-instant events common; a few events sit on exact microseconds
        first_day, last_day = active[owner]
        at = start + timedelta(hours=2 * rng.randrange(12 * first_day, 12 * (last_day + 1)))
        if rng.random() < 0.1:
            at += timedelta(microseconds=rng.choice([1, 999_999]))
        properties: dict[str, Any] = {}
        if rng.random() < 0.8:
            properties["$browser"] = rng.choice(["Chrome", "Chrome", "Safari", None])
        if rng.random() < 0.7:
            properties["$current_url"] = rng.choice(URLS)
        if rng.random() < 0.6:
            properties["amount"] = rng.choice([5, 20, 21, 50.5])
        document = json.dumps(properties, ensure_ascii=rng.random() < 0.5)  # non-ASCII text raw or escaped
        if rng.random() < 0.1:  # JSON may spell any character as an escape: "Chrome" without the text Chrome
            document = document.replace('"Chrome"', '"\\u0043hrome"')
        if rng.random() < 0.1:  # ... and "/pricing" without the text /pricing
            document = document.replace("/pricing", "\\/pricing")
        rows.append({"event": rng.choice(EVENTS), "distinct_id": owner, "timestamp": at, "properties": document})
    persons_frame = pl.DataFrame(
        {"id": persons, "created_at": [NOW] * len(persons), "properties": ["{}"] * len(persons)},
        schema={"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String})
    ids = pl.DataFrame({"distinct_id": list(distinct_ids), "person_id": list(distinct_ids.values())})
    events = pl.DataFrame(rows, schema={"event": pl.String, "distinct_id": pl.String,
                                        "timestamp": pl.Datetime("us", "UTC"), "properties": pl.String})
    return persons_frame, ids, events.with_row_index("uuid").with_columns(pl.col("uuid").cast(pl.String))


@pytest.mark.parametrize("seed", range(6))
def test_every_leaf_matches_the_oracle_on_random_data(seed):
    persons, ids, events = random_world(seed)
    cohorts = [{"id": index + 1, "filters": {"properties": group("AND", leaf)}} for index, leaf in enumerate(LEAVES)]
    cohorts.append({"id": 1000, "filters": {"properties": group("AND", NOT_CHROME)}})
    cohorts += [{"id": cohort_id, "filters": {"properties": group("AND", substring_leaf(*filter_))}}
                for cohort_id, filter_ in SUBSTRING_LEAVES.items()]
    result = evaluate_cohorts(cohorts, persons, ids, events, now=NOW, timezone=TIMEZONE, actions=ACTIONS,
                              property_definitions=DECLARED)
    assert result.equals(result.sort("cohort_id", "person_id"))  # ordered, as documented
    assert not result.is_duplicated().any()
    got: dict[int, set[str]] = defaultdict(set)
    for cohort_id, person_id in result.iter_rows():
        got[cohort_id].add(person_id)
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in events.join(ids, on="distinct_id").iter_rows(named=True):
        by_person[row["person_id"]].append(
            {"event": row["event"], "ts": row["timestamp"], "properties": json.loads(row["properties"])})
    for index, leaf in enumerate(LEAVES):
        expected = {person for person, rows in by_person.items() if oracle_member(leaf, rows)}
        assert got[index + 1] == expected, (index, leaf["value"])
    assert got[1000] == {person for person, rows in by_person.items() if not_chrome_member(rows)}
    for cohort_id, (operator, value) in SUBSTRING_LEAVES.items():
        expected = {person for person, rows in by_person.items() if substring_member(rows, operator, value)}
        assert got[cohort_id] == expected, (operator, value)
