"""What a running sweep shows and how it stops: progress on the host, and Ctrl-C or SIGTERM as an orderly stop.

**Progress.** In a terminal, a rich bar per cell and one for the sweep (runs/s, time left), on stderr so that
stdout keeps only the tables. In a notebook without ``ipywidgets`` (where rich's live display would print
"install ipywidgets" instead), one plain line, rewritten in place at most every :data:`PLAIN_EVERY_S` seconds.
Progress is reported from the host loop over chunks, never from inside a jitted program.

**Stopping.** Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` in the main thread; :func:`stop_signals` makes
SIGTERM — what SLURM sends before it preempts or times out a job, and Colab at shutdown — raise
:class:`Terminated`, a ``KeyboardInterrupt``, so both take the same path: the driver asks every chunk in flight
to save its state at its next segment and stop (:func:`jaxsym.engine.interface.stop_on`), and says in one line what is
saved and how to resume. Exit codes of ``jaxsym sweep`` (the shell's convention, 128 + the signal's number):
:data:`EXIT_SIGINT` after Ctrl-C, :data:`EXIT_SIGTERM` after SIGTERM — a scheduler can requeue on the latter.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

PLAIN_EVERY_S = 2.0
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM received: stop like Ctrl-C (the chunks in flight save their state)."""


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (the previous handler is put back
    after). Elsewhere than the main thread, where Python cannot install handlers, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def exit_code(stop: BaseException) -> int:
    """``jaxsym sweep``'s exit code after an orderly stop (module docstring)."""
    return EXIT_SIGTERM if isinstance(stop, Terminated) else EXIT_SIGINT


def signal_name(stop: BaseException) -> str:
    return "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"


class Bar(Protocol):
    """What the driver calls: a task per cell and one for the sweep."""

    def add_task(self, description: str, total: float | None = ..., completed: float = ...) -> Any: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...


class PlainLine:
    """A one-line progress display for notebooks without widgets: ``all cells: 1,024/5,000 runs (20%), 512
    runs/s, about 8 s left``, rewritten in place (``\\r``), at most every :data:`PLAIN_EVERY_S` seconds."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.tasks: list[list[Any]] = []  # [description, total, completed, completed at start]
        self.t0 = time.monotonic()
        self.last = 0.0

    def __enter__(self) -> PlainLine:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:
            self._show(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def add_task(self, description: str, total: float | None = None, completed: float = 0) -> int:
        self.tasks.append([description, total or 0, completed, completed])
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.tasks[task_id][2] += advance
        self._show()

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PLAIN_EVERY_S:
            return
        self.last = now
        name, total, done, start = self.tasks[0]
        rate = (done - start) / max(now - self.t0, 1e-9)
        left = f", about {(total - done) / rate:,.0f} s left" if rate > 0 and done < total else ""
        self.stream.write(f"\r{name}: {done:,.0f}/{total:,.0f} runs ({100 * done / max(total, 1):.0f}%), "
                          f"{rate:,.0f} runs/s{left}   ")
        self.stream.flush()


def _in_notebook_without_widgets() -> bool:
    from rich.console import Console

    return Console().is_jupyter and importlib.util.find_spec("ipywidgets") is None


@contextlib.contextmanager
def progress(enabled: bool) -> Iterator[Bar | None]:
    """The progress display of a sweep (module docstring), or None when disabled."""
    if not enabled:
        yield None
        return
    if _in_notebook_without_widgets():
        with PlainLine() as line:
            yield line
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RunsPerSecond(TextColumn):
        def render(self, task: Any) -> Any:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} runs/s" if speed else "… runs/s")

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                  RunsPerSecond(""), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True)) as bar:
        yield bar
