"""The property catalogue and its cache: a project's catalogue is reused only while everything it was computed
from (data files, declared types, inference code) is unchanged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from cohort_pipeline.service import property_catalogue as catalogue_module
from cohort_pipeline.service.property_catalogue import CatalogueCache, property_catalogue
from cohort_pipeline.sources import load_project
from cohort_pipeline_tests.service.helpers import SAMPLE

DECLARED = {"plan": "String", "age": "Numeric"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(SAMPLE / "project_1", target / "project_1")
    return target


def _computations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every project whose catalogue is computed (rather than reused)."""
    computed: list[int] = []
    real = catalogue_module.property_catalogue

    def counting(project_id: int, *args: object) -> pl.DataFrame:
        computed.append(project_id)
        return real(project_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(catalogue_module, "property_catalogue", counting)
    return computed


def _saved_catalogue(data_dir: Path, path: Path) -> None:
    """Project 1's catalogue, computed and saved in the cache file at ``path``."""
    cache = CatalogueCache(path)
    cache.catalogue(data_dir, 1, DECLARED)
    cache.save()


def test_an_unchanged_project_reuses_its_catalogue(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _computations(monkeypatch)
    path = tmp_path / "cache" / "catalogue.json"
    first = CatalogueCache(path)
    fresh = first.catalogue(data_dir, 1, DECLARED)
    first.save()
    assert fresh.equals(property_catalogue(1, load_project(data_dir, 1), DECLARED))
    second = CatalogueCache(path)
    assert second.catalogue(data_dir, 1, DECLARED).equals(fresh)
    assert (computed, first.reused, second.reused) == ([1], [], [1])


def test_changed_data_or_declarations_compute_it_again(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _computations(monkeypatch)
    path = tmp_path / "catalogue.json"
    _saved_catalogue(data_dir, path)
    changed = CatalogueCache(path).catalogue(data_dir, 1, {**DECLARED, "is_beta": "Boolean"})
    assert changed.filter(pl.col("key") == "is_beta")["source"].unique().to_list() == ["declared"]
    persons = data_dir / "project_1" / "persons.parquet"
    stat = persons.stat()
    os.utime(persons, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new delivery of the same file
    CatalogueCache(path).catalogue(data_dir, 1, DECLARED)
    assert computed == [1, 1, 1]


def test_new_inference_code_computes_it_again(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _computations(monkeypatch)
    path = tmp_path / "catalogue.json"
    _saved_catalogue(data_dir, path)
    rules = tmp_path / "property_types.py"
    rules.write_text("# the inference rules, edited\n")
    monkeypatch.setattr(catalogue_module, "RULES_SOURCES", (rules,))
    CatalogueCache(path).catalogue(data_dir, 1, DECLARED)
    assert computed == [1, 1]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"1": {"key": "?", "rows": 5}}'])
def test_an_unreadable_cache_counts_as_empty(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    computed = _computations(monkeypatch)
    path = tmp_path / "catalogue.json"
    path.write_text(content)
    expected = property_catalogue(1, load_project(data_dir, 1), DECLARED)
    assert CatalogueCache(path).catalogue(data_dir, 1, DECLARED).equals(expected)
    assert computed == [1]


def test_a_damaged_entry_with_a_matching_key_is_computed_again(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalogue.json"
    _saved_catalogue(data_dir, path)
    key = catalogue_module.catalogue_key(data_dir, 1, DECLARED)
    path.write_text(f'{{"1": {{"key": "{key}", "rows": [["not", "a", "row"]]}}}}')
    computed = _computations(monkeypatch)
    again = CatalogueCache(path)
    assert again.catalogue(data_dir, 1, DECLARED).height > 0
    assert (computed, again.reused) == ([1], [])


def test_a_project_whose_data_fails_is_not_remembered(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    cache = CatalogueCache(path)
    with pytest.raises(Exception, match="project directory not found"):
        cache.catalogue(tmp_path / "nowhere", 7, {})
    cache.save()
    assert path.read_text() == "{}"
