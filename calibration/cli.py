"""Commands of the calibration component, mounted on the `emaudit` CLI."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to the top-level app."""
