"""Progress bars and human messages, always on stderr so stdout stays clean for --json."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    """One human line on stderr."""
    console.print(message, markup=False, soft_wrap=True)


def bar(*, quiet: bool = False) -> Progress:
    """A task progress bar (epochs, calibration, benchmark rounds)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=quiet or not sys.stderr.isatty(),
        transient=False,
    )


def download_bar(*, quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not sys.stderr.isatty(),
    )
