"""Shared fixtures: one small generated dataset per file format, and writers for hand-made table files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from cohort_pipeline.sources.generator import generate_dataset

FORMATS = ("parquet", "csv", "ndjson")
SMALL = {"persons": 120, "events": 2_500, "seed": 11, "project_ids": (1, 2)}


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same small two-project dataset written once in each format: format -> data dir."""
    root = tmp_path_factory.mktemp("generated")
    for fmt in FORMATS:
        generate_dataset(root / fmt, fmt=fmt, **SMALL)
    return {fmt: root / fmt for fmt in FORMATS}


WriteFile = Callable[[str, "pl.DataFrame | str | bytes"], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Write a frame (format from the extension) or raw text/bytes to ``tmp_path/<name>`` and return the path."""

    def write(name: str, content: pl.DataFrame | str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            writers = {".parquet": content.write_parquet, ".csv": content.write_csv,
                       ".ndjson": content.write_ndjson, ".jsonl": content.write_ndjson}
            writers[path.suffix](path)
        return path

    return write
