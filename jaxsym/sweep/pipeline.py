"""The cell pipeline: what the sweep driver asks of a grid cell, and nothing more.

A :class:`CellPipeline` is three pure-ish functions, chosen once per cell (:func:`jaxsym.sweep.pipelines.choose`):

    build(cfg, plan) -> P                                  compile the cell's programs (once per cell)
    run_chunk(cfg, P, start, stop, inflight) -> Chunk      train, certify and cluster runs start … stop−1
    merge(cfg, plan, files) -> CellMerge                   a cell's chunks → its distinct points

``plan`` is the cell's :class:`~jaxsym.sweep.plan.CellPlan`: every decision about it (pipeline, engine, target,
chunk size, backend, hand-off), made once.

``P`` is the implementation's own programs type; the driver only passes it from ``build`` to ``run_chunk``.
Implementations: :mod:`jaxsym.sweep.closed_form` (exact float64 certificate) and :mod:`jaxsym.sweep.sampled`
(held-out samples, error bars). Neither imports the other nor the driver (:mod:`jaxsym.sweep.driver`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import pandas as pd

from jaxsym.config import SweepConfig
from jaxsym.sweep.plan import CellPlan

P = TypeVar("P")


class Chunk(NamedTuple):
    """A finished chunk: its runs rows (``orbit`` chunk-local, −1 for runs that are no critical point) and its
    representatives (one row per chunk-local orbit: ``local_orbit, run, count, W`` and the certificate)."""

    rows: pd.DataFrame
    reps: pd.DataFrame
    stats: dict[str, Any] | None = None  # diagnostics of the chunk's engine (logged by the driver)


class CellMerge(NamedTuple):
    """A cell's distinct points and how its chunks' rows map onto them.

    Attributes:
      minima: one ``minima.parquet`` row per distinct point, ordered by (status, loss, first run).
      mapping: ``(chunk position, chunk-local orbit) → orbit id``.
      status_from_orbit: runs take their orbit's status (empirical certificates certify orbits, not runs).
      from_orbit: columns every run of an orbit takes from its ``minima.parquet`` row (the exact certificate:
        a run ends at a point of its orbit, whose loss and spectrum are group-invariant; the orbit's row is its
        first run's, whatever the chunking).
    """

    minima: list[dict[str, Any]]
    mapping: dict[tuple[int, int], int]
    status_from_orbit: bool = False
    from_orbit: tuple[str, ...] = ()


class CellPipeline(NamedTuple, Generic[P]):
    """How one kind of cell is computed (module docstring)."""

    name: str
    build: Callable[[SweepConfig, CellPlan], P]
    run_chunk: Callable[[SweepConfig, P, int, int, Path | None], Chunk]
    merge: Callable[[SweepConfig, CellPlan, list[tuple[Path, Path]]], CellMerge]
