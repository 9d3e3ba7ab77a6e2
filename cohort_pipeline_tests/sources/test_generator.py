"""generate_dataset: deterministic, in the contract's shape, and covering every property value kind."""

from __future__ import annotations

import filecmp
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cohort_pipeline.sources import TABLES, ProjectData, load_project, table_schema
from cohort_pipeline.sources.generator import DEFAULT_END, EVENT_KINDS, generate_dataset

SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ProjectData:
    data_dir = tmp_path_factory.mktemp("kinds")
    generate_dataset(data_dir, persons=800, events=8_000, seed=5)
    return load_project(data_dir, 1)


@pytest.fixture(scope="module")
def person_properties(project: ProjectData) -> list[dict[str, object]]:
    return [json.loads(text) for text in project.persons.select("properties").collect().to_series()]


def _values(properties: list[dict[str, object]], key: str) -> list[object]:
    return [row[key] for row in properties if key in row]


# ----------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    for run in ("a", "b"):
        generate_dataset(tmp_path / run, persons=60, events=700, seed=3, project_ids=(1, 2))
    for project_dir in ("project_1", "project_2"):
        names = [f"{table}.parquet" for table in TABLES]
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a" / project_dir, tmp_path / "b" / project_dir, names,
                                               shallow=False)
        assert (mismatch, errors) == ([], [])


def test_different_seeds_and_projects_give_different_data(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", persons=60, events=700, seed=3, project_ids=(1, 2))
    generate_dataset(tmp_path / "b", persons=60, events=700, seed=4)
    frames = {
        key: load_project(tmp_path / run, project_id).persons.collect()
        for key, (run, project_id) in {"a1": ("a", 1), "a2": ("a", 2), "b1": ("b", 1)}.items()
    }
    assert not frames["a1"].equals(frames["b1"])
    assert set(frames["a1"]["id"]).isdisjoint(frames["a2"]["id"])


# ------------------------------------------------------------------------------------------ shape and dtypes


def test_tables_follow_the_contract(project: ProjectData) -> None:
    for table in TABLES:
        assert getattr(project, table).collect_schema() == table_schema(table)
    assert project.persons.select(pl.len()).collect().item() == 800
    assert project.events.select(pl.len()).collect().item() == 8_000


def test_identities_look_like_posthog(project: ProjectData) -> None:
    persons = project.persons.collect()
    ids = project.person_distinct_ids.collect()
    assert all(UUID.match(person_id) for person_id in persons["id"])
    assert set(ids["person_id"]) == set(persons["id"])  # every person has at least one distinct id
    per_person = ids.group_by("person_id").len()["len"]
    assert per_person.min() == 1 and per_person.max() == 3
    assert 0.22 < (per_person >= 2).mean() < 0.38  # ~30% merged anonymous + identified persons
    anonymous_only = ids.group_by("person_id").agg(pl.col("distinct_id").str.starts_with("user_").any().alias("known"))
    assert 0.15 < (~anonymous_only["known"]).mean() < 0.35


def test_events_are_ordered_in_the_window_and_mostly_attributable(project: ProjectData) -> None:
    events = project.events.collect()
    start = DEFAULT_END - timedelta(days=90)
    assert events["timestamp"].is_sorted()
    assert events["timestamp"].min() >= start and events["timestamp"].max() < DEFAULT_END
    assert events["uuid"].n_unique() == events.height
    assert all(UUID.match(uuid) for uuid in events["uuid"].head(200))
    known = events.join(project.person_distinct_ids.collect(), on="distinct_id", how="semi").height
    assert 0.98 * events.height < known < events.height  # a few events from distinct ids nobody owns


def test_event_names_and_frequencies(project: ProjectData) -> None:
    counts = dict(project.events.group_by("event").len().collect().iter_rows())
    assert set(counts) == {kind.name for kind in EVENT_KINDS}
    assert counts["$pageview"] > counts["$autocapture"] > counts["purchase"] > counts["subscription_cancelled"]


def test_activity_is_skewed(project: ProjectData) -> None:
    per_person = (
        project.events.join(project.person_distinct_ids, on="distinct_id").group_by("person_id").len().collect()
    )["len"].sort(descending=True)
    top_decile = per_person.head(len(per_person) // 10).sum()
    assert top_decile > 0.4 * per_person.sum()


def test_signups_happen_once_at_identification(project: ProjectData) -> None:
    signups = (
        project.events.filter(pl.col("event") == "signed_up")
        .join(project.person_distinct_ids, on="distinct_id")
        .group_by("person_id").len().collect()
    )
    assert signups.height > 0 and signups["len"].max() == 1


def test_custom_window(tmp_path: Path) -> None:
    end = datetime(2025, 1, 15, 12, tzinfo=UTC)
    generate_dataset(tmp_path, persons=30, events=300, seed=1, days=7, end=end)
    timestamps = load_project(tmp_path, 1).events.select("timestamp").collect().to_series()
    assert timestamps.min() >= end - timedelta(days=7) and timestamps.max() < end


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_text_formats_write_the_contract_layout(tmp_path: Path, fmt: str) -> None:
    generate_dataset(tmp_path, persons=20, events=100, seed=2, fmt=fmt)  # type: ignore[arg-type]
    assert sorted(path.name for path in (tmp_path / "project_1").iterdir()) == sorted(
        f"{table}.{fmt}" for table in TABLES
    )


def test_zero_events(tmp_path: Path) -> None:
    generate_dataset(tmp_path, persons=10, events=0, seed=2)
    events = load_project(tmp_path, 1).events.collect()
    assert events.height == 0 and events.schema == table_schema("events")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"persons": 0, "events": 1}, "persons must be at least 1"),
        ({"persons": 1, "events": -1}, "events must be at least 0"),
        ({"persons": 1, "events": 1, "days": 0}, "days must be at least 1"),
        ({"persons": 1, "events": 1, "fmt": "xlsx"}, "fmt must be one of parquet, csv, ndjson"),
    ],
)
def test_invalid_arguments(tmp_path: Path, arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, seed=1, **arguments)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- property value kinds


def test_scores_mix_json_numbers_and_numeric_strings(person_properties: list[dict[str, object]]) -> None:
    scores = [value for value in _values(person_properties, "score") if value is not None]
    kinds = {type(value) for value in scores}
    assert kinds == {int, float, str}
    assert all(re.fullmatch(r"\d+", value) for value in scores if isinstance(value, str))


def test_missing_keys_json_nulls_and_empty_strings(person_properties: list[dict[str, object]]) -> None:
    keys = ("email", "name", "plan", "age", "score", "is_beta", "signup_date", "last_seen_ts", "app_version",
            "country")
    for key in keys:
        assert any(key not in row for row in person_properties), f"{key} never missing"
    for key in ("email", "name", "age", "score", "is_beta", "last_seen_ts"):
        assert None in _values(person_properties, key), f"{key} never null"
    for key in ("email", "name", "country"):
        assert "" in _values(person_properties, key), f"{key} never empty"
    assert {} in person_properties or any(len(row) <= 2 for row in person_properties)


def test_typed_property_kinds(person_properties: list[dict[str, object]]) -> None:
    def present(key: str) -> list[object]:
        return [value for value in _values(person_properties, key) if value not in (None, "")]

    assert {type(value) for value in present("is_beta")} == {bool}
    assert {type(value) for value in present("age")} == {int}
    assert {type(value) for value in present("last_seen_ts")} == {int}
    assert all(1_600_000_000 < value < 1_900_000_000 for value in present("last_seen_ts"))
    assert all(ISO_DATE.match(value) for value in present("signup_date"))
    assert all(SEMVER.match(value) for value in present("app_version"))
    assert any("-" in value for value in present("app_version"))  # pre-releases
    assert any(value.startswith("1.1") and len(value.split(".")[1]) == 2 for value in present("app_version"))
    assert set(present("plan")) == {"free", "pro", "enterprise"}
    emails = present("email")
    assert any(email.endswith("@posthog.com") for email in emails)
    assert any(email.endswith("@example.com") for email in emails)


def test_event_properties(project: ProjectData) -> None:
    events = project.events.collect()
    parsed = {name: [json.loads(text) for text in group["properties"]]
              for (name,), group in events.group_by("event")}
    assert all(isinstance(p["amount"], int | float) and p["amount"] > 0 for p in parsed["purchase"])
    assert all(p["plan"] in {"free", "pro", "enterprise"} for p in parsed["purchase"])
    assert all(p["$current_url"].startswith("https://app.example.com/") for p in parsed["$pageview"])
    assert all("$browser" in p for rows in parsed.values() for p in rows)
    assert all("feature" in p for p in parsed["feature_used"])
