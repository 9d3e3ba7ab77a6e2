"""Alembic migration environment of the store (a package so the scripts ship with an installed wheel)."""
