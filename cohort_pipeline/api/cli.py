"""``cohort-pipeline serve`` and ``cohort-pipeline keys create|revoke|list``: run the HTTP API, manage its keys.

Registered on the main command (``cohort_pipeline/cli.py``) without a group name, so the commands sit at the top
level. Keys are shown once, at creation; only their hash is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(no_args_is_help=True)
keys_app = typer.Typer(help="Personal API keys for the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
err_console = Console(stderr=True)

StoreUrl = Annotated[str, typer.Option(help="SQLAlchemy URL of the store (default: local SQLite file).")]


def _store(url: str):  # noqa: ANN202 - imported lazily to keep `--help` fast
    from cohort_pipeline.store import CohortStore

    store = CohortStore(url or None)
    store.migrate()
    return store


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@app.command()
def serve(
    data_dir: Annotated[Path, typer.Option(help="Folder with one project_<id>/ folder per project.")] = Path(
        "data/sample"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    store_url: StoreUrl = "",
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (CSV uploads included), in MiB.")] = 10,
    query_timeout: Annotated[float, typer.Option(help="Time limit of a static cohort's query, in seconds.")] = 10,
) -> None:
    """Serve the PostHog-compatible cohort API (OpenAPI schema at /api/schema/, docs at /api/docs/)."""
    import uvicorn

    from cohort_pipeline.api.app import create_app
    from cohort_pipeline.service.hogql import QueryLimits

    if max_body_mb <= 0 or query_timeout <= 0:
        raise _fail("--max-body-mb and --query-timeout must be positive")
    store = _store(store_url)
    application = create_app(store, data_dir, max_body_bytes=int(max_body_mb * 1024 * 1024),
                             query_limits=QueryLimits(timeout_seconds=query_timeout))
    uvicorn.run(application, host=host, port=port, log_level="info")


def _scopes(text: str) -> list[str]:
    from cohort_pipeline.api.auth import SCOPES

    scopes = [scope.strip() for scope in text.split(",") if scope.strip()]
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if not scopes or unknown:
        raise _fail(f"--scopes: unknown scope(s) {', '.join(unknown) or '(none given)'}; use a comma-separated "
                    f"list of {', '.join(SCOPES)}")
    return scopes


@keys_app.command("create")
def create_key(
    project: Annotated[int, typer.Option(help="The project the key may access.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: cohort:read,cohort:write,person:read,"
                                             "feature_flag:read,feature_flag:write or *.")],
    label: Annotated[str, typer.Option(help="A name for the key (shown as the creator of its cohorts).")] = "",
    create_project: Annotated[str, typer.Option(help="Create the project with this name if it does not exist.")]
    = "",
    store_url: StoreUrl = "",
) -> None:
    """Create a key and print its secret (shown only now)."""
    from cohort_pipeline.errors import CohortPipelineError
    from cohort_pipeline.store import NotFoundError

    wanted = _scopes(scopes)
    store = _store(store_url)
    try:
        try:
            store.get_project(project)
        except NotFoundError:
            if not create_project:
                raise _fail(f"project {project} does not exist; sync a definitions file (cohort-pipeline run) or "
                            "pass --create-project NAME") from None
            store.create_project(create_project, project_id=project)
        record, secret = store.create_api_key(project, wanted, label=label)
    except CohortPipelineError as error:
        raise _fail(str(error)) from error
    console.print(f"key {record.id} for project {record.project_id} ({', '.join(record.scopes)})")
    console.print(secret, soft_wrap=True, highlight=False)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (see keys list).")],
    store_url: StoreUrl = "",
) -> None:
    """Revoke a key: requests with it answer 401 from now on."""
    from cohort_pipeline.store import NotFoundError

    store = _store(store_url)
    try:
        record = store.revoke_api_key(key_id)
    except NotFoundError as error:
        raise _fail(str(error)) from error
    console.print(f"key {record.id} revoked")


@keys_app.command("list")
def list_keys(
    project: Annotated[int, typer.Option(help="The project whose keys to list.")],
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    store_url: StoreUrl = "",
) -> None:
    """The project's keys (never their secrets)."""
    store = _store(store_url)
    table = Table(title=f"API keys of project {project}")
    for column in ("id", "label", "scopes", "created", "revoked"):
        table.add_column(column)
    for key in store.list_api_keys(project, include_revoked=include_revoked):
        table.add_row(str(key.id), escape(key.label), ", ".join(key.scopes), key.created_at.isoformat(),
                      key.revoked_at.isoformat() if key.revoked_at else "")
    console.print(table)


__all__ = ["app"]
