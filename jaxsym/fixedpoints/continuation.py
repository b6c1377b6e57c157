"""One continuation: a critical point of a restricted problem followed along a real parameter (k, d or n).

The restricted loss (:mod:`jaxsym.fixedpoints.space`) is defined for real block sizes and a real number of extra
neurons, so a critical point is a curve ``t ↦ z(t)`` through them. :func:`trace` follows it by predictor and
corrector: the predictor extrapolates z linearly in t from the last two points (or repeats the last one), the
corrector is :func:`jaxsym.fixedpoints.solve.solve`; a failed correction halves the step, each success doubles
it back up to the nominal one (times ``growth`` for long ranges). The curve ends in a *fold* where corrections
fail for steps below ``min_step`` (a branch meets another and both disappear); it *stops* where they keep
failing and succeeding at small steps (a family crawling along a region Newton cannot hold, seen on saddle
families: 13,609 points for one) after ``max_failures`` failures, and says where (:class:`Trace`).

Families in k (:mod:`jaxsym.fixedpoints.families`: the first block grows) and students followed in d or n
(:mod:`jaxsym.fixedpoints.wide`) are uses of it, each with its own ``solve_at`` and ``point``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from jaxsym.fixedpoints.solve import Solution

P = TypeVar("P")


class Trace(NamedTuple, Generic[P]):
    """A traced piece of a curve: its points (``point(t, solution)`` for each t reached, in the order traced);
    ``end``, the t where it ends in a fold (to ``min_step``), else None; ``stopped``, the t where tracing gave up
    after ``max_failures`` failed corrections without reaching a fold or ``t_end`` (else None)."""

    points: list[P]
    end: float | None
    stopped: float | None


def trace(solve_at: Callable[[float, np.ndarray], Solution], t0: float, z0: np.ndarray, t_end: float,
          point: Callable[[float, Solution], P], *, step: float = 0.5, growth: float = 1.0, min_step: float = 1e-8,
          max_failures: int = 400, predict: bool = True) -> Trace[P]:
    """Follow the critical point near ``z0`` at ``t0`` to ``t_end`` (either direction) (module docstring).

    ``solve_at(t, guess)`` corrects a guess at t; ``point(t, solution)`` makes the curve's point. With
    ``predict`` the guess is the linear extrapolation of the last two points (where it fails, the last point
    itself is tried too); without, the last point. Raises ValueError when there is no critical point at
    ``t0`` near ``z0``."""
    sign = 1.0 if t_end >= t0 else -1.0
    sol = solve_at(t0, z0)
    if not sol.converged:
        raise ValueError(f"no critical point at {t0} near the start (‖∇F‖ = {sol.grad_norm:.1e})")
    z = sol.z
    pts = [point(t0, sol)]
    prev: tuple[float, np.ndarray] | None = None
    t, h, nominal, failures = t0, step, step, 0
    while sign * (t_end - t) > 0:
        h_try = min(h, abs(t_end - t))
        nt = t + sign * h_try
        guess = z if prev is None or not predict else z + (z - prev[1]) * (nt - t) / (t - prev[0])
        new = solve_at(nt, guess)
        if not new.converged and prev is not None and predict:  # the predictor can overshoot near a fold
            new = solve_at(nt, z)
        if new.converged:
            prev, z, t = (t, z), new.z, nt
            pts.append(point(t, new))
            nominal *= growth
            h = min(nominal, 2 * h_try)  # after a halving, the step grows back
            continue
        if h_try <= min_step:
            return Trace(pts, t + sign * h_try / 2, None)
        failures += 1
        if failures >= max_failures:
            return Trace(pts, None, t)
        h = h_try / 2
    return Trace(pts, None, None)
