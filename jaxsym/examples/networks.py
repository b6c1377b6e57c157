"""Flax students and teachers for sampled sweeps (``sampled.student`` / ``sampled.teacher``; see
:mod:`jaxsym.landscape.flax_students` and docs/beyond_gaussian.md).

A student factory is called ``factory(d, k, rngs)`` and returns an ``nnx.Module`` mapping inputs (n, d) to
outputs (n,) or (n, 1); a teacher factory is called ``factory(d, m)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class TwoLayer(nnx.Module):
    """``f(x) = Σ_i a_i σ(w_i·x + b_i) + c``: ``k`` hidden units, biases and output bias optional."""

    def __init__(self, d: int, k: int, rngs: nnx.Rngs, *, bias: bool = False, activation: str = "relu") -> None:
        self.hidden = nnx.Linear(d, k, use_bias=bias, kernel_init=nnx.initializers.normal(1 / np.sqrt(d)),
                                 rngs=rngs)
        self.out = nnx.Linear(k, 1, use_bias=bias, kernel_init=nnx.initializers.normal(1.0), rngs=rngs)
        self.sigma = getattr(jax.nn, activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.sigma(self.hidden(x)))[..., 0]


def two_layer_relu(d: int, k: int, rngs: nnx.Rngs) -> nnx.Module:
    """The built-in network with a trained output layer (``hidden_layers = 1``, ``train_output = true``), in
    flax: the same function class and the same initial law, ``w_ij ~ N(0, 1/d)`` and ``a_i ~ N(0, 1)``."""
    return TwoLayer(d, k, rngs)


def two_layer_relu_bias(d: int, k: int, rngs: nnx.Rngs) -> nnx.Module:
    """:func:`two_layer_relu` with a bias per hidden unit and an output bias (initialised at zero)."""
    return TwoLayer(d, k, rngs, bias=True)


class SumOfUnits(nnx.Module):
    """``f(x) = Σ_i σ(w_i·x)``: the papers' student, output weights fixed at 1."""

    def __init__(self, d: int, k: int, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(d, k, use_bias=False, kernel_init=nnx.initializers.normal(1 / np.sqrt(d)),
                                 rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.relu(self.hidden(x)), axis=-1)


def sum_of_relus(d: int, k: int, rngs: nnx.Rngs) -> nnx.Module:
    return SumOfUnits(d, k, rngs)


def identity_teacher(d: int, m: int) -> nnx.Module:
    """``f_V(x) = Σ_{i ≤ m} relu(x_i)``, the built-in identity teacher of width ``m``, as a flax module."""
    net = TwoLayer(d, m, nnx.Rngs(0))
    net.hidden.kernel[...] = jnp.eye(d, m)
    net.out.kernel[...] = jnp.ones((m, 1))
    return net


def builtin_copy(d: int, k: int, rngs: nnx.Rngs) -> nnx.Module:
    """:func:`two_layer_relu` starting where jaxsym's built-in network (``hidden_layers = 1``,
    ``train_output = true``) starts the same run: its weights drawn by :func:`jaxsym.landscape.networks.init`
    from the run's key (the ``rngs``' own key), so a sweep of this flax module and the built-in sweep train
    every run from the same point (tests/test_flax.py compares them run by run)."""
    from jaxsym.landscape import networks

    W, a = networks.init(rngs.default.key[...], d, k, 1, train_output=True)
    net = TwoLayer(d, k, rngs)
    net.hidden.kernel[...] = W[0].T
    net.out.kernel[...] = a[:, None]
    return net
