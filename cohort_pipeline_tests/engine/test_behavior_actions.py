"""Actions in behavioural leaves (spec 5.1): an OR of steps, each an event name plus URL and property conditions.

PostHog ``action_to_expr``: ``url_matching`` ``exact`` is equality, ``regex`` an unanchored search, anything else
(``contains``, the default) ClickHouse ``LIKE '%url%'`` - case-sensitive, ``%`` and ``_`` wildcards. A step without
an event matches every event name, an action without steps every event, an unknown action id nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline_tests.engine.test_behavior import NOW, behavioral, group, utc, world

WHEN = utc(2025, 3, 14, 12)


def performed(action: Any, **extra: Any) -> dict[str, Any]:
    return behavioral("performed_event", key=action, event_type="actions", time_value=7, time_interval="day",
                      **extra)


def url_world(step: dict[str, Any]) -> Any:
    w = world()
    w.actions = [{"id": 1, "name": "a", "steps": [step]}]
    for name, url in {
        "exact": "https://posthog.com/feedback/123",
        "longer": "https://posthog.com/feedback/1234",
        "upper": "HTTPS://POSTHOG.COM/FEEDBACK/123",
        "other": "https://example.com/",
        "wildcard": "https://posthogXcom/feedback/123",
    }.items():
        w.event(name, WHEN, **{"$current_url": url})
    w.event("no_url", WHEN)
    w.event("other_event", WHEN, event="$autocapture", **{"$current_url": "https://posthog.com/feedback/123"})
    return w


@pytest.mark.parametrize(
    ("url", "matching", "expected"),
    [
        ("https://posthog.com/feedback/123", "exact", {"exact"}),
        ("posthog.com/feedback/123", "contains", {"exact", "longer"}),
        ("posthog.com/feedback/123", None, {"exact", "longer"}),  # contains is the default
        ("posthog_com/feedback", "contains", {"exact", "longer", "wildcard"}),  # LIKE: _ is any character
        ("feedback%3", "contains", {"exact", "longer", "wildcard"}),  # LIKE: % is any run of characters
        (r"^https://posthog\.com/feedback/\d+$", "regex", {"exact", "longer"}),
        (r"(?i)^https://posthog\.com/feedback/123$", "regex", {"exact", "upper"}),
        ("([", "regex", set()),  # invalid pattern: matches nothing (decision 8)
    ],
)
def test_step_url_matching(url, matching, expected):
    step = {"event": "$pageview", "url": url}
    if matching is not None:
        step["url_matching"] = matching
    assert url_world(step).members(performed(1)) == expected


def test_step_properties_and_or_over_steps():
    w = world()
    w.actions = [{"id": 5, "name": "big purchase or signup", "steps": [
        {"event": "purchase", "properties": [{"key": "amount", "operator": "gt", "value": 100, "type": "event"},
                                             {"key": "currency", "value": "EUR"}]},
        {"event": "signed_up"},
    ]}]
    w.event("big_eur", WHEN, event="purchase", amount=150, currency="EUR")
    w.event("big_usd", WHEN, event="purchase", amount=150, currency="USD")
    w.event("small_eur", WHEN, event="purchase", amount=50, currency="EUR")
    w.event("signup", WHEN, event="signed_up")
    w.event("pageview", WHEN, amount=150, currency="EUR")
    assert w.members(performed(5)) == {"big_eur", "signup"}
    assert w.members(performed("5")) == {"big_eur", "signup"}  # a numeric string names the same action


def test_step_without_event_and_action_without_steps():
    w = world()
    w.actions = [
        {"id": 1, "name": "any event on pricing", "steps": [{"url": "/pricing"}]},
        {"id": 2, "name": "no steps", "steps": []},
    ]
    w.event("pricing_view", WHEN, **{"$current_url": "https://x.com/pricing"})
    w.event("pricing_click", WHEN, event="$autocapture", **{"$current_url": "https://x.com/pricing"})
    w.event("home", WHEN, **{"$current_url": "https://x.com/"})
    w.event("old", utc(2025, 1, 1))
    assert w.members(performed(1)) == {"pricing_view", "pricing_click"}
    assert w.members(performed(2)) == {"pricing_view", "pricing_click", "home"}


def test_unknown_action_matches_nobody_and_its_negation_everybody_of_the_positive_side():
    w = world()
    w.event("a", WHEN).event("b", WHEN)
    assert w.members(performed(404)) == set()
    assert w.members(behavioral("performed_event", time_value=7, time_interval="day"),
                     performed(404, negation=True)) == {"a", "b"}


def test_actions_in_every_behaviour():
    w = world()
    w.actions = [{"id": 3, "name": "checkout", "steps": [{"event": "$pageview", "url": "/checkout"}]},
                 {"id": 4, "name": "paid", "steps": [{"event": "purchase"}]}]
    checkout = {"$current_url": "https://x.com/checkout"}
    w.event("funnel", utc(2025, 3, 10), **checkout).event("funnel", utc(2025, 3, 10, 1), event="purchase")
    w.event("browser", utc(2025, 3, 10), **checkout).event("browser", utc(2025, 3, 11), **checkout)
    w.event("browser", utc(2025, 3, 12), **checkout)
    w.event("home_then_paid", utc(2025, 3, 10)).event("home_then_paid", utc(2025, 3, 10, 1), event="purchase")
    sequence = behavioral("performed_event_sequence", key=3, event_type="actions", time_value=7,
                          time_interval="day", seq_event=4, seq_event_type="actions", seq_time_value=1,
                          seq_time_interval="day")
    assert w.members(sequence) == {"funnel"}
    multiple = behavioral("performed_event_multiple", key=3, event_type="actions", operator="gte",
                          operator_value=3, time_value=7, time_interval="day")
    assert w.members(multiple) == {"browser"}
    regularly = behavioral("performed_event_regularly", key=3, event_type="actions", operator="gte",
                           operator_value=1, time_value=1, time_interval="day", min_periods=3, total_periods=7)
    assert w.members(regularly) == {"browser"}
    first_time = behavioral("performed_event_first_time", key=4, event_type="actions", time_value=7,
                            time_interval="day")
    assert w.members(first_time) == {"funnel", "home_then_paid"}


@pytest.mark.parametrize(
    ("actions", "key", "message"),
    [
        ([{"id": 1, "steps": [{"event": "$autocapture", "selector": "button.buy"}]}], 1, "elements chain"),
        ([{"id": 1, "steps": [{"event": "$pageview", "properties": [{"type": "person", "key": "plan",
                                                                      "value": "pro"}]}]}], 1, "'person'"),
        ([{"id": 1, "steps": [{"event": "$pageview", "url": "x", "url_matching": "glob"}]}], 1, "url_matching"),
        ([], "checkout", "Action id must be an integer"),
    ],
)
def test_actions_the_engine_cannot_evaluate_fail_their_cohort(actions, key, message):
    w = world().person("p")
    w.actions = actions
    errors = w.errors(performed(key))
    assert message in errors[1].message


def test_element_fields_on_other_events_are_ignored_as_in_posthog():
    w = world()
    w.actions = [{"id": 1, "steps": [{"event": "$pageview", "selector": "button"}]}]
    w.event("viewer", WHEN)
    assert w.members(performed(1)) == {"viewer"}


def test_actions_referenced_by_legacy_groups_and_seq_event():
    w = world()
    w.actions = [{"id": 9, "name": "pv", "steps_json": [{"event": "$pageview"}]}]  # PostHog's stored column name
    w.event("recent", utc(2025, 3, 15, 1)).event("older", utc(2025, 3, 10))
    result = w.evaluate([{"id": 1, "groups": [{"action_id": 9, "days": 1}]},
                         {"id": 2, "filters": {"properties": group("AND", performed(9))}}])
    assert result == {1: {"recent"}, 2: {"recent", "older"}}
    assert NOW.day == 15
