"""The engine interface: how a chunk of runs is trained, whatever the objective.

An :class:`Engine` is four jitted functions over a chunk's state ``S`` (a pytree with a leading run axis):

    init(runs) -> S              runs: (n,) uint32 global run indices of the cell
    advance(S, until) -> S       train every run until its own step count reaches ``until`` (or it stops)
    finish(S) -> R               the chunk's results, a pytree with a leading run axis
    n_running(S) -> ()           how many runs still have work

Every engine obeys the segment law ``advance(advance(s, a), b) == advance(s, b)`` bit for bit (its loop body
does not depend on the bound), so the one chunk driver (:func:`drive`, used by :func:`train_chunk` and by the
compacting engine's :func:`jaxsym.engine.compact.descend`) can stop a chunk between segments, checkpoint it with
orbax and resume it, with results identical to one uninterrupted call. A run's randomness comes from its
global index only, so the results of a run do not depend on the chunk or the slot it runs in.

Implementations: the closed-form gradient-descent engine (:func:`jaxsym.engine.descent.make_batch_engine`) and the
sampled-SGD engine (:func:`jaxsym.engine.sgd.make_engine`).

**Stopping.** A chunk driver running under :func:`stop_on` checks its event between segments; once it is set,
the driver saves its in-flight state (when it has a checkpoint directory) and raises :class:`StoppedError`, so a
sweep that is interrupted while several chunks run at once loses none of their work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import jax
import numpy as np

from jaxsym.io import checkpoint
from jaxsym.numerics.parallel import round_up, shard_runs

log = logging.getLogger("jaxsym")

FIRST_SEGMENT = 128  # steps of a chunk's first segment when the config sets no segment_steps
SEGMENT_S = 10.0  # seconds a default segment aims at (at most the checkpoint interval): a stop waits at most this

S = TypeVar("S")
R = TypeVar("R")


class Engine(NamedTuple, Generic[S, R]):
    """A chunk engine over state ``S`` with results ``R`` (see the module docstring)."""

    init: Callable[[jax.Array], S]
    advance: Callable[[S, jax.Array], S]
    finish: Callable[[S], R]
    n_running: Callable[[S], jax.Array]


class StoppedError(Exception):
    """A chunk driver stopped because its :func:`stop_on` event was set (its in-flight state is saved)."""


_STOP: ContextVar[threading.Event | None] = ContextVar("jaxsym_stop", default=None)


@contextlib.contextmanager
def stop_on(event: threading.Event) -> Iterator[None]:
    """Chunk drivers called in this context (this thread) stop at their next segment once ``event`` is set."""
    token = _STOP.set(event)
    try:
        yield
    finally:
        _STOP.reset(token)


def stop_requested() -> bool:
    """Whether the current context's :func:`stop_on` event is set."""
    event = _STOP.get()
    return event is not None and event.is_set()


def padded(runs: np.ndarray, size: int) -> np.ndarray:
    """Pad to a multiple of ``size`` by repeating the last entry (results of padding are dropped)."""
    n = len(runs)
    return np.concatenate([runs, np.full(round_up(n, size) - n, runs[-1], dtype=runs.dtype)])


def drive(engine: Engine[S, R], state: S, *, until: Callable[[S], int], step_of: Callable[[S], int],
          inflight: Path | None, checkpoint_interval_s: float, label: str,
          after_segment: Callable[[S], S] | None = None, saved: Callable[[S], S] | None = None,
          next_phase: Callable[[S], S | None] | None = None) -> S:
    """The one save-or-stop driver of a chunk: advance ``state`` in segments until no run has work, between two
    segments save it to ``inflight`` every ``checkpoint_interval_s`` seconds (and before stopping) and stop under
    a set :func:`stop_on` event (:class:`StoppedError`); then, with ``next_phase``, start the next phase and go
    on, until ``next_phase`` returns None.

    Hooks: ``until(state)`` the bound of the next segment; ``step_of(state)`` the step saved with a checkpoint;
    ``after_segment(state)`` runs after each segment (the compacting engine resizes its slots there);
    ``saved(state)`` the pytree written to a checkpoint (default the state); ``next_phase(state)`` the state of
    the next phase, or None when the chunk is done (the compacting engine's hand-off between phases). A chunk
    whose runs have all stopped finishes its phase instead of stopping."""
    last_save = time.monotonic()
    while True:
        while int(engine.n_running(state)) > 0:
            state = engine.advance(state, np.int32(until(state)))
            if after_segment is not None:
                state = after_segment(state)
            running = int(engine.n_running(state)) > 0
            stop = stop_requested() and running
            if inflight is not None and (stop or time.monotonic() - last_save > checkpoint_interval_s) and running:
                checkpoint.save(inflight, step_of(state), state if saved is None else saved(state))
                last_save = time.monotonic()
            if stop:
                raise StoppedError(label)
        nxt = None if next_phase is None else next_phase(state)
        if nxt is None:
            return state
        state = nxt


def train_chunk(engine: Engine[S, R], runs: np.ndarray, *, steps: int, segment_steps: int | None = None,
                inflight: Path | None = None, checkpoint_interval_s: float = 60.0, label: str = "") -> R:
    """Train a (padded) chunk of run indices and return its results as host arrays.

    The chunk is advanced in segments and its state saved to ``inflight`` every ``checkpoint_interval_s``
    seconds between them (:func:`drive`); a usable checkpoint there is resumed from. With ``segment_steps`` every
    segment has that many steps; without it, the first has :data:`FIRST_SEGMENT` and each next one is sized from
    the last one's wall time to take about ``min(SEGMENT_S, checkpoint_interval_s)`` seconds, so a chunk longer
    than that is never one uninterruptible call. The segment law ``advance(advance(s, a), b) == advance(s, b)``
    makes the result the same for any segments (bit for bit; tested), so timing-dependent sizes change nothing
    but when a stop is seen. Under a set :func:`stop_on` event it saves and raises :class:`StoppedError` after
    the current segment.
    """
    state = engine.init(shard_runs(runs.astype(np.uint32)))
    bound = [0]  # the last segment's bound: the step a checkpoint records
    if inflight is not None and (got := checkpoint.restore(inflight, state)) is not None:
        bound[0], host_state = got
        state = jax.tree.map(shard_runs, host_state)
        log.info("%s resumed in-flight chunk at step %d from %s", label, bound[0], inflight)
    target_s = min(SEGMENT_S, checkpoint_interval_s)
    segment = [segment_steps or min(steps, FIRST_SEGMENT)]
    started: list[float] = []  # when the previous segment started (none before the first)

    def until(_: S) -> int:
        now = time.monotonic()
        if segment_steps is None and started:  # size the next segment from the last one's wall time
            rate = segment[0] / max(now - started[0], 1e-6)
            segment[0] = int(min(max(rate * target_s, 1), steps))
        started[:] = [now]
        bound[0] += segment[0]
        return bound[0]

    state = drive(engine, state, until=until, step_of=lambda _: bound[0], inflight=inflight,
                  checkpoint_interval_s=checkpoint_interval_s, label=label)
    return jax.tree.map(np.asarray, jax.device_get(engine.finish(state)))
