"""Experiment trackers: ``on_chunk`` callbacks for Weights & Biases and TensorBoard.

``jaxsym.run(cfg, on_chunk=fn)`` calls ``fn(cell_label, rows)`` after each chunk is written (``rows``: the
chunk's rows of ``runs.parquet``, orbit ids local to the chunk). The callbacks here turn that into scalars per
cell: the runs finished so far, the share of each status among them, and the lowest and median loss of the
certified critical points. Neither tracker is a dependency: each callback takes the object it writes to (a
``wandb`` run, anything with ``log(dict, step=...)``; a TensorBoard ``SummaryWriter`` of ``torch.utils.tensorboard``
or ``tensorboardX``, anything with ``add_scalar(tag, value, global_step)``)::

    import wandb, jaxsym
    from jaxsym.report.trackers import wandb_callback
    run = wandb.init(project="landscapes", mode="offline")
    jaxsym.run("sweeps/demo.toml", on_chunk=wandb_callback(run))

    from torch.utils.tensorboard import SummaryWriter
    from jaxsym.report.trackers import tensorboard_callback
    jaxsym.run("sweeps/demo.toml", on_chunk=tensorboard_callback(SummaryWriter("runs/demo")))

Chunks finish in any order (several run at once): the step of a cell's scalars is its runs finished so far, so
each curve is monotone in that step whatever the order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from jaxsym.certify.exact import STATUSES
from jaxsym.io import columns as col
from jaxsym.report.coverage import CRITICAL


class Logger(Protocol):
    """What :func:`wandb_callback` writes to (a ``wandb`` run)."""

    def log(self, data: dict[str, Any], step: int | None = ...) -> Any: ...


class ScalarWriter(Protocol):
    """What :func:`tensorboard_callback` writes to (a TensorBoard ``SummaryWriter``)."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = ...) -> Any: ...


def chunk_scalars() -> Callable[[str, pd.DataFrame], tuple[int, dict[str, float]]]:
    """A function of ``(cell_label, rows)`` returning ``(step, scalars)`` for that cell after the chunk: the
    runs finished so far (the step) and, over all of them, ``share/<status>`` for every status (a sampled
    sweep's chunks say ``stationary`` for a converged run: its orbit's status is known at the merge), and the
    lowest and median ``loss`` of the runs that ended at a certified critical point (absent while none has)."""
    statuses: dict[str, Counter[str]] = {}
    losses: dict[str, list[float]] = {}

    def scalars(cell: str, rows: pd.DataFrame) -> tuple[int, dict[str, float]]:
        seen = statuses.setdefault(cell, Counter())
        seen.update(str(s) for s in rows[col.STATUS])
        crit = rows[rows[col.STATUS].isin(CRITICAL)][col.LOSS].to_numpy(dtype=float)
        losses.setdefault(cell, []).extend(crit[np.isfinite(crit)].tolist())
        n = sum(seen.values())
        out = {f"share/{s}": seen[s] / n for s in (*STATUSES, *sorted(set(seen) - set(STATUSES)))}
        if losses[cell]:
            out["loss/lowest"] = float(np.min(losses[cell]))
            out["loss/median"] = float(np.median(losses[cell]))
        return n, out

    return scalars


def wandb_callback(run: Logger) -> Callable[[str, pd.DataFrame], None]:
    """``on_chunk`` for Weights & Biases: ``run.log({"<cell>/share/<status>": …, "<cell>/runs": n})``, one call
    per chunk (:func:`chunk_scalars`). W&B's own step counts calls; the cell's runs are the ``<cell>/runs``
    value, to plot against."""
    scalars = chunk_scalars()

    def on_chunk(cell: str, rows: pd.DataFrame) -> None:
        n, values = scalars(cell, rows)
        run.log({f"{cell}/runs": n, **{f"{cell}/{k}": v for k, v in values.items()}})

    return on_chunk


def tensorboard_callback(writer: ScalarWriter) -> Callable[[str, pd.DataFrame], None]:
    """``on_chunk`` for TensorBoard: ``writer.add_scalar("<cell>/share/<status>", value, runs)`` for every scalar
    of :func:`chunk_scalars`, the step being the cell's runs finished so far."""
    scalars = chunk_scalars()

    def on_chunk(cell: str, rows: pd.DataFrame) -> None:
        n, values = scalars(cell, rows)
        for tag, value in values.items():
            writer.add_scalar(f"{cell}/{tag}", value, n)

    return on_chunk
