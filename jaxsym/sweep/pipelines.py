"""Which pipeline computes a cell: chosen once per cell, in one place.

A cell is *empirical* when its sweep samples an objective (``[sampled]``) that has no closed form
(:func:`jaxsym.engine.sgd.has_closed_form`); every other cell — full-batch descent on a closed form, or SGD on a
law whose population loss is the Gaussian closed form — goes through the exact float64 certificate.
"""

from __future__ import annotations

from typing import Any

from jaxsym.config import Cell, SweepConfig
from jaxsym.engine.sgd import has_closed_form
from jaxsym.sweep import closed_form
from jaxsym.sweep import sampled as empirical
from jaxsym.sweep.pipeline import CellPipeline


def is_empirical(cfg: SweepConfig, cell: Cell) -> bool:
    return cfg.sampled is not None and not has_closed_form(cfg.sampled, cell.train.activation)


def choose(cfg: SweepConfig, cell: Cell) -> CellPipeline[Any]:
    """The :class:`~jaxsym.sweep.pipeline.CellPipeline` of a cell."""
    return empirical.PIPELINE if is_empirical(cfg, cell) else closed_form.PIPELINE
