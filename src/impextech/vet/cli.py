"""`impextech vet PATH`: inspect an untrusted repository for malware without running any of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from impextech.vet.engine import scan_path
from impextech.vet.items import InputError
from impextech.vet.model import Report, Severity
from impextech.vet.report import dumps, render_text, to_json, to_sarif
from impextech.vet.rules import RuleError, default_ruleset

FORMATS = ("text", "json", "sarif")
FAIL_ON = ("low", "medium", "high", "critical", "never")
PROGRESS_MIN_FILES = 500

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"vet: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _count_files(path: Path, cap: int) -> int | None:
    if not path.is_dir():
        return None
    n = 0
    for _, _, files in os.walk(path):
        n += len(files)
        if n > cap:
            break
    return n


def _scan_with_progress(path: Path, show: bool) -> Report:
    total = _count_files(path, 1_000_000) if show else None
    if not show or (total is not None and total < PROGRESS_MIN_FILES):
        return scan_path(path)
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("vet"),
        BarColumn(),
        TextColumn("{task.completed} files"),
        TextColumn("{task.fields[mb]:.1f} MB"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scan", total=total, mb=0.0)
        seen = [0]

        def tick(size: int) -> None:
            seen[0] += size
            progress.update(task, advance=1, mb=seen[0] / 1e6)

        return scan_path(path, on_file=tick)


def exit_code(report: Report, fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_CLEAN
    floor = Severity.parse(fail_on)
    return EXIT_FINDINGS if any(f.severity >= floor for f in report.findings) else EXIT_CLEAN


def register(app: typer.Typer) -> None:
    """Add the `vet` command to the platform's command line."""

    @app.command("vet")
    def vet(
        path: Annotated[
            str | None,
            typer.Argument(help="Directory, .zip, .tar/.tar.gz/.tgz, or git repository."),
        ] = None,
        output_format: Annotated[
            str, typer.Option("--format", "-f", help="text, json or sarif.")
        ] = "text",
        fail_on: Annotated[
            str,
            typer.Option(
                help="Exit 1 when a finding is at least: low, medium, high, critical, never."
            ),
        ] = "high",
        output: Annotated[
            str | None, typer.Option("--output", "-o", help="Write the report to this file.")
        ] = None,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal.")
        ] = True,
    ) -> None:
        """Inspect an untrusted repository for malware without running any of it.

        Exit status: 0 nothing at or above --fail-on, 1 findings at or above it,
        2 usage or read error.
        """
        if path is None:
            raise _fail("missing PATH (a directory, .zip, .tar, .tar.gz/.tgz or git repository)")
        fmt = output_format.lower()
        if fmt not in FORMATS:
            raise _fail(f"unknown format {output_format!r} (expected one of: {', '.join(FORMATS)})")
        fail = fail_on.lower()
        if fail not in FAIL_ON:
            raise _fail(f"unknown --fail-on {fail_on!r} (expected one of: {', '.join(FAIL_ON)})")
        try:
            rules = default_ruleset()
            report = _scan_with_progress(Path(path), progress and sys.stderr.isatty())
        except InputError as exc:
            raise _fail(str(exc)) from None
        except RuleError as exc:
            raise _fail(f"rule files are broken: {exc}") from None
        except OSError as exc:
            raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
        if fmt == "text":
            if output:
                with open(output, "w", encoding="utf-8") as fh:
                    render_text(report, Console(file=fh, width=120, no_color=True))
            else:
                render_text(report, Console())
        else:
            doc = to_json(report) if fmt == "json" else to_sarif(report, rules)
            text = dumps(doc)
            if output:
                Path(output).write_text(text + "\n", encoding="utf-8")
            else:
                typer.echo(text)
        raise typer.Exit(exit_code(report, fail))
