"""Dagster definitions: thin wrappers that call the service layer (see ARCHITECTURE.md)."""
