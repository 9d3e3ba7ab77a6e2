"""The process's one Great Expectations context, created on first use and reused by every validation.

``import great_expectations`` costs about 2 s, so nothing here imports it at module load: importing
``cohort_pipeline.quality`` (as the Dagster code location and the CLI do) stays cheap, the first validation in a
process pays the import once, and every later validation reuses the same ephemeral context, pandas data source,
data assets and batch definitions (building those takes milliseconds; the import is the cost worth caching).

The context is configured quiet: analytics off (``analytics_enabled=False`` in the project config, which GX
prefers over the ``GX_ANALYTICS_ENABLED`` variable, set here too for anything that reads it at import) and
progress bars off (otherwise tqdm floods Dagster's run logs). Suites are built per call and validated with
``batch.validate(suite)`` without being registered in the context, so the context's stores do not grow with
every run. GX's per-batch fingerprint of pandas frames is switched off (see ``_skip_pandas_fingerprint``).

GX is not documented as thread-safe, and one pandas data asset serves every call, so validations are
serialised by a lock. They are CPU-bound pandas work under the GIL anyway; separate processes (Dagster's
multiprocess executor) each get their own context.

Every Dagster run is a new process, so every run pays the import. ``warm_up()`` lets a caller that knows a
validation is coming after a long native computation (the engine's Polars plan, which releases the GIL) start
the import in a background thread, so the two overlap instead of running one after the other.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

DATA_SOURCE = "cohort_pipeline_quality"
"""Name of the in-memory pandas data source every quality suite validates against."""

RESULT_FORMAT = "BASIC"
"""Success, ``unexpected_count`` and a short value sample per expectation. Richer formats are avoided on purpose:
with ``unexpected_index_column_names`` GX builds its index list one pandas ``.at`` lookup at a time (measured:
37 s for a check failing on 1M rows), and its partial lists are capped at 200 rows, so they cannot name every
failing cohort anyway."""

_LOCK = threading.RLock()
_RUNTIME: GXRuntime | None = None
_WARM_UP_LOCK = threading.Lock()
_WARM_UP: threading.Thread | None = None

logger = logging.getLogger(__name__)


@dataclass
class GXRuntime:
    """The imported GX modules, the shared ephemeral context and its batch definitions (one per data asset)."""

    gx: ModuleType
    expectations: ModuleType
    context: Any
    _batch_definitions: dict[str, Any] = field(default_factory=dict)

    def validate(self, asset: str, frame: pd.DataFrame, expectations: Sequence[Any]) -> Any:
        """Validate ``frame`` as one batch of data asset ``asset`` against a suite of ``expectations``.

        Returns GX's ``ExpectationSuiteValidationResult``. GX catches an expectation that raises and reports it
        as failed with ``exception_info``; callers must treat such a result as a failure, never as a pass.
        """
        with _LOCK:
            suite = self.gx.ExpectationSuite(name=f"{asset}_suite", expectations=list(expectations))
            batch = self._batch_definition(asset).get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(suite, result_format=RESULT_FORMAT)

    def _batch_definition(self, asset: str) -> Any:
        if asset not in self._batch_definitions:
            source = self.context.data_sources.get(DATA_SOURCE)
            data_asset = source.add_dataframe_asset(name=asset)
            self._batch_definitions[asset] = data_asset.add_batch_definition_whole_dataframe(f"{asset}_whole")
        return self._batch_definitions[asset]


def gx_runtime() -> GXRuntime:
    """The process's GX runtime, importing Great Expectations and building the context on the first call."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            _RUNTIME = _create_runtime()
        return _RUNTIME


def warm_up() -> None:
    """Start creating the runtime (``gx_runtime()``) in a background thread, unless it exists or is under way.

    Returns at once. A validation that starts before the thread is done waits for it on the runtime's lock, then
    reuses what it built. A failure in the thread is only logged: the validation's own ``gx_runtime()`` call tries
    again and raises it there, where it holds back the run's cohorts as any validation error does.

    ``GX_ANALYTICS_ENABLED`` is set here, in the caller's thread, before the import starts: changing the process
    environment while Polars' threads may be reading it (they do, during a query) is a data race in the C library.
    Nothing else in the import or the context creation touches the environment (checked with GX 1.24).
    """
    global _WARM_UP
    with _WARM_UP_LOCK:
        if _RUNTIME is not None or _WARM_UP is not None:
            return
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        thread = threading.Thread(target=_warm_up, name="great-expectations-warm-up", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to spare: the first validation imports GX itself, as without warm-up
            logger.warning("could not start preparing Great Expectations in the background", exc_info=True)
            return
        _WARM_UP = thread


def _warm_up() -> None:
    try:
        gx_runtime()
    except Exception:  # noqa: BLE001 - the validation's own call raises it where it is handled
        logger.warning("preparing Great Expectations in the background failed", exc_info=True)


def gx_loaded() -> bool:
    """Whether this process has already paid for the GX import and context (for tests and diagnostics)."""
    return _RUNTIME is not None


def _create_runtime() -> GXRuntime:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    _skip_pandas_fingerprint()
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.data_sources.add_pandas(name=DATA_SOURCE)
    return GXRuntime(gx=gx, expectations=gxe, context=context)


def _skip_pandas_fingerprint() -> None:
    """Stop GX from fingerprinting every pandas batch.

    GX 1.24 hashes each pandas batch under ``HASH_THRESHOLD`` (1 GB) with ``pd.util.hash_pandas_object`` plus MD5,
    and ``batch.validate`` loads the batch twice: about 1.2 s of a 2.7 s validation of 1M rows, for a
    ``pandas_data_fingerprint`` batch marker that nothing reads (it only appears in result metadata). A threshold
    of 0 disables it. If a GX upgrade drops the constant this does nothing and validation is merely slower; the
    runtime test notices.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0
