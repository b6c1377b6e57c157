"""The optax optimizers a sweep can name: one registry, read by the config (names) and the engines (factories).

Each entry maps a name to ``factory(learning_rate, h) -> optax.GradientTransformation``; the learning rate may
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

OPTIMIZERS: dict[str, Factory] = {
    "sgd": lambda lr, h: optax.sgd(lr),
    "momentum": lambda lr, h: optax.sgd(lr, momentum=h.momentum),
    "nesterov": lambda lr, h: optax.sgd(lr, momentum=h.momentum, nesterov=True),
    "adam": lambda lr, h: optax.adam(lr, b1=h.b1, b2=h.b2),
    "adamw": lambda lr, h: optax.adamw(lr, b1=h.b1, b2=h.b2, weight_decay=h.weight_decay),
    "rmsprop": lambda lr, h: optax.rmsprop(lr),
    "adagrad": lambda lr, h: optax.adagrad(lr),
}

NAMES = tuple(OPTIMIZERS)


DEFAULT_HYPER = Hyper()


def make(name: str, learning_rate: float | optax.Schedule, hyper: Hyper = DEFAULT_HYPER
         ) -> optax.GradientTransformation:
    """The optax transformation ``name`` at ``learning_rate`` (a number or a schedule)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; one of {NAMES}")
    return OPTIMIZERS[name](learning_rate, hyper)
