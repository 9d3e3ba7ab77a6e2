"""The ``cohort-pipeline`` command line (Typer).

``evaluate`` computes cohorts from files without any server; ``data generate`` writes seeded sample data;
``run`` materializes the Dagster job on the bundled sample. Errors are printed as one clear line (what and
where) with exit status 2 for bad input and 1 for failed calculations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cohort_pipeline.errors import CohortPipelineError

app = typer.Typer(help="PostHog-compatible cohorts as a Polars + Dagster pipeline.", no_args_is_help=True)
data_app = typer.Typer(help="Sample and benchmark data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
from cohort_pipeline.api.cli import app as api_app  # noqa: E402 - `serve` and `keys` (HTTP API)

app.add_typer(api_app)
console = Console()
err_console = Console(stderr=True)


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise _fail(f"--now: '{value}' is not an ISO-8601 datetime (e.g. 2026-11-01T12:00:00Z)") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fail(error: Exception | str, code: int = 2) -> typer.Exit:
    """Print one line (never wrapped; the message is text, not Rich markup) and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code)


def print_counts(rows: list[dict]) -> None:
    """The table a user reads after a run: project, cohort, kind, count (or the error)."""
    table = Table(title="Cohorts")
    for column in ("project", "id", "name", "kind", "count"):
        table.add_column(column, justify="right" if column in ("id", "count") else "left")
    for row in rows:
        count = str(row["count"]) if row.get("error") is None else f"[red]failed: {escape(row['error'])}[/]"
        kind = "static" if row["is_static"] else "dynamic"
        table.add_row(str(row["project_id"]), str(row["cohort_id"]), escape(row["name"]), kind, count)
    console.print(table)


@app.command()
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="Folder with one project_<id>/ folder per project.")],
    definitions: Annotated[Path, typer.Option("--definitions", "-d", help="Cohort definitions JSON file.")],
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO-8601 time (default: now).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where memberships and counts go.")] = Path("out"),
) -> None:
    """Compute every cohort in DEFINITIONS over the data in DATA_DIR; write memberships and counts."""
    from cohort_pipeline.service.calculate import calculate_project
    from cohort_pipeline.service.definitions_file import load_definitions
    from cohort_pipeline.service.outputs import counts_frame, write_results
    from cohort_pipeline.sources import load_project

    as_of = _parse_now(now)
    try:
        projects = load_definitions(definitions)
        results = []
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            for project in projects:
                task = progress.add_task(f"project {project.id}: loading data", total=None)
                data = load_project(data_dir, project.id)
                progress.update(task, description=f"project {project.id}: evaluating {len(project.cohorts)} cohorts")
                results.append(calculate_project(project, data, now=as_of))
                progress.remove_task(task)
            paths = write_results(results, output)
    except CohortPipelineError as error:
        raise _fail(error) from error
    rows = counts_frame(results).to_dicts()
    print_counts(rows)
    console.print(f"memberships: {paths['memberships']}\ncounts: {paths['counts']}")
    if any(row["error"] for row in rows):
        raise typer.Exit(1)


@app.command()
def run(
    data_dir: Annotated[Path, typer.Option(help="Folder with one project_<id>/ folder per project.")] = Path(
        "data/sample"),
    definitions: Annotated[Path, typer.Option(help="Cohort definitions JSON file.")] = Path(
        "data/sample/cohorts.json"),
    store_url: Annotated[str, typer.Option(help="SQLAlchemy URL of the store (default: local SQLite file).")] = "",
    state_dir: Annotated[Path, typer.Option(help="Folder for the definitions snapshot and summaries.")] = Path(
        ".cohort_pipeline"),
    as_of: Annotated[str | None, typer.Option(help="Evaluate as of this ISO-8601 time (default: now).")] = None,
) -> None:
    """Execute the Dagster job ``refresh_cohorts`` in-process over every cohort and print each one's count."""
    from cohort_pipeline.defs.local_run import local_instance, refresh_everything
    from cohort_pipeline.defs.resources import CohortPipelineSettings
    from cohort_pipeline.store import NotFoundError

    if as_of is not None:
        _parse_now(as_of)
    settings = CohortPipelineSettings(data_dir=str(data_dir), definitions_path=str(definitions), store_url=store_url,
                                      state_dir=str(state_dir))
    try:
        projects = settings.projects()  # validated before anything is written
        instance = local_instance()
        with console.status("running refresh_cohorts"):
            result = refresh_everything(settings, instance, as_of=as_of)
    except CohortPipelineError as error:
        raise _fail(error) from error
    store = settings.store()
    rows = []
    for project in projects:
        for cohort in project.cohorts:  # the file's cohorts (the store may hold others, e.g. removed ones)
            try:
                record = store.get_cohort(project.id, cohort.id)
            except NotFoundError:
                count, error = None, "not in the store (the run stopped before syncing the definitions)"
            else:
                history = store.calculation_history(cohort.id, limit=1)
                count, error = record.count, (history[0].error if history and history[0].error else None)
            rows.append({"project_id": project.id, "cohort_id": cohort.id, "name": cohort.name,
                         "is_static": cohort.definition.is_static, "count": count, "error": error})
    print_counts(rows)
    if result is not None and not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                data = event.step_failure_data
                if data.user_failure_data is not None:
                    message = data.user_failure_data.description or ""
                else:  # the asset's own exception, not Dagster's wrapper
                    message = (data.error.cause or data.error).message.strip()
                err_console.print(f"[red]{event.step_key} failed:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(1)


@data_app.command("generate")
def generate(
    persons: Annotated[int, typer.Option(min=1, help="Persons per project.")],
    events: Annotated[int, typer.Option(min=0, help="Events per project.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same data.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output data folder.")] = Path("data/generated"),
    projects: Annotated[str, typer.Option(help="Comma-separated project ids.")] = "1",
    days: Annotated[int, typer.Option(min=1, help="Days of event history.")] = 90,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or ndjson.")] = "parquet",
) -> None:
    """Write realistic seeded product-analytics data in PostHog's table shapes."""
    from cohort_pipeline.sources.generator import generate_dataset

    try:
        project_ids = tuple(int(p) for p in projects.split(",") if p.strip())
    except ValueError as error:
        raise typer.BadParameter(f"--projects must be comma-separated integers, got '{projects}'") from error
    if fmt not in ("parquet", "csv", "ndjson"):
        raise typer.BadParameter(f"--format must be parquet, csv or ndjson, got '{fmt}'")
    with console.status(f"generating {persons:,} persons and {events:,} events per project"):
        generate_dataset(out, persons=persons, events=events, seed=seed, project_ids=project_ids, days=days,
                         fmt=fmt)
    console.print(f"wrote {out}")


def main() -> None:
    app()
