"""The student seam of sampled sweeps: what the empirical pipeline asks of a network, and its two instances.

A :class:`Student` is a network ``f_θ`` whose parameters ``θ`` are a pytree, seen by the pipeline through

    init(key, scale)        θ for one run (traced: vmapped over a chunk's runs)
    apply(θ, X)             f_θ(X), (n,) for inputs X (n, d)
    flatten / unflatten     θ ↔ a float64 vector (P,), the ``W`` column of the tables
    layered(θ)              θ as a layered weighted graph ``([W_1 … W_L], a)`` for the symmetry core
                            (:mod:`jaxsym.symmetry.group`); ``constant`` says whether it is in homogeneous
                            coordinates (biases as edges of a constant unit)
    canonical(θ)            the point of θ's rescaling orbit with unit incoming rows (positively homogeneous σ)
    tangents(θ)             the rescaling orbits' tangents (n, P), projected out of the Hessian

:class:`BuiltIn` is jaxsym's own network (:mod:`jaxsym.landscape.networks`); :mod:`jaxsym.landscape.flax_students`
reads the same from a flax module, its symmetry found from the module. A student named by a config
(``sampled.student = "package.module:factory"``) is imported by :func:`load_factory`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.landscape import networks

Array = jax.Array
Layered = tuple[list[np.ndarray], np.ndarray | None]


class Student(Protocol):
    """A student network of a sampled sweep (module docstring)."""

    hidden_layers: int
    train_output: bool
    constant: bool

    def init(self, key: Array, scale: float) -> Any: ...

    def apply(self, params: Any, X: Array) -> Array: ...

    def flatten(self, params: Any) -> np.ndarray: ...

    def unflatten(self, flat: np.ndarray) -> Any: ...

    def layered(self, params: Any) -> Layered: ...

    def from_layered(self, layers: list[np.ndarray], a: np.ndarray | None) -> Any: ...

    def canonical(self, params: Any) -> Any: ...

    def tangents(self, params: Any) -> np.ndarray: ...


def sample_loss(student: Student, params: Any, X: Array, y: Array) -> Array:
    """Empirical loss ``½ mean_n (f_θ(x_n) − y_n)²`` on a sample ``X`` (n, d) with labels ``y`` (n,)."""
    r = student.apply(params, X) - y
    return 0.5 * jnp.mean(r * r)


@dataclass(frozen=True)
class BuiltIn:
    """jaxsym's fully connected network (:mod:`jaxsym.landscape.networks`): ``L`` hidden layers of width ``k``,
    no biases, output weights 𝟙 or trained."""

    d: int
    k: int
    hidden_layers: int
    train_output: bool
    activation: str
    constant: bool = False

    def init(self, key: Array, scale: float) -> networks.Trainable:
        return networks.init(key, self.d, self.k, self.hidden_layers, scale=scale, train_output=self.train_output)

    def apply(self, params: networks.Trainable, X: Array) -> Array:
        return networks.forward(networks.merge(params, self.k), X, self.activation)

    def flatten(self, params: networks.Trainable) -> np.ndarray:
        return networks.flatten(params)

    def unflatten(self, flat: np.ndarray) -> networks.Trainable:
        return networks.unflatten(flat, self.d, self.k, self.hidden_layers, self.train_output)

    def layered(self, params: networks.Trainable) -> Layered:
        return [np.asarray(W, np.float64) for W in params.layers], \
            None if params.a is None else np.asarray(params.a, np.float64)

    def from_layered(self, layers: list[np.ndarray], a: np.ndarray | None) -> networks.Trainable:
        return networks.Trainable(tuple(layers), a)

    def canonical(self, params: networks.Trainable) -> networks.Trainable:
        return networks.canonical(params, self.activation)

    def tangents(self, params: networks.Trainable) -> np.ndarray:
        return networks.scaling_tangents(params, self.activation)


def load_factory(path: str, what: str = "student") -> Callable[..., Any]:
    """Import ``"package.module:factory"``; raises ``ValueError`` naming the path and the reason when that
    fails."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"a {what} is named 'package.module:factory', got {path!r}")
    try:
        mod = importlib.import_module(module)
        fn = mod
        for part in name.split("."):
            fn = getattr(fn, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load {what} {path!r}: {e}") from None
    if not callable(fn):
        raise ValueError(f"{what} {path!r} is not callable")
    logging.getLogger("jaxsym").info("imported the %s %s named by the config (module file: %s)", what, path,
                                     getattr(mod, "__file__", None) or "a built-in module")
    return fn
