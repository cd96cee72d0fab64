"""Progress bars and human messages, always on stderr so stdout stays clean for --json.

rich is imported only when a bar or a table is drawn: `infer` starts faster without it.
"""

from __future__ import annotations

import functools
import sys


def say(message: str) -> None:
    """One human line on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@functools.cache
def console():
    from rich.console import Console

    # a pipe or a file gets tables as wide as they need, not 80 columns
    return Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def bar(*, quiet: bool = False):
    """A task progress bar (epochs, calibration, benchmark rounds); silent when stderr is no terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console(),
        disable=quiet or not sys.stderr.isatty(),
    )


def download_bar(*, quiet: bool = False):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console(),
        disable=quiet or not sys.stderr.isatty(),
    )
