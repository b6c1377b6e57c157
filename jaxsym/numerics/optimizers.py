"""The optax optimizers a sweep can name: one registry, read by the config (names) and the engines (factories).

Each entry is an :class:`Optimizer` record: ``factory(learning_rate, h) -> optax.GradientTransformation``, and
whether the hand-off test's contraction argument holds for it (and why not, where it does not); the learning rate may
be a number or an ``optax.Schedule``, ``h`` holds the other hyperparameters (:class:`Hyper`): ``momentum`` is
used by ``momentum`` and ``nesterov``, ``b1``/``b2`` by ``adam`` and ``adamw``, ``weight_decay`` by ``adamw``
(defaults: optax's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import optax


class Hyper(NamedTuple):
    """Optimizer hyperparameters besides the learning rate (defaults: optax's)."""

    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 1e-4


Factory = Callable[[float | optax.Schedule, Hyper], optax.GradientTransformation]


class Optimizer(NamedTuple):
    """An optimizer a sweep can name.

    Attributes:
      name: the name sweeps use (``[train] optimizer``).
      factory: ``(learning_rate, Hyper) -> optax.GradientTransformation``.
      contraction: where the hand-off test applies (:mod:`jaxsym.certify.basins`), the argument it rests on;
        where it does not, None, and ``why_not`` says why: such runs only compact, and are certified by the
        float64 polish of where they stop.
      why_not: the reason there is no hand-off.
    """

    name: str
    factory: Factory
    contraction: str | None = None
    why_not: str = ""


_MOMENTUM = ("the iterate is not the run's whole state: the velocity carries it on, and the heavy-ball map, though "
             "its frozen-Hessian spectral radius is below 1 for spectra in (0, 2(1+β)/η), is not normal, so the "
             "iterates can leave the ball before they contract; the test does not bound that transient")
_ADAPTIVE = ("the step is not η∇F but a per-coordinate rescaling of it that changes along the trajectory (moment "
             "estimates), so no fixed step size bounds the spectrum the iteration needs")

OPTIMIZERS: dict[str, Optimizer] = {o.name: o for o in (
    Optimizer("sgd", lambda lr, h: optax.sgd(lr),
              contraction="gradient descent with a fixed step η contracts onto W* on a ball where every Hessian "
                          "has its spectrum in (0, 2/η)"),
    Optimizer("momentum", lambda lr, h: optax.sgd(lr, momentum=h.momentum), why_not=_MOMENTUM),
    Optimizer("nesterov", lambda lr, h: optax.sgd(lr, momentum=h.momentum, nesterov=True), why_not=_MOMENTUM),
    Optimizer("adam", lambda lr, h: optax.adam(lr, b1=h.b1, b2=h.b2), why_not=_ADAPTIVE),
    Optimizer("adamw", lambda lr, h: optax.adamw(lr, b1=h.b1, b2=h.b2, weight_decay=h.weight_decay),
              why_not=_ADAPTIVE + "; weight decay moves the fixed point off the loss's critical point"),
    Optimizer("rmsprop", lambda lr, h: optax.rmsprop(lr), why_not=_ADAPTIVE),
    Optimizer("adagrad", lambda lr, h: optax.adagrad(lr), why_not=_ADAPTIVE),
)}

NAMES = tuple(OPTIMIZERS)


DEFAULT_HYPER = Hyper()


def make(name: str, learning_rate: float | optax.Schedule, hyper: Hyper = DEFAULT_HYPER
         ) -> optax.GradientTransformation:
    """The optax transformation ``name`` at ``learning_rate`` (a number or a schedule)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; one of {NAMES}")
    return OPTIMIZERS[name].factory(learning_rate, hyper)
