"""Loads the named SQL statements a backend keeps as files, one per transition step."""

from __future__ import annotations

from importlib import resources


def load_queries(package: str) -> dict[str, str]:
    """Every ``queries/<name>.sql`` of ``package``, by name."""
    folder = resources.files(package).joinpath("queries")
    return {
        entry.name.removesuffix(".sql"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }


def load_migrations(package: str) -> list[tuple[int, str]]:
    """``migrations/NNNN_name.sql`` of ``package`` as (version, script), in order."""
    folder = resources.files(package).joinpath("migrations")
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
