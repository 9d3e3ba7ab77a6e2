"""Every person-property operator of spec 4.3 through the public ``evaluate_cohorts``, table-driven.

The expected member sets were worked out BY HAND from the spec (decisions 2, 8, 10-13, 16-18, sections 4.1-4.3,
6.2) against the fixed persons table below -- never copied from the engine's output. Each row names the rule it
checks; where the spec is genuinely ambiguous the row's comment says so and picks what a PostHog user would
expect.

Reading guide for the table: ``S("01 03")`` is {p01, p03}; ``ALL_BUT("01")`` is every person except p01 (negative
operators match persons whose property is missing, so their sets are usually written that way).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from cohort_pipeline.engine.evaluate import evaluate_cohorts
from cohort_pipeline.errors import CalculationError

# ---------------------------------------------------------------------------------------------------------------
# The fixed persons table
# ---------------------------------------------------------------------------------------------------------------
#
# key        what it covers
# plan       strings, case, "" (a value, clar 10), JSON null, missing
# num        inferred Numeric: JSON ints/floats/negatives + numeric strings "5", "10" (clar 11)
# mixed      inferred String: JSON numbers + "abc" + "" + "NaN"  -> string ordering ("9" > "10"); declared Numeric
# flag       inferred Boolean (only JSON booleans)
# flagstr    inferred String: JSON true/false + "true"/"false"/"yes"/"TRUE"; declared Boolean
# code       ILIKE wildcards: "a_c", "a%c" hold the literal characters
# email      regex / icontains
# signup     dates in many formats (ISO Z, date-only, unix s, unix ms, dd/mm/yyyy, yyyy/mm/dd, RFC 822, fraction)
# version    semver strings (incl. pre-release and 1.2.10 vs 1.2.3)
# obj        JSON objects vs a string holding JSON
# $browser, utm.source, quo"te, café, sp ace: special key names
# (p15 holds `plan`/`num` only inside a nested object: nested keys are not top-level properties)

PROPERTIES: dict[str, dict] = {
    "p01": {"plan": "pro", "num": 30, "mixed": 30, "flag": True, "flagstr": True, "code": "abc",
            "email": "alice@acme.com", "signup": "2024-01-10T12:00:00Z", "version": "1.2.3",
            "obj": {"a": 1, "b": [1, 2]}, "$browser": "Chrome", "utm.source": "google"},
    "p02": {"plan": "Pro", "num": "5", "mixed": "5", "flag": False, "flagstr": "true", "code": "a_c",
            "email": "BOB@ACME.COM", "signup": "2024-01-10", "version": "1.2.10", "obj": {"a": 2},
            'quo"te': "yes"},
    "p03": {"plan": "enterprise", "num": 5, "mixed": "abc", "flag": True, "flagstr": False, "code": "a%c",
            "email": "carol@example.org", "signup": 1704888000, "version": "1.3.0", "obj": '{"a": 1}',
            "café": "oui"},
    "p04": {"plan": "", "num": -2.5, "mixed": "9", "flag": None, "flagstr": "false", "code": "axxc", "email": "",
            "signup": 1704888000000, "version": "2.0.0", "sp ace": "x"},
    "p05": {"plan": None, "num": None, "mixed": "10", "flagstr": "yes", "code": "ABC", "email": None,
            "signup": "10/01/2024", "version": "0.2.5"},
    "p06": {"mixed": "", "flagstr": "TRUE", "code": "ac", "email": "dave.acme@example.org",
            "signup": "2024/01/10", "version": "0.2.3"},
    "p07": {"plan": "pro plus", "num": "10", "mixed": 9, "signup": "Wed, 10 Jan 2024 12:00:00 +0100",
            "version": "0.0.3"},
    "p08": {"plan": "free", "num": 100, "mixed": "NaN", "signup": "not a date", "version": "0.0.4"},
    "p09": {"num": 0, "signup": None, "version": "1.2.3-beta.1"},
    "p10": {"num": 5.0, "signup": ""},
    "p11": {"signup": 1704888000.5, "version": None},
    "p12": {"signup": "2024-01-10T12:00:00.000001Z", "version": "10.0.0"},
    "p13": {},
    "p14": {"unrelated": "x"},
    "p15": {"nested": {"plan": "pro", "num": 5}},
}

CREATED_AT: dict[str, str] = {
    "p01": "2025-03-14T10:00:00", "p02": "2025-03-01T00:00:00", "p03": "2025-01-01T00:00:00",
    "p04": "2024-03-15T14:30:00", "p05": "2025-03-15T14:00:00", "p06": "2025-03-15T14:29:30",
    "p07": "2025-03-15T02:00:00", "p08": "2025-02-15T14:30:00", "p09": "2025-03-08T14:30:00",
    "p10": "2025-03-08T14:30:00.000001", "p11": "2024-06-01T00:00:00", "p12": "2020-01-01T00:00:00",
    "p13": "2020-01-01T00:00:00", "p14": "2020-01-01T00:00:00", "p15": "2020-01-01T00:00:00",
}

DISTINCT_IDS: dict[str, list[str]] = {
    "p01": ["d1", "alice-device"], "p02": ["d2"], "p03": ["D1"], "p04": [], "p05": ["d5a", "d5b", "d5c"],
    **{f"p{n:02d}": [f"u{n:02d}"] for n in range(6, 16)},
}

NOW = datetime(2025, 3, 15, 14, 30, tzinfo=UTC)  # every relative date below is resolved against this instant
ALL = frozenset(PROPERTIES)


def persons_frame(properties=PROPERTIES, created_at=CREATED_AT) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(properties),
            "created_at": [datetime.fromisoformat(created_at.get(pid, "2020-01-01T00:00:00")).replace(tzinfo=UTC)
                           for pid in properties],
            "properties": [json.dumps(props) for props in properties.values()],
        },
        schema={"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String},
    )


def distinct_ids_frame(distinct_ids=DISTINCT_IDS) -> pl.DataFrame:
    rows = [(did, pid) for pid, dids in distinct_ids.items() for did in dids]
    return pl.DataFrame(rows, schema={"distinct_id": pl.String, "person_id": pl.String}, orient="row")


PERSONS = persons_frame()
PERSON_DISTINCT_IDS = distinct_ids_frame()


def S(ids: str = "") -> frozenset[str]:
    return frozenset(f"p{n}" for n in ids.split())


def ALL_BUT(ids: str) -> frozenset[str]:
    return ALL - S(ids)


def P(key: str, operator: str | None = None, value=None, *, omit_value: bool = False, **extra) -> dict:
    """A person leaf. ``operator=None`` leaves the operator out (clarification 16)."""
    leaf = {"type": "person", "key": key, **extra}
    if operator is not None:
        leaf["operator"] = operator
    if not omit_value:
        leaf["value"] = value
    return leaf


def META(operator: str, value=None) -> dict:
    return {"type": "person_metadata", "key": "created_at", "operator": operator, "value": value}


def COHORT(cohort_id: int, negation: bool = False) -> dict:
    return {"type": "cohort", "key": "id", "value": cohort_id, "negation": negation}


def AND(*values) -> dict:
    return {"type": "AND", "values": list(values)}


def OR(*values) -> dict:
    return {"type": "OR", "values": list(values)}


def NOT(leaf: dict) -> dict:
    return {**leaf, "negation": True}


def run(cohorts: list[dict], persons=None, distinct_ids=None, **kwargs) -> pl.DataFrame:
    kwargs.setdefault("now", NOW)
    return evaluate_cohorts(cohorts, PERSONS if persons is None else persons,
                            PERSON_DISTINCT_IDS if distinct_ids is None else distinct_ids, **kwargs)


def members(node: dict, cohort_id: int = 1, **kwargs) -> frozenset[str]:
    """Members of a one-cohort call whose root is ``node`` (a leaf is wrapped in an AND group)."""
    root = node if node.get("type") in ("AND", "OR") and "values" in node else AND(node)
    frame = run([{"id": cohort_id, "filters": {"properties": root}}], **kwargs)
    return frozenset(frame.filter(pl.col("cohort_id") == cohort_id)["person_id"].to_list())


def case(leaf: dict, expected: frozenset[str], id: str, **kwargs):
    return pytest.param(leaf, expected, kwargs, id=id)


# `plan exact []` is always true (clarification 13): the positive sibling used to test negated leaves.
UNIVERSE = P("plan", "exact", [])

PLAN_SET = S("01 02 03 04 07 08")           # plan present (p04 holds "", a value)
NUM_SET = S("01 02 03 04 07 08 09 10")      # num present (p05 null, others missing)
CODE_SET = S("01 02 03 04 05 06")
SIGNUP_PARSEABLE = S("01 02 03 04 05 06 07 11 12")
NY = {"timezone": "America/New_York"}

# ---------------------------------------------------------------------------------------------------------------
# The operator table
# ---------------------------------------------------------------------------------------------------------------

CASES = [
    # ---- exact (case-sensitive; list = IN; one-item list = scalar; [] = always true) --------------------------
    case(P("plan", "exact", "pro"), S("01"), "exact-scalar-case-sensitive"),
    case(P("plan", "exact", "PRO"), S(), "exact-wrong-case-matches-nothing"),
    case(P("plan", "exact", ["pro"]), S("01"), "exact-one-item-list"),
    case(P("plan", "exact", ["pro", "free"]), S("01 08"), "exact-multi-item-list"),
    case(P("plan", "exact", []), ALL, "exact-empty-list-always-true"),
    case(P("plan", "exact", ""), S("04"), "exact-empty-string-is-a-value"),
    case(P("plan", "exact", ["", "free"]), S("04 08"), "exact-list-with-empty-string"),
    case(P("plan", "exact", None), ALL - PLAN_SET, "exact-null-is-isNull"),
    case(P("plan", "exact", True), S(), "exact-true-on-string-key-compares-text-true"),
    case(P("plan", None, "pro"), S("01"), "missing-operator-means-exact"),
    case(P("mixed", "exact", 30), S("01"), "exact-number-on-string-key-compares-its-text"),
    case(P("mixed", "exact", 9), S("04 07"), "exact-number-matches-json-number-and-string"),
    case(P("code", "exact", "a_c"), S("02"), "exact-has-no-wildcards"),
    case(P("obj", "exact", {"a": 1, "b": [1, 2]}), S("01"), "exact-json-object-as-minified-text"),
    case(P("obj", "exact", '{"a":1,"b":[1,2]}'), S("01"), "exact-string-of-minified-json"),
    case(P("obj", "exact", {"a": 1}), S(), "exact-object-needs-the-whole-object"),
    case(P("obj", "exact", '{"a": 1}'), S("03"), "exact-string-holding-json-text"),
    # ---- is_not (missing -> true; list = NOT IN) ---------------------------------------------------------------
    case(P("plan", "is_not", "pro"), ALL_BUT("01"), "is_not-scalar-missing-is-true"),
    case(P("plan", "is_not", ["pro"]), ALL_BUT("01"), "is_not-one-item-list"),
    case(P("plan", "is_not", ["pro", "free"]), ALL_BUT("01 08"), "is_not-multi-item-list"),
    case(P("plan", "is_not", []), ALL, "is_not-empty-list-always-true"),
    case(P("plan", "is_not", ""), ALL_BUT("04"), "is_not-empty-string"),
    case(P("plan", "is_not", "PRO"), ALL, "is_not-case-sensitive"),
    case(P("plan", "is_not", None), PLAN_SET, "is_not-null-is-isNotNull"),
    # ---- in / not_in (need a real list) ------------------------------------------------------------------------
    case(P("plan", "in", ["Pro"]), S("02"), "in-one-item-case-sensitive"),
    case(P("plan", "in", ["pro", "free"]), S("01 08"), "in-multi-item"),
    case(P("plan", "in", []), ALL, "in-empty-list-always-true"),
    case(P("plan", "not_in", ["pro", "free"]), ALL_BUT("01 08"), "not_in-missing-is-true"),
    case(P("plan", "not_in", ["pro"]), ALL_BUT("01"), "not_in-one-item"),
    case(P("plan", "not_in", []), ALL, "not_in-empty-list-always-true"),
    case(P("num", "in", [5, 100]), S("02 03 08 10"), "in-numeric-key"),
    case(P("num", "not_in", [5, 100]), ALL_BUT("02 03 08 10"), "not_in-numeric-key"),
    # ---- is_set / is_not_set (value ignored; "" is set, JSON null is not) --------------------------------------
    case(P("plan", "is_set", omit_value=True), PLAN_SET, "is_set-empty-string-is-set-null-is-not"),
    case(P("plan", "is_set", "whatever"), PLAN_SET, "is_set-value-ignored"),
    case(P("plan", "is_not_set", omit_value=True), ALL - PLAN_SET, "is_not_set"),
    case(P("num", "is_set", omit_value=True), NUM_SET, "is_set-numeric-key"),
    case(P("num", "is_not_set", None), ALL - NUM_SET, "is_not_set-numeric-key"),
    case(P("flagstr", "is_set", omit_value=True), S("01 02 03 04 05 06"), "is_set-string-key-any-text"),
    case(P("obj", "is_set", omit_value=True), S("01 02 03"), "is_set-object"),
    # ---- icontains / not_icontains (ILIKE '%c%': case-insensitive, % and _ are wildcards) ----------------------
    case(P("plan", "icontains", "PRO"), S("01 02 07"), "icontains-case-insensitive"),
    case(P("email", "icontains", "@ACME.com"), S("01 02"), "icontains-email"),
    # only % and _ are LIKE wildcards: a dot (or any regex metacharacter) is literal
    case(P("email", "icontains", "acme."), S("01 02"), "icontains-dot-is-literal"),
    case(P("code", "icontains", "a.c"), S(), "icontains-dot-is-not-a-wildcard"),
    case(P("code", "icontains", "AbC"), S("01 05"), "icontains-mixed-case"),
    # `_` is any single character: abc, a_c, a%c, ABC; not axxc (two chars), not ac (none)
    case(P("code", "icontains", "a_c"), S("01 02 03 05"), "icontains-underscore-is-wildcard"),
    case(P("code", "icontains", "a%c"), CODE_SET, "icontains-percent-is-wildcard"),
    case(P("code", "icontains", "%"), CODE_SET, "icontains-lone-percent-matches-any-value"),
    case(P("code", "icontains", ""), CODE_SET, "icontains-empty-string-matches-any-present-value"),
    case(P("plan", "icontains", ""), PLAN_SET, "icontains-empty-matches-empty-string-value"),
    case(P("code", "icontains", ["a_c"]), S("01 02 03 05"), "icontains-one-item-list-unwrapped-keeps-wildcards"),
    # a list of 2+ is multiSearchAnyCaseInsensitive: literal substrings, no wildcards
    case(P("code", "icontains", ["a_c", "zzz"]), S("02"), "icontains-list-literal-underscore"),
    case(P("code", "icontains", ["A%C", "xx"]), S("03 04"), "icontains-list-literal-percent-any-match"),
    case(P("code", "icontains", []), ALL, "icontains-empty-list-always-true"),
    case(P("mixed", "icontains", 1), S("05"), "icontains-number-filter-as-text"),
    case(P("num", "icontains", "5"), S("02 03 04 10"), "icontains-on-numeric-key-reads-text"),
    case(P("obj", "icontains", '"a":2'), S("02"), "icontains-inside-minified-object"),
    case(P("plan", "not_icontains", "pro"), ALL_BUT("01 02 07"), "not_icontains-missing-is-true"),
    case(P("code", "not_icontains", "a_c"), ALL_BUT("01 02 03 05"), "not_icontains-underscore-wildcard"),
    case(P("code", "not_icontains", ["a_c"]), ALL_BUT("01 02 03 05"), "not_icontains-one-item-list-unwrapped"),
    # spec 4.3 [inferred]: the multi-substring form yields false for a missing property
    case(P("code", "not_icontains", ["abc", "a_c"]), S("03 04 06"), "not_icontains-list-missing-is-false"),
    case(P("code", "not_icontains", []), ALL, "not_icontains-empty-list-always-true"),
    # ---- icontains_multi / not_icontains_multi (always literal multi-substring; missing false / false) ---------
    case(P("code", "icontains_multi", "a_c"), S("02"), "icontains_multi-scalar-literal"),
    case(P("code", "icontains_multi", ["a_c"]), S("02"), "icontains_multi-one-item"),
    case(P("code", "icontains_multi", ["a_c", "ABC"]), S("01 02 05"), "icontains_multi-any-case-insensitive"),
    case(P("code", "icontains_multi", []), ALL, "icontains_multi-empty-list-always-true"),
    case(P("code", "not_icontains_multi", "a_c"), S("01 03 04 05 06"), "not_icontains_multi-scalar-missing-false"),
    case(P("code", "not_icontains_multi", ["abc", "a_c"]), S("03 04 06"), "not_icontains_multi-none-of"),
    case(P("code", "not_icontains_multi", []), ALL, "not_icontains_multi-empty-list-always-true"),
    # ---- regex / not_regex (unanchored search, case-sensitive unless (?i); invalid -> nobody) ------------------
    case(P("email", "regex", r"@acme\.com$"), S("01"), "regex-case-sensitive"),
    case(P("email", "regex", r"(?i)@acme\.com$"), S("01 02"), "regex-inline-case-insensitive"),
    case(P("email", "regex", "acme"), S("01 06"), "regex-unanchored"),
    case(P("code", "regex", "a.c"), S("01 02 03"), "regex-dot"),
    case(P("email", "regex", ["^alice"]), S("01"), "regex-one-item-list"),
    case(P("email", "regex", ["^alice", "^carol"]), S("01 03"), "regex-list-is-OR"),
    case(P("email", "regex", ""), S("01 02 03 04 06"), "regex-empty-pattern-matches-present-values"),
    case(P("email", "regex", []), ALL, "regex-empty-list-always-true"),
    case(P("email", "regex", "["), S(), "regex-invalid-matches-nobody"),
    case(P("email", "regex", "(?=a)"), S(), "regex-lookahead-unsupported-matches-nobody"),
    # decision 8: an invalid pattern makes the *leaf* match nobody, even next to a valid one
    case(P("email", "regex", ["[", "^alice"]), S(), "regex-list-with-an-invalid-pattern-matches-nobody"),
    case(P("email", "not_regex", "acme"), ALL_BUT("01 06"), "not_regex-missing-is-true"),
    case(P("email", "not_regex", ["acme"]), ALL_BUT("01 06"), "not_regex-one-item-list"),
    case(P("email", "not_regex", ["acme", "example"]), ALL_BUT("01 03 06"), "not_regex-list-is-AND"),
    case(P("email", "not_regex", []), ALL, "not_regex-empty-list-always-true"),
    case(P("email", "not_regex", "["), S(), "not_regex-invalid-matches-nobody"),
    case(P("email", "not_regex", ["[", "zzz"]), S(), "not_regex-list-with-an-invalid-pattern-matches-nobody"),
    # ---- gt / gte / lt / lte / min / max on an inferred Numeric key --------------------------------------------
    case(P("num", "exact", 5), S("02 03 10"), "numeric-exact-matches-5-'5'-5.0"),
    case(P("num", "exact", "5"), S("02 03 10"), "numeric-exact-string-filter"),
    case(P("num", "exact", "5.0"), S("02 03 10"), "numeric-exact-5.0"),
    case(P("num", "exact", ["5", 100]), S("02 03 08 10"), "numeric-exact-list"),
    case(P("num", "is_not", 5), ALL_BUT("02 03 10"), "numeric-is_not"),
    case(P("num", "gt", 5), S("01 07 08"), "gt"),
    case(P("num", "gte", 5), S("01 02 03 07 08 10"), "gte"),
    case(P("num", "lt", 5), S("04 09"), "lt"),
    case(P("num", "lte", 5), S("02 03 04 09 10"), "lte"),
    case(P("num", "gt", "5"), S("01 07 08"), "gt-numeric-string-filter"),
    case(P("num", "gt", ["10"]), S("01 08"), "gt-one-item-list"),
    case(P("num", "gt", [50, 20]), S("01 08"), "gt-list-is-OR"),
    case(P("num", "lt", [0, -100]), S("04"), "lt-list-is-OR"),
    case(P("num", "gte", []), ALL, "gte-empty-list-always-true"),
    case(P("num", "min", 10), S("01 07 08"), "min-is-gte"),
    case(P("num", "max", 0), S("04 09"), "max-is-lte"),
    case(P("num", "min", [100, 30]), S("01 08"), "min-list"),
    case(P("num", "max", []), ALL, "max-empty-list-always-true"),
    # clar 11: a non-numeric filter value against a Numeric key: positive ops nothing, negative ops everything
    case(P("num", "exact", "abc"), S(), "numeric-key-non-numeric-filter-exact-nothing"),
    case(P("num", "gt", "abc"), S(), "numeric-key-non-numeric-filter-gt-nothing"),
    case(P("num", "lt", "abc"), S(), "numeric-key-non-numeric-filter-lt-nothing"),
    case(P("num", "in", ["abc"]), S(), "numeric-key-non-numeric-filter-in-nothing"),
    case(P("num", "is_not", "abc"), ALL, "numeric-key-non-numeric-filter-is_not-everything"),
    case(P("num", "not_in", ["abc"]), ALL, "numeric-key-non-numeric-filter-not_in-everything"),
    case(P("num", "exact", True), S(), "numeric-key-boolean-filter-nothing"),
    # "1_0" and "nan" are not numbers to a user (Python's float() would read them as 10 and NaN)
    case(P("num", "exact", "1_0"), S(), "numeric-key-underscore-filter-is-not-a-number"),
    case(P("num", "lt", "nan"), S(), "numeric-key-nan-filter-is-not-a-number"),
    case(P("num", "is_not", "nan"), ALL, "numeric-key-nan-filter-negative-everything"),
    case(P("num", "is_not", True), ALL, "numeric-key-boolean-filter-negative-everything"),
    # ---- String key: ordering compares strings (clar 11 / spec 4.3 "9" > "10") ---------------------------------
    # mixed texts: "30" "5" "abc" "9" "10" "" "9" "NaN"
    case(P("mixed", "gt", "5"), S("03 04 07 08"), "string-key-gt-lexicographic"),
    case(P("mixed", "gt", 5), S("03 04 07 08"), "string-key-gt-number-filter-compared-as-text"),
    case(P("mixed", "gt", "10"), S("01 02 03 04 07 08"), "string-key-9-greater-than-10"),
    case(P("mixed", "lt", "10"), S("06"), "string-key-lt-empty-string-is-smallest"),
    case(P("plan", "gt", "p"), S("01 07"), "string-key-gt-case-sensitive-bytes"),
    case(P("plan", "lt", "f"), S("02 03 04"), "string-key-lt"),
    case(P("plan", "gte", "pro"), S("01 07"), "string-key-gte"),
    case(P("plan", "lte", "free"), S("02 03 04 08"), "string-key-lte"),
    # ---- declared types override inferred ones -----------------------------------------------------------------
    # mixed declared Numeric: "abc", "" and "NaN" are unparseable -> missing
    case(P("mixed", "gt", 5), S("01 04 05 07"), "declared-numeric-gt",
         property_definitions={"mixed": "Numeric"}),
    case(P("mixed", "lt", 10), S("02 04 07"), "declared-numeric-lt",
         property_definitions={"mixed": "Numeric"}),
    # Ambiguity: is the string "NaN" a number? We treat it as unparseable (a user would not expect "NaN" > 5).
    case(P("mixed", "is_set", omit_value=True), S("01 02 04 05 07"), "declared-numeric-unparseable-is-not-set",
         property_definitions={"mixed": "Numeric"}),
    case(P("mixed", "exact", "abc"), S(), "declared-numeric-non-numeric-filter-nothing-even-literal-match",
         property_definitions={"mixed": "Numeric"}),
    case(P("mixed", "is_not", "abc"), ALL, "declared-numeric-non-numeric-filter-negative-everything",
         property_definitions={"mixed": "Numeric"}),
    case(P("mixed", "exact", "9.0"), S("04 07"), "declared-numeric-exact-9.0",
         property_definitions={"mixed": "numeric"}),
    # num declared String: texts "30" "5" "5" "-2.5" "10" "100" "0" "5.0" -> only "5.0" > "5"
    case(P("num", "gt", "5"), S("10"), "declared-string-on-numeric-data-compares-text",
         property_definitions={"num": "String"}),
    case(P("num", "exact", 5), S("02 03"), "declared-string-exact-5-is-text-5",
         property_definitions={"num": "String"}),
    # ---- Boolean typing (spec 4.1 step 4) ----------------------------------------------------------------------
    case(P("flag", "exact", True), S("01 03"), "boolean-key-exact-true"),
    case(P("flag", "exact", "true"), S("01 03"), "boolean-key-exact-string-true"),
    case(P("flag", "exact", False), S("02"), "boolean-key-exact-false"),
    case(P("flag", "exact", [True, False]), S("01 02 03"), "boolean-key-list"),
    case(P("flag", "is_not", True), ALL_BUT("01 03"), "boolean-key-is_not-true"),
    case(P("flag", "exact", "yes"), S(), "boolean-key-non-boolean-filter-nothing"),
    case(P("flag", "is_not", "yes"), ALL, "boolean-key-non-boolean-filter-negative-everything"),
    case(P("flag", "is_set", omit_value=True), S("01 02 03"), "boolean-key-is_set"),
    case(P("flagstr", "exact", True), S("01 02"), "string-key-filter-true-is-text-true"),
    case(P("flagstr", "exact", "true"), S("01 02"), "string-key-filter-string-true"),
    case(P("flagstr", "exact", "TRUE"), S("06"), "string-key-TRUE-case-sensitive"),
    case(P("flagstr", "exact", False), S("03 04"), "string-key-filter-false"),
    case(P("flagstr", "exact", True), S("01 02"), "declared-boolean-exact-true",
         property_definitions={"flagstr": "Boolean"}),
    case(P("flagstr", "exact", "false"), S("03 04"), "declared-boolean-exact-string-false",
         property_definitions={"flagstr": "Boolean"}),
    # spec 4.1 step 3: a Boolean-typed value other than 'true'/'false' ("yes", "TRUE") is NULL
    case(P("flagstr", "is_set", omit_value=True), S("01 02 03 04"), "declared-boolean-other-values-not-set",
         property_definitions={"flagstr": "Boolean"}),
    case(P("flagstr", "is_not", True), ALL_BUT("01 02"), "declared-boolean-is_not-true",
         property_definitions={"flagstr": "Boolean"}),
    case(P("flag", "exact", True), S("01 03"), "declared-string-boolean-data-true-text",
         property_definitions={"flag": "String"}),
    # ---- between / not_between (inclusive, numeric, 2-element list) --------------------------------------------
    case(P("num", "between", [5, 30]), S("01 02 03 07 10"), "between-inclusive"),
    case(P("num", "between", ["0", "5"]), S("02 03 09 10"), "between-string-bounds"),
    case(P("num", "between", [5, 5]), S("02 03 10"), "between-equal-bounds"),
    case(P("num", "not_between", [5, 30]), S("04 08 09"), "not_between-missing-is-false"),
    # Ambiguity: between on a String-typed key. Its bounds must be numbers (spec 4.3), so we compare the
    # property numerically (non-numeric text is missing) rather than as text, which is what a user means by
    # "between 5 and 30". mixed: 30, "5", "9", "10", 9 are inside; "abc", "", "NaN" are not numbers.
    case(P("mixed", "between", [5, 30]), S("01 02 04 05 07"), "between-string-key-compares-numbers"),
    case(P("mixed", "between", [5, 30]), S("01 02 04 05 07"), "between-declared-numeric",
         property_definitions={"mixed": "Numeric"}),
    case(P("mixed", "not_between", [5, 30]), S(), "not_between-unparseable-is-missing",
         property_definitions={"mixed": "Numeric"}),
    # ---- semver (pre-release stripped; numeric parts: 1.2.10 > 1.2.3) ------------------------------------------
    case(P("version", "semver_eq", "1.2.3"), S("01 09"), "semver_eq-prerelease-stripped"),
    case(P("version", "semver_eq", ["1.3.0"]), S("03"), "semver_eq-one-item-list"),
    case(P("version", "semver_eq", ["1.3.0", "2.0.0"]), S("03 04"), "semver_eq-list-is-OR"),
    case(P("version", "semver_eq", []), ALL, "semver_eq-empty-list-always-true"),
    case(P("version", "semver_neq", "1.2.3"), ALL_BUT("01 09"), "semver_neq-missing-is-true"),
    case(P("version", "semver_gt", "1.2.3"), S("02 03 04 12"), "semver_gt-numeric-not-lexicographic"),
    case(P("version", "semver_gt", "1.2"), S("01 02 03 04 09 12"), "semver_gt-filter-padded"),
    case(P("version", "semver_gt", "1.2.3-rc.1"), S("02 03 04 12"), "semver_gt-filter-prerelease-stripped"),
    case(P("version", "semver_gte", "1.2.3"), S("01 02 03 04 09 12"), "semver_gte"),
    case(P("version", "semver_lt", "1.2.3"), S("05 06 07 08"), "semver_lt"),
    case(P("version", "semver_lte", "1.2.3"), S("01 05 06 07 08 09"), "semver_lte"),
    case(P("version", "semver_tilde", "1.2.3"), S("01 02 09"), "semver_tilde-patch-range"),
    case(P("version", "semver_tilde", "1"), S("01 02 03 09"), "semver_tilde-bare-major"),
    case(P("version", "semver_caret", "1.2.3"), S("01 02 03 09"), "semver_caret-major"),
    case(P("version", "semver_caret", "0.2.3"), S("05 06"), "semver_caret-zero-major"),
    case(P("version", "semver_caret", "0.0.3"), S("07"), "semver_caret-zero-minor"),
    case(P("version", "semver_wildcard", "1.*"), S("01 02 03 09"), "semver_wildcard-major"),
    case(P("version", "semver_wildcard", "1.2.*"), S("01 02 09"), "semver_wildcard-minor"),
    case(P("version", "semver_wildcard", "0.*"), S("05 06 07 08"), "semver_wildcard-zero"),
    # ---- dates on a property (clar 12: lenient parsing, instants at microsecond precision) ----------------------
    # signup instants (UTC): 12:00 = p01 p03 p04; 00:00 = p02 p05 p06; 11:00 = p07; 12:00:00.5 = p11;
    # 12:00:00.000001 = p12; unparseable/null/""/missing = p08 p09 p10 p13 p14 p15
    case(P("signup", "is_date_exact", "2024-01-10T12:00:00Z"), S("01 03 04"), "is_date_exact-iso-unix-s-unix-ms"),
    case(P("signup", "is_date_exact", "2024-01-10"), S("02 05 06"), "is_date_exact-date-only-is-midnight"),
    case(P("signup", "is_date_exact", ["2024-01-10T11:00:00Z", "2024-01-10T12:00:00.000001Z"]), S("07 12"),
         "is_date_exact-list-rfc822-offset-and-microseconds"),
    case(P("signup", "is_date_exact", ["2024-01-10T11:00:00Z"]), S("07"), "is_date_exact-one-item-list"),
    case(P("signup", "is_date_before", "2024-01-10T12:00:00Z"), S("02 05 06 07"), "is_date_before-strict"),
    case(P("signup", "is_date_after", "2024-01-10T12:00:00Z"), S("11 12"), "is_date_after-strict-fraction-micro"),
    case(P("signup", "is_date_after", "2024-01-10"), S("01 03 04 07 11 12"), "is_date_after-date-only-midnight"),
    case(P("signup", "is_date_after", "1704888000"), S("11 12"), "is_date_after-unix-seconds-filter"),
    case(P("signup", "is_date_before", "2024-01-10T12:00:00+01:00"), S("02 05 06"), "is_date_before-offset-filter"),
    case(P("signup", "is_date_after", ["2030-01-01", "2024-01-10T12:00:00.25Z"]), S("11"), "is_date_after-list-OR"),
    case(P("signup", "is_date_after", []), ALL, "is_date_after-empty-list-always-true"),
    case(P("signup", "is_date_before", "not a date"), S(), "is_date_before-unparseable-filter-nothing"),
    case(P("signup", "is_date_before", "-7d"), SIGNUP_PARSEABLE, "is_date_before-relative-on-property"),
    case(P("signup", "is_date_after", "-7d"), S(), "is_date_after-relative-on-property"),
    # declared DateTime: the ordinary operators compare instants
    case(P("signup", "gt", "2024-01-10T12:00:00Z"), S("11 12"), "declared-datetime-gt",
         property_definitions={"signup": "DateTime"}),
    case(P("signup", "exact", "2024-01-10T12:00:00Z"), S("01 03 04"), "declared-datetime-exact",
         property_definitions={"signup": "DateTime"}),
    case(P("signup", "is_set", omit_value=True), SIGNUP_PARSEABLE, "declared-datetime-unparseable-not-set",
         property_definitions={"signup": "DateTime"}),
    # ---- person_metadata created_at, relative dates against NOW = 2025-03-15T14:30Z ---------------------------
    case(META("is_date_after", "-7d"), S("01 05 06 07 10"), "created_at-after-7d-strict"),
    case(META("is_date_before", "-7d"), S("02 03 04 08 11 12 13 14 15"), "created_at-before-7d-strict"),
    case(META("is_date_after", "-1w"), S("01 05 06 07 10"), "created_at-after-1w"),
    case(META("is_date_after", "-1m"), S("01 02 05 06 07 09 10"), "created_at-1m-is-a-month"),
    case(META("is_date_after", "1m"), S("01 02 05 06 07 09 10"), "created_at-unsigned-relative-is-past"),
    case(META("is_date_after", "-1M"), S("06"), "created_at-1M-is-a-minute"),
    case(META("is_date_after", "-1h"), S("05 06"), "created_at-1h"),
    case(META("is_date_after", "-1q"), S("01 02 03 05 06 07 08 09 10"), "created_at-1q-is-13-weeks"),
    case(META("is_date_after", "-1y"), S("01 02 03 05 06 07 08 09 10 11"), "created_at-1y"),
    case(META("is_date_exact", "2025-03-01T00:00:00Z"), S("02"), "created_at-exact-instant"),
    case(META("is_date_exact", "2025-03-01"), S("02"), "created_at-exact-date-only-midnight"),
    case(META("is_date_before", "2025-03-01T01:00:00+01:00"), S("03 04 08 11 12 13 14 15"), "created_at-offset"),
    case(META("is_date_after", "2025-03-15"), S("05 06 07"), "created_at-date-only-utc-midnight"),
    case(META("is_date_after", []), ALL, "created_at-empty-list-always-true"),
    case(META("gt", "2025-03-15T14:00:00Z"), S("06"), "created_at-gt-compares-instants"),
    case(META("exact", "2025-03-01T00:00:00Z"), S("02"), "created_at-exact"),
    case(META("is_set"), ALL, "created_at-is_set"),
    # project timezone America/New_York (EDT, UTC-4 on 2025-03-15): a date-only value is midnight there
    case(META("is_date_after", "2025-03-15"), S("05 06"), "created_at-date-only-midnight-in-project-tz", **NY),
    # clar 18: 7 days back is wall-clock arithmetic; it crosses the 2025-03-09 DST change, so the bound is
    # 2025-03-08 10:30 EST = 15:30Z (not 14:30Z): p10 (14:30:00.000001Z) drops out
    case(META("is_date_after", "-7d"), S("01 05 06 07"), "created_at-relative-across-dst-in-project-tz", **NY),
    case(META("is_date_before", "-7d"), S("02 03 04 08 09 10 11 12 13 14 15"),
         "created_at-relative-before-across-dst", **NY),
    # ---- distinct_id: filters the person's distinct ids; a person matches if ANY of its ids does -------------
    case(P("distinct_id", "exact", "d1"), S("01"), "distinct_id-exact"),
    case(P("distinct_id", "exact", "alice-device"), S("01"), "distinct_id-second-id-of-a-person"),
    case(P("distinct_id", "exact", ["d2", "d5c"]), S("02 05"), "distinct_id-list"),
    case(P("distinct_id", "exact", ["d5b"]), S("05"), "distinct_id-one-item-list"),
    case(P("distinct_id", "in", ["d2"]), S("02"), "distinct_id-in"),
    case(P("distinct_id", "icontains", "d1"), S("01 03"), "distinct_id-icontains"),
    case(P("distinct_id", "regex", "^d5"), S("05"), "distinct_id-regex"),
    # Ambiguity: a negative operator on distinct ids. Leaves are sets of persons (spec 6.2), so is_not "d1" is
    # "has an id other than d1": p01 qualifies through alice-device; p04 has no ids at all, so no id satisfies
    # anything. (Use `negation: true` on exact "d1" for "has no id d1", see the negated table.)
    case(P("distinct_id", "is_not", "d1"), ALL_BUT("04"), "distinct_id-is_not-any-id-other"),
    case(P("distinct_id", "exact", []), ALL, "distinct_id-empty-list-always-true"),
    # ---- special key names -------------------------------------------------------------------------------------
    case(P("$browser", "exact", "Chrome"), S("01"), "key-with-dollar"),
    case(P("$browser", "is_not_set", omit_value=True), ALL_BUT("01"), "key-with-dollar-is_not_set"),
    case(P("utm.source", "exact", "google"), S("01"), "key-with-dot"),
    case(P('quo"te', "exact", "yes"), S("02"), "key-with-quote"),
    case(P("café", "exact", "oui"), S("03"), "key-non-ascii"),
    case(P("sp ace", "exact", "x"), S("04"), "key-with-space"),
    # ---- misc ---------------------------------------------------------------------------------------------------
    case(P("plan", "is_cleaned_path_exact", "pro"), S("01"), "is_cleaned_path_exact-without-cleaning-rules"),
]


@pytest.mark.parametrize(("leaf", "expected", "kwargs"), CASES)
def test_operator(leaf, expected, kwargs):
    assert members(leaf, **kwargs) == expected


@pytest.mark.parametrize(("leaf", "expected", "kwargs"), CASES)
def test_operator_negated_next_to_a_positive(leaf, expected, kwargs):
    """Spec 6.2: a negated leaf inside an AND with a positive leaf is subtracted from it. With the always-true
    positive sibling `plan exact []`, the result is exactly the complement of the leaf's set."""
    assert members(AND(UNIVERSE, NOT(leaf)), **kwargs) == ALL - expected


# clarification 13: a one-item list behaves as its scalar for every operator except between/not_between (which
# need two items) and in/not_in (which need a list); icontains/not_icontains unwrap one item themselves, to the
# same effect. Derived from every scalar row of the table above.
_NO_ONE_ITEM_RULE = ("between", "not_between", "in", "not_in", "is_set", "is_not_set")
ONE_ITEM_CASES = [
    pytest.param({**param.values[0], "value": [param.values[0]["value"]]}, *param.values[1:], id=param.id)
    for param in CASES
    if "value" in param.values[0] and param.values[0]["value"] is not None
    and not isinstance(param.values[0]["value"], list) and param.values[0].get("operator") not in _NO_ONE_ITEM_RULE
]


@pytest.mark.parametrize(("leaf", "expected", "kwargs"), ONE_ITEM_CASES)
def test_one_item_list_is_the_scalar(leaf, expected, kwargs):
    assert members(leaf, **kwargs) == expected


EVERY_OPERATOR = ["exact", "is_not", "icontains", "not_icontains", "icontains_multi", "not_icontains_multi",
                  "regex", "not_regex", "gt", "gte", "lt", "lte", "min", "max", "in", "not_in", "is_date_before",
                  "is_date_after", "is_date_exact", "is_cleaned_path_exact", "semver_eq", "semver_neq", "semver_gt",
                  "semver_gte", "semver_lt", "semver_lte", "semver_tilde", "semver_caret", "semver_wildcard"]


@pytest.mark.parametrize("operator", EVERY_OPERATOR)
@pytest.mark.parametrize("key", ["plan", "version", "no_such_key"])
def test_empty_list_is_always_true_for_every_operator(operator, key):
    assert members(P(key, operator, [])) == ALL


# spec 4.3 "missing property" column: the answer for a JSON null (p05's plan) and an absent key (p13 has no
# properties), with a filter value valid for the operator
MISSING_ANSWERS = [
    ("exact", "x", False), ("is_not", "x", True), ("icontains", "x", False), ("not_icontains", "x", True),
    ("icontains_multi", "x", False), ("not_icontains_multi", "x", False),
    ("icontains_multi", ["x", "y"], False), ("not_icontains_multi", ["x", "y"], False),
    ("not_icontains", ["x", "y"], False),  # [inferred] in the spec
    ("regex", "x", False), ("not_regex", "x", True), ("regex", ["x", "y"], False), ("not_regex", ["x", "y"], True),
    ("gt", "a", False), ("gte", "a", False), ("lt", "z", False), ("lte", "z", False), ("min", "a", False),
    ("max", "z", False), ("between", [0, 100], False), ("not_between", [0, 100], False),
    ("is_set", None, False), ("is_not_set", None, True), ("in", ["x"], False), ("not_in", ["x"], True),
    ("in", ["x", "y"], False), ("not_in", ["x", "y"], True), ("exact", ["x", "y"], False), ("is_not", ["x", "y"], True),
    ("is_date_before", "2100-01-01", False), ("is_date_after", "1970-01-02", False),
    ("is_date_exact", "2024-01-10", False), ("is_cleaned_path_exact", "x", False),
    ("semver_eq", "1.0.0", False), ("semver_neq", "1.0.0", True), ("semver_gt", "0.0.1", False),
    ("semver_gte", "0.0.0", False), ("semver_lt", "99.0.0", False), ("semver_lte", "99.0.0", False),
    ("semver_tilde", "1.0.0", False), ("semver_caret", "1.0.0", False), ("semver_wildcard", "1.*", False),
]


@pytest.mark.parametrize(("operator", "value", "answer"), MISSING_ANSWERS,
                         ids=[f"{op}-{'list' if isinstance(v, list) else 'scalar'}" for op, v, _ in MISSING_ANSWERS])
@pytest.mark.parametrize("declared", [None, "String", "Numeric", "Boolean", "DateTime"])
def test_missing_and_null_property_answer(operator, value, answer, declared):
    definitions = {"plan": declared} if declared else None
    got = members(P("plan", operator, value), property_definitions=definitions) & S("05 13")
    assert got == (S("05 13") if answer else S())


def test_naive_property_dates_are_wall_clock_in_the_project_timezone():
    # PostHog parses DateTime properties with the team timezone, so a date-only property is local midnight, and a
    # date-only filter value too (clar 12): in Europe/Paris both are 2024-01-09T23:00Z and still equal.
    paris = {"timezone": "Europe/Paris"}
    assert members(P("signup", "is_date_exact", "2024-01-10"), **paris) == S("02 05 06")
    assert members(P("signup", "is_date_before", "2024-01-10T00:00:00Z"), **paris) == S("02 05 06")
    assert members(P("signup", "is_date_before", "2024-01-10T00:00:00Z")) == S()
    # values with an offset or unix timestamps are instants whatever the timezone
    assert members(P("signup", "is_date_exact", "2024-01-10T12:00:00Z"), **paris) == S("01 03 04")


def test_universe_leaf_is_everyone():
    assert members(UNIVERSE) == ALL


def test_negated_invalid_regex_subtracts_nobody():
    # decision 8: the invalid leaf's set is empty, so "AND NOT <invalid>" leaves the positive sibling unchanged
    assert members(AND(P("plan", "is_set"), NOT(P("email", "regex", "[")))) == PLAN_SET


# ---------------------------------------------------------------------------------------------------------------
# Values the engine must refuse (a stored definition that PostHog's query would fail on)
# ---------------------------------------------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(P("plan", "in", "pro"), id="in-needs-a-list"),
    pytest.param(P("plan", "not_in", "pro"), id="not_in-needs-a-list"),
    pytest.param(P("num", "between", [5]), id="between-one-item"),
    pytest.param(P("num", "between", [30, 5]), id="between-descending"),
    pytest.param(P("num", "between", "5"), id="between-scalar"),
    pytest.param(P("num", "between", []), id="between-empty-list"),
    pytest.param(P("num", "between", [1, 2, 3]), id="between-three-items"),
    pytest.param(P("num", "not_between", ["a", "b"]), id="not_between-non-numeric"),
    pytest.param(P("version", "semver_eq", "abc"), id="semver-invalid-filter-value"),
    pytest.param(P("plan", "no_such_operator", "x"), id="unknown-operator"),
]


@pytest.mark.parametrize("leaf", ERROR_CASES)
def test_invalid_values_fail_the_calculation(leaf):
    with pytest.raises(CalculationError):
        members(leaf)


# ---------------------------------------------------------------------------------------------------------------
# Semver against property values that are not plain x.y.z (separate table, so the main one stays unambiguous)
# ---------------------------------------------------------------------------------------------------------------

def test_semver_property_side_parsing():
    # Ambiguity: spec 4.3 only describes parsing the *filter* value. We parse the property the same way (strip
    # the pre-release, pad minor/patch with 0) and treat an unparseable property like a missing one, which is
    # what a user expects ("garbage" is not < 1.0.0).
    props = {"a": {"v": "1.2"}, "b": {"v": "garbage"}, "c": {"v": "2"}, "d": {"v": "1.2.0-alpha"}, "e": {}}
    persons = persons_frame(props, {})
    dids = distinct_ids_frame({pid: [pid] for pid in props})

    def semver_members(operator, value):
        frame = evaluate_cohorts([{"id": 1, "filters": {"properties": AND(P("v", operator, value))}}], persons,
                                 dids, now=NOW)
        return set(frame["person_id"].to_list())

    assert semver_members("semver_eq", "1.2.0") == {"a", "d"}
    assert semver_members("semver_eq", "2.0.0") == {"c"}
    assert semver_members("semver_lt", "1.0.0") == set()
    assert semver_members("semver_gte", "0.0.0") == {"a", "c", "d"}
    assert semver_members("semver_neq", "1.2.0") == {"b", "c", "e"}


# ---------------------------------------------------------------------------------------------------------------
# Negation algebra through the engine (spec 6.2, clarification 17)
# ---------------------------------------------------------------------------------------------------------------

PRO = P("plan", "exact", "pro")          # {p01}
FLAG_TRUE = P("flag", "exact", True)     # {p01, p03}
NUM_IS_SET = P("num", "is_set")          # NUM_SET


@pytest.mark.parametrize("root", [
    AND(NOT(PRO)),
    OR(NOT(PRO)),
    AND(NOT(PRO), NOT(FLAG_TRUE)),
    OR(NOT(PRO), NOT(FLAG_TRUE)),
    OR(PRO, NOT(FLAG_TRUE)),
    OR(AND(NOT(PRO), NOT(FLAG_TRUE)), NUM_IS_SET),
    AND(AND(NOT(PRO))),
], ids=["negated-leaf", "negated-leaf-in-OR", "all-negated-AND", "all-negated-OR", "mixed-OR",
        "negated-AND-mixed-into-OR", "nested-negated"])
def test_negated_root_fails(root):
    with pytest.raises(CalculationError) as error:
        members(root)
    assert "Top level condition cannot be negated" in str(error.value)


@pytest.mark.parametrize(("root", "expected"), [
    # numset ∩ (pro ∪ ¬flag): flag true = {p01, p03}, so the OR excludes only p03
    (AND(NUM_IS_SET, OR(PRO, NOT(FLAG_TRUE))), NUM_SET - S("03")),
    # numset ∩ ¬pro ∩ ¬flag
    (AND(NUM_IS_SET, AND(NOT(PRO), NOT(FLAG_TRUE))), NUM_SET - S("01 03")),
    # numset ∩ (¬pro ∪ ¬flag) = numset minus (pro ∩ flag) = minus p01
    (AND(NUM_IS_SET, OR(NOT(PRO), NOT(FLAG_TRUE))), NUM_SET - S("01")),
    # (numset − pro) ∪ flag
    (OR(AND(NUM_IS_SET, NOT(PRO)), FLAG_TRUE), (NUM_SET - S("01")) | S("01 03")),
    # a negated leaf first in the AND is still subtracted from the positive one
    (AND(NOT(PRO), NUM_IS_SET), NUM_SET - S("01")),
    # negated person_metadata leaf: created in the last 7 days removed from num set
    (AND(NUM_IS_SET, NOT(META("is_date_after", "-7d"))), NUM_SET - S("01 05 06 07 10")),
    # negated distinct_id leaf: "has no distinct id d1"
    (AND(NUM_IS_SET, NOT(P("distinct_id", "exact", "d1"))), NUM_SET - S("01")),
], ids=["mixed-OR-under-AND", "all-negated-AND-under-AND", "all-negated-OR-under-AND", "AND-with-negation-in-OR",
        "negated-first", "negated-person-metadata", "negated-distinct-id"])
def test_negation_algebra_consequences(root, expected):
    assert members(root) == expected


# ---------------------------------------------------------------------------------------------------------------
# Cohort references (decision 5, clarification 17, spec 6.1)
# ---------------------------------------------------------------------------------------------------------------

def _cohort(cohort_id: int, root: dict, **extra) -> dict:
    return {"id": cohort_id, "filters": {"properties": root}, **extra}


def _by_cohort(frame: pl.DataFrame) -> dict[int, frozenset[str]]:
    return {cid: frozenset(frame.filter(pl.col("cohort_id") == cid)["person_id"].to_list())
            for cid in frame["cohort_id"].unique().to_list()}


def test_reference_to_a_cohort_of_the_same_call_in_any_order():
    frame = run([
        _cohort(2, AND(NUM_IS_SET, COHORT(1, negation=True))),  # listed before its dependency
        _cohort(3, AND(COHORT(1))),
        _cohort(1, AND(PRO)),
    ])
    result = _by_cohort(frame)
    assert result.get(1) == S("01")
    assert result.get(2) == NUM_SET - S("01")
    assert result.get(3) == S("01")


def test_reference_to_a_static_cohort():
    static = {50: ["p03", "p09", "ghost-not-a-person"]}
    assert members(AND(COHORT(50)), static_memberships=static) == S("03 09")
    assert members(AND(NUM_IS_SET, COHORT(50, negation=True)), static_memberships=static) == NUM_SET - S("03 09")


def test_reference_to_a_static_cohort_given_as_a_frame():
    static = pl.DataFrame({"cohort_id": [50, 50, 51], "person_id": ["p03", "p09", "p01"]},
                          schema={"cohort_id": pl.Int64, "person_id": pl.String})
    assert members(AND(COHORT(50)), static_memberships=static) == S("03 09")


def test_reference_to_a_published_cohort_not_computed_in_this_call():
    assert members(OR(COHORT(60), PRO), published_memberships={60: ["p05"]}) == S("01 05")


def test_unknown_cohort_matches_nobody_and_so_does_its_negation():
    assert members(AND(COHORT(999))) == S()
    assert members(AND(NUM_IS_SET, COHORT(999, negation=True))) == S()
    # the negation is dropped, so a lone "not in a missing cohort" is not a negated root: nobody, no error
    assert members(AND(COHORT(999, negation=True))) == S()
    assert members(OR(PRO, COHORT(999))) == S("01")
    assert members(OR(PRO, COHORT(999, negation=True))) == S("01")


def test_negated_reference_alone_is_a_negated_root():
    with pytest.raises(CalculationError):
        run([_cohort(1, AND(PRO)), _cohort(2, AND(COHORT(1, negation=True)))])


# ---------------------------------------------------------------------------------------------------------------
# filterTestAccounts (decision 6)
# ---------------------------------------------------------------------------------------------------------------

TEST_ACCOUNT_FILTERS = [{"type": "person", "key": "email", "operator": "not_icontains", "value": "acme"}]


@pytest.mark.parametrize(("flag", "filters", "expected"), [
    # plan set ∩ email not containing "acme" (case-insensitive; a missing email satisfies not_icontains)
    (True, TEST_ACCOUNT_FILTERS, S("03 04 07 08")),
    (False, TEST_ACCOUNT_FILTERS, PLAN_SET),
    (None, TEST_ACCOUNT_FILTERS, PLAN_SET),
    (True, [], PLAN_SET),
])
def test_filter_test_accounts(flag, filters, expected):
    cohort_filters = {"properties": AND(P("plan", "is_set"))}
    if flag is not None:
        cohort_filters["filterTestAccounts"] = flag
    frame = run([{"id": 1, "filters": cohort_filters}], test_account_filters=filters)
    assert frozenset(frame["person_id"].to_list()) == expected


def test_filter_test_accounts_with_several_filters_all_apply():
    filters = TEST_ACCOUNT_FILTERS + [{"type": "person", "key": "plan", "operator": "is_not", "value": "free"}]
    frame = run([{"id": 1, "filters": {"filterTestAccounts": True, "properties": AND(P("plan", "is_set"))}}],
                test_account_filters=filters)
    assert frozenset(frame["person_id"].to_list()) == S("03 04 07")


# ---------------------------------------------------------------------------------------------------------------
# Table sanity: the hand-written expectations must describe this table (guards typos in the fixture itself)
# ---------------------------------------------------------------------------------------------------------------

def test_fixture_shape():
    assert len(ALL) == 15
    assert set(DISTINCT_IDS) == ALL and set(CREATED_AT) == ALL
    assert PERSONS.height == 15 and PERSON_DISTINCT_IDS.height == 2 + 1 + 1 + 3 + 10


# ---- raw witnesses: the JSON of a row that cannot change a comparison's answer is never parsed -------------------

WITNESS_DOCUMENTS = [
    '{"u": "https://x.io/Pricing"}', '{"u": "https://x.io/\\/pricing"}', '{"u": "/PRI\\u0043ING"}',
    '{"u": {"path": "/pricing", "n": 1.50}}', '{"u": ["a", "/docs"]}', '{"u": "caf\u00e9/pricing"}',
    '{"u": "\u212aey"}', '{"u": "key"}', '{"u": 100}', '{"u": 1e2}', '{"u": true}', '{"u": null}', '{}',
    '{"u": "Chrome"}', '{"u": "\\u0043hrome"}', '{"u": "chrome"}', '{"u": {"pricing": 1}}', '{"x": "/pricing"}',
    '{"u": "pro", "u": "x"}', '{"u": ""}', 'not json', '{"u": "/\u017fettings"}', '{"u": "/ſettings"}',
]


@pytest.mark.parametrize(("operator", "value"), [
    ("icontains", "/pricing"), ("icontains", "/PRICING"), ("not_icontains", "/pricing"), ("icontains", "key"),
    ("icontains", ["/docs", "pricing"]), ("icontains", "rue"), ("icontains", "pro"), ("exact", "Chrome"),
    ("is_not", "Chrome"), ("in", ["chrome", "Chrome"]), ("not_in", ["Chrome"]), ("icontains", "/settings"),
])
def test_a_document_without_a_witness_answers_as_a_missing_property(operator, value):
    """Soundness of the shortcut: wherever the comparison's answer differs from a missing property's, the raw
    document holds a witness or a backslash."""
    from cohort_pipeline.engine.operators import EvaluationContext, PropertyOperand, compile_operator, raw_witnesses
    from cohort_pipeline.engine.property_types import PropertyType, property_text

    patterns = raw_witnesses(operator, value, PropertyType.STRING)
    assert patterns is not None
    frame = pl.DataFrame({"doc": WITNESS_DOCUMENTS})
    ctx = EvaluationContext(now=datetime(2026, 1, 1, tzinfo=UTC))
    answer = compile_operator(operator, value, PropertyOperand(text=property_text(pl.col("doc"), "u")), ctx)
    missing = compile_operator(operator, value, PropertyOperand(text=pl.lit(None, pl.String)), ctx)
    witnessed = patterns.search(pl.col("doc"))
    checked = frame.select(differs=answer != missing, witnessed=witnessed)
    assert checked.filter(pl.col("differs") & ~pl.col("witnessed")).height == 0
    assert checked["witnessed"].sum() < len(WITNESS_DOCUMENTS)  # the shortcut does skip some documents


@pytest.mark.parametrize(("operator", "value"), [
    ("icontains", "100"), ("icontains", "1.5"), ("icontains", "a b"), ("icontains", 'a"b'), ("icontains", "a%b"),
    ("icontains", "a_b"), ("icontains", "p:1"), ("icontains", "caf\u00e9"), ("icontains", ""),
    ("not_icontains", ["/docs", "x"]), ("icontains", 5), ("exact", "5"), ("exact", "true"), ("regex", "x"),
    ("icontains", ["ok", "1"]),
])
def test_no_witness_where_the_document_may_spell_the_value_otherwise(operator, value):
    """Numbers are respelled (1e2 reads 100.0), objects lose their whitespace and punctuation, wildcards match
    anything, a list under not_icontains answers differently for a missing property: no shortcut."""
    from cohort_pipeline.engine.operators import raw_witnesses
    from cohort_pipeline.engine.property_types import PropertyType

    assert raw_witnesses(operator, value, PropertyType.STRING) is None


def test_nested_values_keep_their_characters_in_the_property_text():
    """The premise of the case-insensitive witnesses for objects: Polars' text of a nested object keeps non-ASCII
    characters as they are (no ``\\uXXXX``), so a plain ASCII value found in it is found in the raw document."""
    from cohort_pipeline.engine.property_types import property_text

    text = pl.select(property_text(pl.lit('{"u": {"p": "caf\u00e9\u212a", "t": true}}'), "u")).item()
    assert text == '{"p":"caf\u00e9\u212a","t":true}'
