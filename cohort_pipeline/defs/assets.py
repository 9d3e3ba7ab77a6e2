"""The cohort asset graph: definitions and data in, validated and versioned memberships with counts out.

    cohort_definitions ─┐
    persons ────────────┼─► property_definitions ──┐
    events ─────────────┘                          ├─► cohort_membership ──┬─► cohort_counts
    cohort_definitions, persons, events,           │   one partition per   └─► cohort_calculation_history
    person_distinct_ids ───────────────────────────┘   cohort: p<project>-c<cohort>

Each asset function reads like a sentence and leaves the work to the service layer.
"""


import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from cohort_pipeline.defs.jobs import GROUP
from cohort_pipeline.defs.partitions import cohort_partitions
from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.errors import CohortPipelineError
from cohort_pipeline.model.cohort_type import REALTIME_COHORT_MAX_PERSON_COUNT
from cohort_pipeline.quality import CHECKS, DEFAULT_SIZE_CHANGE_THRESHOLD, Severity
from cohort_pipeline.quality.membership import Limits
from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.data_files import data_project_ids, table_rows
from cohort_pipeline.service.definitions_snapshot import sync_definitions
from cohort_pipeline.service.property_catalogue import SCHEMA as CATALOGUE_SCHEMA
from cohort_pipeline.service.property_catalogue import CatalogueCache, catalogue_markdown
from cohort_pipeline.service.recalculation import CohortOutcome, RecalculationReport, recalculate
from cohort_pipeline.service.summaries import (
    calculation_history,
    counts_markdown,
    history_markdown,
    write_csv,
)
from cohort_pipeline.service.summaries import cohort_counts as published_counts
from cohort_pipeline.sources import CONTRACT, TABLES

MEMBERSHIP = dg.AssetKey("cohort_membership")


# --- definitions ---------------------------------------------------------------------------------------------


@dg.asset(group_name=GROUP, kinds={"json", "sqlite"})
def cohort_definitions(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """Validate the definitions file, make the store hold its projects and cohorts, and snapshot it for
    calculations. An invalid file fails here and changes nothing: calculations keep the last valid snapshot."""
    report = sync_definitions(settings.store(), Path(settings.definitions_path), Path(settings.state_dir))
    return dg.MaterializeResult(metadata={
        "projects": len(report.projects),
        "cohorts": report.cohort_count,
        "fingerprint": report.fingerprint or "",
        "snapshot": dg.MetadataValue.path(str(report.snapshot_dir)),
    })


# --- data ----------------------------------------------------------------------------------------------------


def _project_ids(settings: CohortPipelineSettings) -> list[int]:
    """Every project the data folder, the definitions snapshot or the store knows."""
    ids = set(data_project_ids(Path(settings.data_dir))) | set(settings.snapshot().projects)
    ids |= {p.id for p in settings.store().list_projects()}
    return sorted(ids)


def _table_asset(table: str) -> dg.AssetsDefinition:
    schema = dg.TableSchema(columns=[dg.TableColumn(c.name, c.kind, description=None if c.required else "optional")
                                     for c in CONTRACT[table]])  # type: ignore[index]

    @dg.asset(name=table, group_name=GROUP, kinds={"polars", "parquet"},
              check_specs=[dg.AssetCheckSpec("data_contract", asset=table, description=(
                  f"Every project's `{table}` file exists and follows docs/data_contract.md. Not blocking: "
                  "cohorts of a project with bad data fail with the problem in their calculation history, the "
                  "other projects' cohorts are still calculated."))])
    def _asset(settings: CohortPipelineSettings) -> dg.MaterializeResult:
        rows, problems = table_rows(Path(settings.data_dir), _project_ids(settings), table)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": sum(rows.values()), "dagster/column_schema": schema,
                      **{f"project_{p}": n for p, n in rows.items()}},
            check_results=[dg.AssetCheckResult(
                check_name="data_contract", passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(f"project {p}: {m}" for p, m in problems.items()) or None,
                metadata={f"project_{p}": m for p, m in problems.items()})],
        )

    _asset.__doc__ = f"The `{table}` table of every project, read in place and checked against the data contract."
    return _asset


persons, person_distinct_ids, events = (_table_asset(table) for table in TABLES)


@dg.asset(group_name=GROUP, deps=[cohort_definitions, "persons", "events"], kinds={"polars"})
def property_definitions(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """Every property key of the persons and events with its type: declared in the definitions file, else inferred
    from the data by the engine's rules (decision 2). Written to ``<state_dir>/property_definitions.csv``; a
    project whose data files and declared types did not change since the last run keeps its catalogue
    (``<state_dir>/cache/property_definitions.json``) instead of reading every row again."""
    snapshot = settings.snapshot()
    cache = CatalogueCache(Path(settings.state_dir) / "cache" / "property_definitions.json")
    frames, problems = [], {}
    for project_id in _project_ids(settings):
        project = snapshot.project(project_id)
        try:
            frames.append(cache.catalogue(Path(settings.data_dir), project_id,
                                          project.property_definitions if project else {}))
        except (CohortPipelineError, pl.exceptions.PolarsError) as error:
            problems[project_id] = str(error).strip().splitlines()[0]
    cache.save()
    catalogue = pl.concat(frames) if frames else pl.DataFrame(schema=CATALOGUE_SCHEMA)
    path = write_csv(catalogue, Path(settings.state_dir) / "property_definitions.csv")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": catalogue.height,
        "declared": catalogue.filter(pl.col("source") == "declared").height,
        "inferred": catalogue.filter(pl.col("source") == "inferred").height,
        "reused_projects": len(cache.reused),
        "definitions": dg.MetadataValue.md(catalogue_markdown(catalogue)),
        "path": dg.MetadataValue.path(str(path)),
        **{f"project_{p} skipped": m for p, m in problems.items()},
    })


# --- membership ----------------------------------------------------------------------------------------------


class MembershipConfig(dg.Config):
    """``as_of``: evaluate as of this ISO-8601 instant (relative dates, behavioural windows) to reproduce a past
    membership; default now. ``versions``: the version requested for each partition when the run was requested
    (set by sensors and the schedule; a partition without one requests its version when the run starts)."""

    as_of: str | None = None
    versions: dict[str, int] = {}


_LIMITS = Limits(max_realtime_size=REALTIME_COHORT_MAX_PERSON_COUNT,
                 size_change_threshold=DEFAULT_SIZE_CHANGE_THRESHOLD)
with warnings.catch_warnings():
    # per-partition checks are a preview feature of Dagster 1.13 (they work; the warning would print on every load)
    warnings.simplefilter("ignore", dg.PreviewWarning)
    MEMBERSHIP_CHECKS = [
        dg.AssetCheckSpec(
            check.name, asset=MEMBERSHIP, partitions_def=cohort_partitions,
            blocking=check.severity is Severity.ERROR,
            description=f"[{check.severity}] {check.passed(_LIMITS)} Great Expectations, on the candidate "
                        "membership before publishing: "
                        + ("a failure stops this cohort's publish." if check.severity is Severity.ERROR
                           else "reported only."),
        )
        for check in CHECKS
    ]


def _parse_as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise dg.Failure(description=f"as_of: '{value}' is not an ISO-8601 datetime "
                                     "(e.g. 2026-11-01T12:00:00Z)") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _preview_markdown(outcome: CohortOutcome) -> str:
    lines = ["| person_id | email | name |", "|---|---|---|"]
    lines += [f"| `{m['person_id']}` | {m['email'] or ''} | {m['name'] or ''} |" for m in outcome.preview]
    if outcome.count and outcome.count > len(outcome.preview):
        lines.append(f"| ... {outcome.count - len(outcome.preview):,} more | | |")
    return "\n".join(lines)


def partition_metadata(outcome: CohortOutcome, as_of: datetime) -> dict[str, object]:
    """What a cohort's materialization shows: its size (plotted across runs), version, diff, preview."""
    metadata: dict[str, object] = {
        "status": outcome.status,
        "cohort": f"{outcome.name} ({'static' if outcome.is_static else 'dynamic'})",
        "count": outcome.count or 0,
        "dagster/row_count": outcome.count or 0,
        "version": outcome.version or 0,
        "as_of": as_of.isoformat(),
    }
    if outcome.status == "published":
        metadata.update({"entered": outcome.entered or 0, "exited": outcome.exited or 0,
                         "previous_count": outcome.previous_count or 0,
                         "members": dg.MetadataValue.md(_preview_markdown(outcome))})
    if outcome.reason:
        metadata["reason"] = outcome.reason
    if outcome.static_import is not None:
        metadata.update({"source": outcome.static_import.source,
                         "ids_submitted": outcome.static_import.ids_submitted,
                         "matched": outcome.static_import.persons_matched,
                         "unmatched": outcome.static_import.unmatched_count})
    for check in outcome.checks:
        if not check.passed:
            metadata[f"check {check.name}"] = check.description
    return metadata


def _check_evaluations(report: RecalculationReport) -> Iterator[dg.AssetCheckEvaluation]:
    for outcome in report.outcomes:
        for check in outcome.checks:
            yield dg.AssetCheckEvaluation(
                asset_key=MEMBERSHIP, check_name=check.name, passed=check.passed, partition=str(outcome.key),
                severity=dg.AssetCheckSeverity(check.severity.value), blocking=check.severity is Severity.ERROR,
                description=check.description, metadata=dict(check.metadata),
            )


@dg.multi_asset(
    name="cohort_membership",
    specs=[dg.AssetSpec(
        MEMBERSHIP, group_name=GROUP, partitions_def=cohort_partitions, kinds={"polars", "sqlite"},
        deps=[cohort_definitions, property_definitions, *TABLES],
        description="Each partition is one cohort (`p<project>-c<cohort>`): its members, published as a new version "
                    "in the store after the quality checks pass. A run over many partitions evaluates them in one "
                    "fused pass per project, dependencies first.",
    )],
    check_specs=MEMBERSHIP_CHECKS,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def cohort_membership(context: dg.AssetExecutionContext, config: MembershipConfig,
                      settings: CohortPipelineSettings) -> Iterator[object]:
    """Recalculate the run's cohorts, validate the candidates, publish the ones that pass, report every cohort."""
    as_of = _parse_as_of(config.as_of)
    try:
        keys = [CohortKey.parse(k) for k in context.partition_keys]
        versions = {CohortKey.parse(k): v for k, v in config.versions.items()}
    except ValueError as error:
        raise dg.Failure(description=str(error)) from error
    report = recalculate(settings.store(), keys, data_dir=Path(settings.data_dir), snapshot=settings.snapshot(),
                         versions=versions, as_of=as_of)
    for outcome in report.outcomes:
        log = {"failed": context.log.error, "skipped": context.log.warning}.get(outcome.status, context.log.info)
        log(outcome.describe())
    for project_id, validation in report.validations.items():
        context.log.info(f"project {project_id}: {validation.summary()}")
    yield from _check_evaluations(report)

    shown = report.with_status("published", "unchanged")
    if report.all_handled:
        # every partition of the run has a result: one materialization per partition, with its own metadata
        for outcome in shown:
            context.add_asset_metadata(partition_metadata(outcome, report.as_of), partition_key=str(outcome.key))
        yield dg.MaterializeResult(asset_key=MEMBERSHIP)
        for output_name in context.assets_def.check_specs_by_output_name:
            if output_name in context.op_execution_context.selected_output_names:  # reported per partition above
                yield dg.Output(None, output_name=output_name)
    else:
        # only the cohorts that were published (or left unchanged) get a materialization
        for outcome in shown:
            yield dg.AssetMaterialization(asset_key=MEMBERSHIP, partition=str(outcome.key),
                                          metadata=partition_metadata(outcome, report.as_of))
    if report.failed:
        raise dg.Failure(description=report.failure_description(),
                         metadata={"failed": len(report.failed), "published": len(report.with_status("published"))})


# --- summaries -----------------------------------------------------------------------------------------------


@dg.asset(group_name=GROUP, deps=[MEMBERSHIP], kinds={"sqlite", "csv"})
def cohort_counts(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """Every cohort's published count and calculation state, from the store (``<state_dir>/cohort_counts.csv``)."""
    counts = published_counts(settings.store())
    path = write_csv(counts, Path(settings.state_dir) / "cohort_counts.csv")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": counts.height,
        "members": int(counts["count"].sum() or 0),
        "never_calculated": counts.filter(pl.col("version").is_null()).height,
        "failing": counts.filter(pl.col("errors_calculating") > 0).height,
        "counts": dg.MetadataValue.md(counts_markdown(counts)),
        "path": dg.MetadataValue.path(str(path)),
    })


@dg.asset(group_name=GROUP, deps=[MEMBERSHIP], kinds={"sqlite", "csv"})
def cohort_calculation_history(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """The latest calculations of every cohort (PostHog's calculation history), from the store
    (``<state_dir>/calculation_history.csv``)."""
    history = calculation_history(settings.store())
    path = write_csv(history, Path(settings.state_dir) / "calculation_history.csv")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": history.height,
        "failed_runs": history.filter(pl.col("error").is_not_null()).height,
        "recent": dg.MetadataValue.md(history_markdown(history)),
        "path": dg.MetadataValue.path(str(path)),
    })
