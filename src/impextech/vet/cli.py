"""`impextech vet`: placeholder replaced by the vet capability."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `vet` command to the platform's command line."""

    @app.command("vet")
    def vet(path: str) -> None:
        """Inspect an untrusted repository for malware without running any of it."""
        raise typer.Exit(2)
