"""The optax optimizers a sweep can name: one registry, read by the config (names) and the engines (factories).

Each entry maps a name to ``factory(learning_rate, momentum) -> optax.GradientTransformation``; the learning
rate may be a number or an ``optax.Schedule``. ``momentum`` is used by ``momentum`` and ``nesterov`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import optax

Factory = Callable[[float | optax.Schedule, float], optax.GradientTransformation]

OPTIMIZERS: dict[str, Factory] = {
    "sgd": lambda lr, momentum: optax.sgd(lr),
    "momentum": lambda lr, momentum: optax.sgd(lr, momentum=momentum),
    "nesterov": lambda lr, momentum: optax.sgd(lr, momentum=momentum, nesterov=True),
    "adam": lambda lr, momentum: optax.adam(lr),
    "adamw": lambda lr, momentum: optax.adamw(lr),
    "rmsprop": lambda lr, momentum: optax.rmsprop(lr),
    "adagrad": lambda lr, momentum: optax.adagrad(lr),
}

NAMES = tuple(OPTIMIZERS)


def make(name: str, learning_rate: float | optax.Schedule, momentum: float = 0.9) -> optax.GradientTransformation:
    """The optax transformation ``name`` at ``learning_rate`` (a number or a schedule)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; one of {NAMES}")
    return OPTIMIZERS[name](learning_rate, momentum)
