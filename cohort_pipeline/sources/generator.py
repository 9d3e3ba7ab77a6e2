"""Synthetic product-analytics data in the canonical on-disk layout (docs/data_contract.md).

The data is shaped to exercise the cohort engine, not just to fill files: persons with one to three distinct ids
(anonymous, identified, merged), skewed activity with churn, sign-up and identify moments, a few events from
distinct ids nobody owns, and person properties covering every value kind the spec's property semantics care
about (section 4.1, clarifications 10-11): JSON numbers and numeric strings in one key, JSON booleans, ISO dates,
unix seconds, semver strings, missing keys, JSON nulls and empty strings.

Everything is drawn from one NumPy generator seeded per (seed, project), so a seed always gives the same bytes.
Work is vectorised and events are produced one day at a time and written in row groups, so 1M persons / 30M
events fit in a few GB of memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal, Protocol

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cohort_pipeline.sources.contract import CONTRACT, TableName

FileFormatName = Literal["parquet", "csv", "ndjson"]

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
"""Fixed default end of the event window, so generated data does not depend on the day it is generated."""

SAMPLE_SEED = 20261101
SAMPLE_PROJECTS: dict[int, tuple[int, int]] = {1: (400, 15_000), 2: (150, 4_000)}
"""The committed sample: project id -> (persons, events)."""

_DAY_MS = 86_400_000
_ROW_GROUP_ROWS = 1_000_000
_TIMESTAMP_TEXT = "%Y-%m-%dT%H:%M:%S%.6fZ"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = np.array([*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)])


# --------------------------------------------------------------------------------------------------------------
# Vocabulary, as data
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weighted:
    """A categorical distribution over ``values``; ``draw`` returns indices into ``values``."""

    values: tuple[str, ...]
    weights: tuple[float, ...]

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p = np.asarray(self.weights, dtype=np.float64)
        return rng.choice(len(self.values), size=n, p=p / p.sum())

    def series(self, indices: np.ndarray) -> pl.Series:
        return pl.Series(self.values, dtype=pl.String).gather(indices)


@dataclass(frozen=True)
class EventKind:
    """One random event name, its share of traffic and which properties it carries."""

    name: str
    share: float
    url: bool = False
    feature: bool = False
    plan: bool = False
    amount: bool = False
    identified_only: bool = False


EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind("$pageview", 0.43, url=True),
    EventKind("$autocapture", 0.27, url=True),
    EventKind("$pageleave", 0.09, url=True),
    EventKind("feature_used", 0.16, feature=True, identified_only=True),
    EventKind("$identify", 0.02, identified_only=True),
    EventKind("purchase", 0.025, plan=True, amount=True, identified_only=True),
    EventKind("subscription_cancelled", 0.005, plan=True, identified_only=True),
    EventKind("signed_up", 0.0, plan=True, identified_only=True),  # once per person, at identification
)
"""Random events follow ``share``; ``signed_up`` and one ``$identify`` are placed at each person's sign-up."""

_EVENT_INDEX = {kind.name: index for index, kind in enumerate(EVENT_KINDS)}
_ANONYMOUS_FALLBACK = _EVENT_INDEX["$pageview"]
"""What an identified-only event becomes when drawn for a person who is still anonymous."""

_EVENT_DRAW = Weighted(tuple(k.name for k in EVENT_KINDS), tuple(k.share for k in EVENT_KINDS))
_IDENTIFIED_ONLY = np.array([k.identified_only for k in EVENT_KINDS])
_URL_KINDS = [i for i, k in enumerate(EVENT_KINDS) if k.url]
_FEATURE_KINDS = [i for i, k in enumerate(EVENT_KINDS) if k.feature]
_PLAN_KINDS = [i for i, k in enumerate(EVENT_KINDS) if k.plan]
_AMOUNT_KINDS = [i for i, k in enumerate(EVENT_KINDS) if k.amount]

URL_PATHS = Weighted(
    ("/", "/pricing", "/docs/getting-started", "/dashboard", "/settings/billing", "/signup", "/checkout",
     "/blog/cohorts-explained", "/pricing?utm_source=newsletter"),
    (22, 12, 10, 25, 5, 8, 4, 9, 5),
)
BROWSERS = Weighted(("Chrome", "Safari", "Firefox", "Microsoft Edge", "Opera", "Samsung Internet"),
                    (62, 19, 8, 7, 2, 2))
FEATURES = Weighted(("dashboards", "exports", "cohorts", "session_replay", "feature_flags", "experiments"),
                    (30, 15, 20, 15, 12, 8))
PLANS = Weighted(("free", "pro", "enterprise"), (70, 23, 7))
PLAN_PRICE_CENTS = np.array([900, 4900, 49900])
COUNTRIES = Weighted(("US", "GB", "DE", "FR", "IN", "BR", "CA", "JP", "AU", "NL", "ES", "PL", "SE", "MX"),
                     (34, 10, 8, 6, 8, 6, 5, 4, 4, 3, 3, 3, 2, 4))
FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Alice", "alice"), ("Bob", "bob"), ("Carla", "carla"), ("Dmitri", "dmitri"), ("Emma", "emma"),
    ("Farah", "farah"), ("Gustavo", "gustavo"), ("Hana", "hana"), ("Ibrahim", "ibrahim"), ("José", "jose"),
    ("Kenji", "kenji"), ("Léa", "lea"), ("Mohammed", "mohammed"), ("Nora", "nora"), ("Oliver", "oliver"),
    ("Priya", "priya"), ("Quentin", "quentin"), ("Rosa", "rosa"), ("Siobhán", "siobhan"), ("Tomasz", "tomasz"),
    ("Uma", "uma"), ("Viktor", "viktor"), ("Wei", "wei"), ("Zoë", "zoe"),
)
LAST_NAMES: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"), ("García", "garcia"), ("Müller", "muller"), ("O'Brien", "obrien"), ("Kowalski", "kowalski"),
    ("Nguyen", "nguyen"), ("Rossi", "rossi"), ("Tanaka", "tanaka"), ("Silva", "silva"), ("Johnson", "johnson"),
    ("Dubois", "dubois"), ("Patel", "patel"), ("Andersson", "andersson"), ("Kim", "kim"), ("Okafor", "okafor"),
)
EMAIL_DOMAINS = Weighted(
    ("gmail.com", "outlook.com", "yahoo.com", "acme.io", "initech.com", "hooli.xyz", "posthog.com", "example.com"),
    (40, 14, 8, 14, 10, 10, 2, 2),
)
"""``posthog.com`` and ``example.com`` addresses are the test accounts a test-account filter should drop."""


# --------------------------------------------------------------------------------------------------------------
# Population: one row per person, as NumPy arrays
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The event window ``[start_ms, end_ms)`` in epoch milliseconds, cut into whole days."""

    start_ms: int
    end_ms: int

    @property
    def days(self) -> int:
        return (self.end_ms - self.start_ms) // _DAY_MS

    def day_bounds(self, day: int) -> tuple[int, int]:
        start = self.start_ms + day * _DAY_MS
        return start, start + _DAY_MS


@dataclass(frozen=True)
class Population:
    """Everything drawn per person. Times are epoch milliseconds; activity is ``[active_from, active_to)``."""

    identified: np.ndarray  # bool: has an identified distinct id (otherwise anonymous-only)
    anonymous_ids: np.ndarray  # int: number of anonymous distinct ids (0-2)
    created_ms: np.ndarray
    identify_ms: np.ndarray  # identified persons: when they signed up / were identified
    active_from_ms: np.ndarray
    active_to_ms: np.ndarray
    activity: np.ndarray  # float: relative event rate (Pareto-distributed)
    plan: np.ndarray  # index into PLANS
    browser: np.ndarray  # index into BROWSERS
    first_name: np.ndarray
    last_name: np.ndarray
    domain: np.ndarray
    did_offset: np.ndarray  # index of the person's first row in the distinct-id table

    @property
    def size(self) -> int:
        return len(self.identified)


def _draw_population(rng: np.random.Generator, n: int, window: Window) -> Population:
    """Who the persons are: identity shape, lifetime, activity level and stable traits.

    75% are identified; 40% of those also kept 1-2 anonymous ids from before they identified (so ~30% of all
    persons have 2-3 distinct ids); the rest are anonymous-only visitors. 35% existed before the window.
    Activity is Pareto-skewed (a few heavy users make most events); 30% churn before the window ends.
    """
    identified = rng.random(n) < 0.75
    anonymous_ids = np.where(identified, rng.choice(3, size=n, p=[0.6, 0.3, 0.1]), 1)
    before_window = rng.random(n) < 0.35
    created_ms = np.where(
        before_window,
        window.start_ms - rng.integers(1, 365 * _DAY_MS, size=n),
        window.start_ms + rng.integers(0, window.end_ms - window.start_ms - 60_000, size=n),
    )
    delay_ms = (rng.exponential(0.5, size=n) * _DAY_MS).astype(np.int64) * (anonymous_ids > 0)
    identify_ms = np.minimum(created_ms + delay_ms, window.end_ms - 10_000)
    active_from_ms = np.maximum(created_ms, window.start_ms)
    anchor_ms = np.where(identified, np.maximum(identify_ms, active_from_ms), active_from_ms)
    churned = rng.random(n) < 0.30
    active_to_ms = np.where(
        churned,
        anchor_ms + (rng.random(n) * (window.end_ms - anchor_ms)).astype(np.int64) + 1,
        window.end_ms,
    )
    dormant = rng.random(n) < 0.05
    activity = np.minimum(rng.pareto(1.3, size=n) + 0.2, 400.0) * np.where(identified, 1.0, 0.3) * ~dormant
    n_ids = identified.astype(np.int64) + anonymous_ids
    return Population(
        identified=identified,
        anonymous_ids=anonymous_ids,
        created_ms=created_ms,
        identify_ms=identify_ms,
        active_from_ms=active_from_ms,
        active_to_ms=active_to_ms,
        activity=activity,
        plan=PLANS.draw(rng, n),
        browser=BROWSERS.draw(rng, n),
        first_name=rng.integers(0, len(FIRST_NAMES), size=n),
        last_name=rng.integers(0, len(LAST_NAMES), size=n),
        domain=EMAIL_DOMAINS.draw(rng, n),
        did_offset=np.concatenate([[0], np.cumsum(n_ids)[:-1]]),
    )


# --------------------------------------------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------------------------------------------


def _uuid_text(raw: np.ndarray) -> pl.Series:
    """Format an (n, 16) uint8 array as canonical UUID strings without a Python loop per row."""
    n = raw.shape[0]
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = _HEX[nibbles]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    array = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())])
    return pl.from_arrow(array).cast(pl.String)


def _uuid7(rng: np.random.Generator, timestamps_ms: np.ndarray) -> pl.Series:
    """Time-ordered UUIDv7s, as PostHog and posthog-js mint for events, persons and anonymous ids."""
    n = len(timestamps_ms)
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    for byte in range(6):
        raw[:, byte] = (timestamps_ms >> (8 * (5 - byte))) & 0xFF
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)
    return _uuid_text(raw)


def _distinct_ids(rng: np.random.Generator, population: Population) -> pl.DataFrame:
    """``person_distinct_ids`` plus the ids themselves in a fixed per-person layout the event sampler relies on.

    Rows of one person are contiguous from ``did_offset``: the identified id (``user_<n>``, numbered from 1000 in
    every project, so the same distinct id exists in several projects for different persons) comes first, then
    the anonymous UUIDv7 ids.
    """
    n_ids = population.identified.astype(np.int64) + population.anonymous_ids
    owner = np.repeat(np.arange(population.size), n_ids)
    slot = np.arange(len(owner)) - population.did_offset[owner]
    is_identified = population.identified[owner] & (slot == 0)
    user_number = np.cumsum(population.identified) - 1 + 1000
    anonymous = _uuid7(rng, population.created_ms[owner] + slot)
    person_ids = _uuid7(rng, population.created_ms)
    distinct_id = pl.select(
        pl.when(pl.Series(is_identified))
        .then(pl.format("user_{}", pl.Series(user_number[owner])))
        .otherwise(anonymous)
    ).to_series()
    return pl.DataFrame({"distinct_id": distinct_id, "person_id": person_ids.gather(owner)})


# --------------------------------------------------------------------------------------------------------------
# Person properties: a table of keys, each with its value kind and how often it is missing / null / ""
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """Shares of persons for whom a key is absent, a JSON null, or the empty string; the rest get a value."""

    missing: float = 0.0
    null: float = 0.0
    empty: float = 0.0


NEVER = Presence(missing=1.0)

JsonValues = Callable[[np.random.Generator, Population], pl.Series]
"""Per-person JSON literal text for one key (strings already quoted)."""


@dataclass(frozen=True)
class PersonProperty:
    """One person key: how its values are drawn and how often identified / anonymous persons lack it."""

    key: str
    values: JsonValues
    identified: Presence
    anonymous: Presence = NEVER


def _quoted(text: pl.Series | pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def _as_series(expr: pl.Expr) -> pl.Series:
    return pl.select(expr).to_series()


def _email_values(rng: np.random.Generator, people: Population) -> pl.Series:
    first = pl.Series([ascii_ for _, ascii_ in FIRST_NAMES]).gather(people.first_name)
    last = pl.Series([ascii_ for _, ascii_ in LAST_NAMES]).gather(people.last_name)
    number = pl.Series(rng.integers(1, 1000, size=people.size))
    domain = EMAIL_DOMAINS.series(people.domain)
    return _as_series(_quoted(pl.format("{}.{}{}@{}", first, last, number, domain)))


def _name_values(rng: np.random.Generator, people: Population) -> pl.Series:
    first = pl.Series([display for display, _ in FIRST_NAMES]).gather(people.first_name)
    last = pl.Series([display for display, _ in LAST_NAMES]).gather(people.last_name)
    return _as_series(_quoted(pl.format("{} {}", first, last)))


def _plan_values(rng: np.random.Generator, people: Population) -> pl.Series:
    return _as_series(_quoted(PLANS.series(people.plan)))


def _age_values(rng: np.random.Generator, people: Population) -> pl.Series:
    return pl.Series(rng.integers(18, 81, size=people.size)).cast(pl.String)


def _score_values(rng: np.random.Generator, people: Population) -> pl.Series:
    """A numeric key stored three ways: JSON integers, JSON floats, and numeric strings such as "42"."""
    whole = pl.Series(rng.integers(0, 101, size=people.size)).cast(pl.String)
    half = pl.Series(rng.integers(0, 100, size=people.size) + 0.5).cast(pl.String)
    kind = pl.Series(rng.choice(3, size=people.size, p=[0.45, 0.15, 0.40]))
    return _as_series(pl.when(kind == 0).then(whole).when(kind == 1).then(half).otherwise(_quoted(whole)))


def _is_beta_values(rng: np.random.Generator, people: Population) -> pl.Series:
    return pl.Series(np.where(rng.random(people.size) < 0.2, "true", "false"))


def _signup_date_values(rng: np.random.Generator, people: Population) -> pl.Series:
    return _as_series(_quoted(pl.from_epoch(pl.Series(people.identify_ms), time_unit="ms").dt.strftime("%Y-%m-%d")))


def _last_seen_values(rng: np.random.Generator, people: Population) -> pl.Series:
    """Unix seconds (a JSON number) shortly before the end of the person's activity."""
    lifetime = np.maximum(people.active_to_ms - people.active_from_ms, 0)
    before_end = (rng.random(people.size) * np.minimum(lifetime, 2 * _DAY_MS)).astype(np.int64)
    return pl.Series((people.active_to_ms - before_end) // 1000).cast(pl.String)


_RELEASE_LINES = Weighted(("1.x", "2.x", "beta", "rc"), (80, 16, 3, 1))


def _app_version_values(rng: np.random.Generator, people: Population) -> pl.Series:
    """Semver strings: mostly 1.x with minors up to 14 (so "1.12.3" > "1.9.0" holds only as semver, not as
    text), some 2.0-2.3, and a few 2.4.0 pre-releases ("2.4.0-beta.3") whose suffix semver parsing strips."""
    line = _RELEASE_LINES.draw(rng, people.size)
    major = np.where(line == 0, 1, 2)
    minor = np.where(line == 0, rng.integers(0, 15, size=people.size), rng.integers(0, 4, size=people.size))
    patch = rng.integers(0, 10, size=people.size)
    release = pl.format("{}.{}.{}", pl.Series(major), pl.Series(minor), pl.Series(patch))
    pre = pl.format("2.4.0-{}.{}", _RELEASE_LINES.series(line), pl.Series(patch + 1))
    return _as_series(_quoted(pl.when(pl.Series(line) < 2).then(release).otherwise(pre)))


def _country_values(rng: np.random.Generator, people: Population) -> pl.Series:
    return _as_series(_quoted(COUNTRIES.series(COUNTRIES.draw(rng, people.size))))


PERSON_PROPERTIES: tuple[PersonProperty, ...] = (
    PersonProperty("email", _email_values, Presence(missing=0.06, null=0.03, empty=0.03)),
    PersonProperty("name", _name_values, Presence(missing=0.10, null=0.04, empty=0.06)),
    PersonProperty("plan", _plan_values, Presence(missing=0.04)),
    PersonProperty("age", _age_values, Presence(missing=0.40, null=0.05)),
    PersonProperty("score", _score_values, Presence(missing=0.20, null=0.05)),
    PersonProperty("is_beta", _is_beta_values, Presence(missing=0.15, null=0.05)),
    PersonProperty("signup_date", _signup_date_values, Presence(missing=0.10)),
    PersonProperty("last_seen_ts", _last_seen_values, Presence(missing=0.05, null=0.03),
                   anonymous=Presence(missing=0.5)),
    PersonProperty("app_version", _app_version_values, Presence(missing=0.10), anonymous=Presence(missing=0.4)),
    PersonProperty("country", _country_values, Presence(missing=0.05, empty=0.03),
                   anonymous=Presence(missing=0.3, empty=0.03)),
)
"""Person keys in the order they appear in the JSON. Inferred types (spec clarification 11): age, score and
last_seen_ts Numeric; is_beta Boolean; the rest String (signup_date holds ISO dates, app_version semver)."""

_MISSING, _NULL, _EMPTY, _VALUE = range(4)


def _presence_states(rng: np.random.Generator, people: Population, spec: PersonProperty) -> np.ndarray:
    """Per person, one of ``_MISSING``/``_NULL``/``_EMPTY``/``_VALUE`` for a key, by identified/anonymous kind.

    One uniform draw per person is compared with the cumulative shares; the number of cut points it passes is
    the state, which is why the states are numbered in that order.
    """
    shares = np.array([[p.missing, p.null, p.empty] for p in (spec.anonymous, spec.identified)])
    cuts = np.cumsum(shares, axis=1)[people.identified.astype(np.int64)]
    draw = rng.random(people.size)[:, None]
    return (draw >= cuts).sum(axis=1)


def _json_member(key: str, states: np.ndarray, values: pl.Series) -> pl.Expr:
    state = pl.Series(states)
    prefix = f'"{key}": '
    return (
        pl.when(state == _VALUE).then(pl.lit(prefix) + values)
        .when(state == _NULL).then(pl.lit(prefix + "null"))
        .when(state == _EMPTY).then(pl.lit(prefix + '""'))
    )


def _json_object(members: Sequence[pl.Expr]) -> pl.Expr:
    """JSON object text from optional ``"key": value`` members, in Python's ``json.dumps`` spacing.

    That spacing is also how Polars re-serialises an NDJSON object read as text, so all three file formats read
    back to byte-identical properties.
    """
    return pl.concat_str([pl.lit("{"), pl.concat_str(members, separator=", ", ignore_nulls=True), pl.lit("}")])


def _persons_frame(rng: np.random.Generator, people: Population, person_ids: pl.Series) -> pl.DataFrame:
    members = [
        _json_member(spec.key, _presence_states(rng, people, spec), spec.values(rng, people))
        for spec in PERSON_PROPERTIES
    ]
    return pl.select(
        id=person_ids,
        created_at=pl.from_epoch(pl.Series(people.created_ms), time_unit="ms"),
        properties=_json_object(members),
    ).with_columns(pl.col("created_at").dt.cast_time_unit("us").dt.replace_time_zone("UTC"))


# --------------------------------------------------------------------------------------------------------------
# Events, one day at a time
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRate:
    """Piecewise-constant traffic intensity (weekends are quieter), integrated so overlaps are cheap."""

    window: Window
    rate: np.ndarray  # per day
    cumulative: np.ndarray  # integral up to the start of each day, plus the total

    @classmethod
    def of(cls, window: Window) -> DayRate:
        starts = window.start_ms + np.arange(window.days) * _DAY_MS
        weekday = ((starts // _DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        rate = np.where(weekday >= 5, 0.65, 1.0)
        return cls(window, rate, np.concatenate([[0.0], np.cumsum(rate * _DAY_MS)]))

    def integral(self, t_ms: np.ndarray) -> np.ndarray:
        """Weighted time from the window start to ``t_ms`` (clipped to the window)."""
        t = np.clip(t_ms, self.window.start_ms, self.window.end_ms)
        day = np.minimum((t - self.window.start_ms) // _DAY_MS, self.window.days - 1)
        return self.cumulative[day] + self.rate[day] * (t - self.window.start_ms - day * _DAY_MS)


def _events_per_person(rng: np.random.Generator, people: Population, rate: DayRate, total: int) -> np.ndarray:
    """Split ``total`` random events over persons by activity x weighted active time (a multinomial draw)."""
    exposure = rate.integral(people.active_to_ms) - rate.integral(people.active_from_ms)
    weight = people.activity * np.maximum(exposure, 0.0)
    weight = weight if weight.sum() > 0 else np.ones(people.size)
    return rng.multinomial(total, weight / weight.sum())


def _signups(people: Population, window: Window, budget: int) -> np.ndarray:
    """Persons who sign up inside the window (a ``signed_up`` + ``$identify`` pair each), within ``budget``."""
    inside = np.flatnonzero(people.identified & (people.identify_ms >= window.start_ms))
    return inside[: budget // 2]


@dataclass
class _EventSampler:
    """Draws each day's events; holds the per-person counts still to place in later days."""

    rng: np.random.Generator
    people: Population
    rate: DayRate
    remaining: np.ndarray
    signups: np.ndarray
    distinct_ids: pl.Series

    def day(self, day: int) -> pl.DataFrame:
        start, end = self.rate.window.day_bounds(day)
        person, ts = self._random_events(start, end)
        kind = _EVENT_DRAW.draw(self.rng, len(person))
        signup_person, signup_ts, signup_kind = self._signup_events(start, end)
        person = np.concatenate([person, signup_person])
        ts = np.concatenate([ts, signup_ts])
        kind = np.concatenate([kind, signup_kind])
        order = np.argsort(ts, kind="stable")
        return self._frame(person[order], ts[order], kind[order])

    def _random_events(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Place today's share of each person's remaining events: Binomial(remaining, today / rest of life)."""
        people = self.people
        lo = np.maximum(people.active_from_ms, start)
        hi = np.minimum(people.active_to_ms, end)
        today = np.maximum(self.rate.integral(hi) - self.rate.integral(lo), 0.0)
        rest = self.rate.integral(people.active_to_ms) - self.rate.integral(lo)
        share = np.divide(today, rest, out=np.zeros_like(today), where=rest > 0)
        count = self.rng.binomial(self.remaining, np.clip(share, 0.0, 1.0))
        self.remaining -= count
        person = np.repeat(np.arange(people.size), count)
        span = np.maximum(hi[person] - lo[person], 1)
        return person, lo[person] + (self.rng.random(len(person)) * span).astype(np.int64)

    def _signup_events(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        at = self.people.identify_ms[self.signups]
        person = self.signups[(at >= start) & (at < end)]
        signed_up = self.people.identify_ms[person]
        identify = np.minimum(signed_up + self.rng.integers(1, 5000, size=len(person)), end - 1)
        return (
            np.concatenate([person, person]),
            np.concatenate([signed_up, identify]),
            np.repeat([_EVENT_INDEX["signed_up"], _EVENT_INDEX["$identify"]], len(person)),
        )

    def _frame(self, person: np.ndarray, ts: np.ndarray, kind: np.ndarray) -> pl.DataFrame:
        """Assemble the day's events: who (which distinct id), what, when, and the properties JSON."""
        people, rng, n = self.people, self.rng, len(person)
        anonymous_phase = ~people.identified[person] | (ts < people.identify_ms[person])
        kind = np.where(anonymous_phase & _IDENTIFIED_ONLY[kind], _ANONYMOUS_FALLBACK, kind)
        anonymous_slot = people.identified[person] + rng.integers(0, np.maximum(people.anonymous_ids[person], 1))
        slot = np.where(anonymous_phase & (people.anonymous_ids[person] > 0), anonymous_slot, 0)
        distinct_id = self.distinct_ids.gather(people.did_offset[person] + slot)
        strangers = np.flatnonzero(rng.random(n) < 0.003)  # events from distinct ids no person owns
        distinct_id = distinct_id.scatter(strangers, _uuid7(rng, ts[strangers]))
        amount_cents = (PLAN_PRICE_CENTS[people.plan[person]] * rng.lognormal(0.0, 0.35, size=n)).astype(np.int64)
        kinds = pl.Series(kind)
        members = [
            _when_kind(kinds, _URL_KINDS, '"$current_url": ', _quoted(pl.lit("https://app.example.com")
                                                                    + URL_PATHS.series(URL_PATHS.draw(rng, n)))),
            pl.lit('"$browser": ') + _quoted(BROWSERS.series(people.browser[person])),
            _when_kind(kinds, _FEATURE_KINDS, '"feature": ', _quoted(FEATURES.series(FEATURES.draw(rng, n)))),
            _when_kind(kinds, _PLAN_KINDS, '"plan": ', _quoted(PLANS.series(people.plan[person]))),
            _when_kind(kinds, _AMOUNT_KINDS, '"amount": ', _json_money(amount_cents)),
        ]
        return pl.select(
            uuid=_uuid7(rng, ts),
            event=pl.Series([k.name for k in EVENT_KINDS]).gather(kind),
            distinct_id=distinct_id,
            timestamp=pl.from_epoch(pl.Series(ts), time_unit="ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC"),
            properties=_json_object(members),
        )


def _when_kind(kinds: pl.Series, which: list[int], prefix: str, value: pl.Expr) -> pl.Expr:
    return pl.when(kinds.is_in(which)).then(pl.lit(prefix) + value)


def _json_money(cents: np.ndarray) -> pl.Expr:
    """Amounts as JSON numbers in their shortest form (49, 49.9, 49.99), as a JSON serialiser would print them."""
    whole = pl.Series(cents // 100).cast(pl.String)
    exact = pl.Series(cents / 100).cast(pl.String)
    return pl.when(pl.Series(cents % 100 == 0)).then(whole).otherwise(exact)


# --------------------------------------------------------------------------------------------------------------
# Writing: one sink per format, fed in chunks
# --------------------------------------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, frame: pl.DataFrame) -> None: ...
    def close(self) -> None: ...


class _ParquetSink:
    """Appends row groups to one Parquet file (zstd), so 30M events never sit in memory at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        self._writer = self._writer or pq.ParquetWriter(self._path, table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=_ROW_GROUP_ROWS)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _TextSink:
    """Base of the text formats: timestamps become ISO-8601 UTC text, as docs/data_contract.md specifies."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = path.open("wb")
        self._first = True  # CSV writes its header with the first chunk only

    @staticmethod
    def _with_text_timestamps(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(pl.Datetime).dt.strftime(_TIMESTAMP_TEXT))

    def close(self) -> None:
        self._file.close()


class _CsvSink(_TextSink):
    def write(self, frame: pl.DataFrame) -> None:
        self._with_text_timestamps(frame).write_csv(self._file, include_header=self._first)
        self._first = False


class _NdjsonSink(_TextSink):
    """One JSON object per line, with ``properties`` embedded as an object (PostHog's export shape).

    Scalar columns are encoded by Polars (so escaping is right); the properties text, already JSON, is spliced
    in as the last member rather than re-encoded as a string.
    """

    def write(self, frame: pl.DataFrame) -> None:
        text = self._with_text_timestamps(frame)
        scalars = pl.struct([name for name in text.columns if name != "properties"]).struct.json_encode()
        line = (
            pl.concat_str([scalars.str.strip_suffix("}"), pl.lit(',"properties":'), pl.col("properties"), pl.lit("}")])
            if "properties" in text.columns
            else scalars
        )
        text.select(line.alias("line")).write_csv(self._file, include_header=False, quote_style="never")


SINKS: dict[FileFormatName, Callable[[Path], _Sink]] = {
    "parquet": _ParquetSink,
    "csv": _CsvSink,
    "ndjson": _NdjsonSink,
}


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def generate_dataset(
    out_dir: Path,
    *,
    persons: int,
    events: int,
    seed: int,
    project_ids: Sequence[int] = (1,),
    days: int = 90,
    end: datetime | None = None,
    fmt: FileFormatName = "parquet",
) -> list[Path]:
    """Write ``out_dir/project_<id>/{persons,person_distinct_ids,events}.<fmt>`` for each project.

    Each project gets ``persons`` persons and exactly ``events`` events, timestamped in the ``days`` days ending
    at ``end`` (default ``DEFAULT_END``). Projects draw from independent streams seeded by (seed, project id),
    so they hold different persons while sharing some distinct-id strings (``user_1000`` ...), which is what
    makes cross-project leaks visible. The same arguments always produce the same bytes. Returns the project
    folders.
    """
    _check_arguments(persons, events, days, fmt)
    window = _window(end or DEFAULT_END, days)
    return [
        _generate_project(Path(out_dir) / f"project_{project_id}", persons, events, seed, project_id, window, fmt)
        for project_id in project_ids
    ]


def generate_sample(out_dir: Path) -> list[Path]:
    """The committed sample in ``data/sample``: project 1 (400 persons, 15k events), project 2 (150, 4k)."""
    return [
        path
        for project_id, (persons, events) in SAMPLE_PROJECTS.items()
        for path in generate_dataset(
            out_dir, persons=persons, events=events, seed=SAMPLE_SEED, project_ids=(project_id,)
        )
    ]


# --------------------------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------------------------


def _check_arguments(persons: int, events: int, days: int, fmt: str) -> None:
    problems = {
        "persons must be at least 1": persons < 1,
        "events must be at least 0": events < 0,
        "days must be at least 1": days < 1,
        f"fmt must be one of {', '.join(SINKS)}": fmt not in SINKS,
    }
    failed = [problem for problem, bad in problems.items() if bad]
    if failed:
        raise ValueError("; ".join(failed))


def _window(end: datetime, days: int) -> Window:
    end_utc = end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)
    end_ms = int(end_utc.timestamp() * 1000)
    return Window(end_ms - days * _DAY_MS, end_ms)


def _generate_project(project_dir: Path, persons: int, events: int, seed: int, project_id: int,
                      window: Window, fmt: FileFormatName) -> Path:
    rng = np.random.default_rng([seed, project_id])
    people = _draw_population(rng, persons, window)
    identities = _distinct_ids(rng, people)
    person_ids = identities.select(pl.col("person_id").gather(people.did_offset)).to_series()
    persons_frame = _persons_frame(rng, people, person_ids)
    project_dir.mkdir(parents=True, exist_ok=True)
    _write(project_dir, "persons", [persons_frame], fmt)
    _write(project_dir, "person_distinct_ids", [identities], fmt)
    _write(project_dir, "events", _event_chunks(rng, people, identities, window, events), fmt)
    return project_dir


def _write(project_dir: Path, table: TableName, frames: Iterable[pl.DataFrame], fmt: FileFormatName) -> None:
    """Stream ``frames`` (in contract column order) into ``<table>.<fmt>``; a lazy iterable is consumed chunk by chunk."""
    order = [column.name for column in CONTRACT[table]]
    sink = SINKS[fmt](project_dir / f"{table}.{fmt}")
    try:
        for frame in frames:
            sink.write(frame.select(order))
    finally:
        sink.close()


def _event_chunks(rng: np.random.Generator, people: Population, identities: pl.DataFrame, window: Window,
                  total: int) -> Iterator[pl.DataFrame]:
    """Yield the events in timestamp order, buffered into row groups of about ``_ROW_GROUP_ROWS``."""
    rate = DayRate.of(window)
    signups = _signups(people, window, total)
    sampler = _EventSampler(
        rng=rng,
        people=people,
        rate=rate,
        remaining=_events_per_person(rng, people, rate, total - 2 * len(signups)),
        signups=signups,
        distinct_ids=identities.get_column("distinct_id"),
    )
    buffer: list[pl.DataFrame] = []
    buffered = 0
    for day in range(window.days):
        frame = sampler.day(day)
        buffer.append(frame)
        buffered += frame.height
        if buffered >= _ROW_GROUP_ROWS:
            yield pl.concat(buffer)
            buffer, buffered = [], 0
    if buffer:
        yield pl.concat(buffer)
