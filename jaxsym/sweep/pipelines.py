"""Which pipeline computes a cell: chosen once per cell, in one place.

A cell is *empirical* when its sweep samples an objective (``[sampled]``) that has no closed form
(:func:`jaxsym.engine.sgd.has_closed_form`); every other cell — full-batch descent on a closed form, or SGD on a
law whose population loss is the Gaussian closed form — goes through the exact float64 certificate. The cell's
plan (:class:`jaxsym.sweep.plan.CellPlan`) says which.
"""

from __future__ import annotations

from typing import Any

from jaxsym.sweep import closed_form
from jaxsym.sweep import sampled as empirical
from jaxsym.sweep.pipeline import CellPipeline
from jaxsym.sweep.plan import CellPlan


def choose(plan: CellPlan) -> CellPipeline[Any]:
    """The :class:`~jaxsym.sweep.pipeline.CellPipeline` of a planned cell (:func:`jaxsym.sweep.plan.plan_cell`
    decided which)."""
    return empirical.PIPELINE if plan.pipeline == "empirical" else closed_form.PIPELINE
