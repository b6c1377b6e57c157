"""The engine interface: how a chunk of runs is trained, whatever the objective.

An :class:`Engine` is four jitted functions over a chunk's state ``S`` (a pytree with a leading run axis):

    init(runs) -> S              runs: (n,) uint32 global run indices of the cell
    advance(S, until) -> S       train every run until its own step count reaches ``until`` (or it stops)
    finish(S) -> R               the chunk's results, a pytree with a leading run axis
    n_running(S) -> ()           how many runs still have work

Every engine obeys the segment law ``advance(advance(s, a), b) == advance(s, b)`` bit for bit (its loop body
does not depend on the bound), so :func:`train_chunk` can stop a chunk between segments, checkpoint it with
orbax and resume it, with results identical to one uninterrupted call. A run's randomness comes from its
global index only, so the results of a run do not depend on the chunk or the slot it runs in.

Implementations: the closed-form gradient-descent engine (:func:`jaxsym.train.make_batch_engine`) and the
sampled-SGD engine (:func:`jaxsym.sampled.make_engine`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import jax
import numpy as np

from jaxsym import checkpoint
from jaxsym.parallel import round_up, shard_runs

log = logging.getLogger("jaxsym")

S = TypeVar("S")
R = TypeVar("R")


class Engine(NamedTuple, Generic[S, R]):
    """A chunk engine over state ``S`` with results ``R`` (see the module docstring)."""

    init: Callable[[jax.Array], S]
    advance: Callable[[S, jax.Array], S]
    finish: Callable[[S], R]
    n_running: Callable[[S], jax.Array]


def padded(runs: np.ndarray, size: int) -> np.ndarray:
    """Pad to a multiple of ``size`` by repeating the last entry (results of padding are dropped)."""
    n = len(runs)
    return np.concatenate([runs, np.full(round_up(n, size) - n, runs[-1], dtype=runs.dtype)])


def train_chunk(engine: Engine[S, R], runs: np.ndarray, *, steps: int, segment_steps: int | None = None,
                inflight: Path | None = None, checkpoint_interval_s: float = 60.0, label: str = "") -> R:
    """Train a (padded) chunk of run indices and return its results as host arrays.

    By default the whole budget of ``steps`` is one call of ``advance``; with ``segment_steps`` the chunk is
    advanced in segments and its state saved to ``inflight`` every ``checkpoint_interval_s`` seconds between
    them; a usable checkpoint there is resumed from (the segment law makes the result identical).
    """
    state = engine.init(shard_runs(runs.astype(np.uint32)))
    until = 0
    if inflight is not None and (got := checkpoint.restore(inflight, state)) is not None:
        until, host_state = got
        state = jax.tree.map(shard_runs, host_state)
        log.info("%s resumed in-flight chunk at step %d from %s", label, until, inflight)
    last_save = time.monotonic()
    segment = segment_steps or steps
    while int(engine.n_running(state)) > 0:
        until += segment
        state = engine.advance(state, np.int32(until))
        if inflight is not None and time.monotonic() - last_save > checkpoint_interval_s \
                and int(engine.n_running(state)) > 0:
            checkpoint.save(inflight, until, state)
            last_save = time.monotonic()
    return jax.tree.map(np.asarray, jax.device_get(engine.finish(state)))
