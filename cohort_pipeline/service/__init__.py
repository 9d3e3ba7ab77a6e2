"""Use-cases shared by the CLI, the Dagster definitions and (later) the HTTP API."""
