"""Fully connected networks for sampled objectives: two-layer (fixed or trainable output) and deeper.

A network with ``L`` hidden layers of width ``k`` on inputs ``x ∈ R^d``:

    h_0 = x,   h_l = σ(W_l h_{l−1})  (l = 1 … L),   f(x) = a · h_L,

with ``W_1 ∈ R^{k×d}``, ``W_l ∈ R^{k×k}`` (l ≥ 2), ``a ∈ R^k``. ``L = 1`` with ``a = 𝟙`` fixed is the papers'
student ``Σ_i σ(w_i·x)``; ``train_output`` makes ``a`` trainable. The teacher of width ``m`` is
``W_1 = I`` (``[I_m 0]`` for m < d), ``W_l = I_m``, ``a = 𝟙``, so ``f_V(x) = Σ_{i ≤ m} σ^{∘L}(x_i)``.

**Symmetry.** Permuting the hidden units of layer ``l`` (rows of ``W_l``, columns of ``W_{l+1}``, entries of
``a`` for l = L) leaves ``f`` unchanged for every ``x``; permuting inputs changes ``f`` into ``f∘P``, which the
loss does not see when the input law is exchangeable and the teacher is the identity. For positively
homogeneous σ (ReLU, leaky ReLU: :attr:`jaxsym.landscape.activations.Activation.homogeneous`) there is also the
continuous rescaling ``(W_l[j,:], W_{l+1}[:,j]) ↦ (c W_l[j,:],
W_{l+1}[:,j]/c)``, c > 0, wherever the outgoing weights are trained: :func:`canonical` picks the point of each
rescaling orbit with unit incoming rows, and :func:`scaling_tangents` spans the Hessian's null directions it
causes.

A :class:`Net` is a pytree (a NamedTuple of arrays), single example, any float dtype; vmap from outside.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.landscape.activations import ACTIVATIONS

Array = jax.Array


class Net(NamedTuple):
    """Weights: ``layers`` = (W_1 (k, d), W_2 (k, k), …), ``a`` (k,) output weights."""

    layers: tuple[Array, ...]
    a: Array


class Trainable(NamedTuple):
    """The trained part of a :class:`Net` (``a`` is ``None`` when the output layer is fixed)."""

    layers: tuple[Array, ...]
    a: Array | None


def merge(params: Trainable, k: int) -> Net:
    """A :class:`Net` from trained parameters (output weights 𝟙 when they are not trained)."""
    a = params.a if params.a is not None else jnp.ones(k, params.layers[0].dtype)
    return Net(tuple(params.layers), a)


def forward(net: Net, X: Array, activation: str = "relu") -> Array:
    """``f(x)`` for a batch ``X`` (n, d); (n,)."""
    sigma = ACTIVATIONS[activation].sigma
    h = X
    for W in net.layers:
        h = sigma(h @ W.T)
    return h @ net.a


def teacher(d: int, m: int, hidden_layers: int, dtype: jnp.dtype = jnp.float32) -> Net:
    """Identity teacher of width ``m ≤ d`` (see module docstring)."""
    if m > d:
        raise ValueError(f"the identity teacher needs m <= d, got m={m}, d={d}")
    first = jnp.eye(m, d, dtype=dtype)
    return Net((first, *(jnp.eye(m, dtype=dtype) for _ in range(hidden_layers - 1))), jnp.ones(m, dtype))


def init(key: Array, d: int, k: int, hidden_layers: int, *, scale: float = 1.0, train_output: bool = False,
         dtype: jnp.dtype = jnp.float32) -> Trainable:
    """``W_1 ~ N(0, scale²/d)``, ``W_l ~ N(0, 2 scale²/k)`` (He, keeps ReLU activations' scale), and
    ``a ~ N(0, 1)`` when trained."""
    keys = jax.random.split(key, hidden_layers + 1)
    layers = [(scale / np.sqrt(d)) * jax.random.normal(keys[0], (k, d), dtype)]
    layers += [(scale * np.sqrt(2.0 / k)) * jax.random.normal(keys[i], (k, k), dtype)
               for i in range(1, hidden_layers)]
    a = jax.random.normal(keys[-1], (k,), dtype) if train_output else None
    return Trainable(tuple(layers), a)


def sample_loss(params: Trainable, X: Array, y: Array, k: int, activation: str = "relu") -> Array:
    """Empirical loss ``½ mean_n (f(x_n) − y_n)²`` on a sample ``X`` (n, d) with labels ``y`` (n,)."""
    r = forward(merge(params, k), X, activation) - y
    return 0.5 * jnp.mean(r * r)


# --------------------------------------------------------------------------------------------------
# Rescaling symmetry (positively homogeneous σ)
# --------------------------------------------------------------------------------------------------
def rescalable_layers(hidden_layers: int, train_output: bool) -> list[int]:
    """Hidden layers (1-based) whose units can be rescaled: those whose outgoing weights are trained."""
    return [l for l in range(1, hidden_layers + 1) if l < hidden_layers or train_output]


def canonical(params: Trainable, activation: str) -> Trainable:
    """The point of the rescaling orbit whose rescalable units have unit incoming rows (numpy, float64).

    Layer by layer from the input: ``c_j = ‖W_l[j,:]‖``, ``W_l[j,:] /= c_j``, ``W_{l+1}[:,j] *= c_j``
    (``a_j *= c_j`` for the last layer). The same function, so the loss, is unchanged. A no-op for σ that is
    not positively homogeneous.
    """
    layers = [np.array(W, dtype=np.float64) for W in params.layers]
    a = None if params.a is None else np.array(params.a, dtype=np.float64)
    if not ACTIVATIONS[activation].homogeneous:
        return Trainable(tuple(layers), a)
    for l in rescalable_layers(len(layers), a is not None):
        c = np.linalg.norm(layers[l - 1], axis=1)
        c = np.where(c > 0, c, 1.0)
        layers[l - 1] = layers[l - 1] / c[:, None]
        if l < len(layers):
            layers[l] = layers[l] * c[None, :]
        else:
            a = a * c
    return Trainable(tuple(layers), a)


def scaling_tangents(params: Trainable, activation: str) -> np.ndarray:
    """Tangent vectors (n, P) of the rescaling orbits, in the flattening of :func:`flatten`: for each
    rescalable unit ``j`` of layer ``l``, ``(W_l[j,:], −W_{l+1}[:,j])`` (or ``−a_j``). Empty if σ is not
    positively homogeneous."""
    flat = flatten(params)
    if not ACTIVATIONS[activation].homogeneous:
        return np.zeros((0, flat.size))
    out = []
    for l in rescalable_layers(len(params.layers), params.a is not None):
        for j in range(params.layers[l - 1].shape[0]):
            t = jax.tree.map(np.zeros_like, jax.tree.map(np.asarray, params))
            t.layers[l - 1][j, :] = np.asarray(params.layers[l - 1])[j, :]
            if l < len(params.layers):
                t.layers[l][:, j] = -np.asarray(params.layers[l])[:, j]
            else:
                t.a[j] = -np.asarray(params.a)[j]
            out.append(flatten(t))
    return np.stack(out) if out else np.zeros((0, flat.size))


def flatten(params: Trainable) -> np.ndarray:
    """All trained weights, layer by layer row-major, then ``a``; (P,)."""
    parts = [np.asarray(W).reshape(-1) for W in params.layers]
    if params.a is not None:
        parts.append(np.asarray(params.a).reshape(-1))
    return np.concatenate(parts)


def unflatten(flat: np.ndarray, d: int, k: int, hidden_layers: int, train_output: bool) -> Trainable:
    """Inverse of :func:`flatten`."""
    flat = np.asarray(flat)
    shapes = [(k, d)] + [(k, k)] * (hidden_layers - 1)
    layers, at = [], 0
    for s in shapes:
        layers.append(flat[at:at + s[0] * s[1]].reshape(s))
        at += s[0] * s[1]
    a = flat[at:at + k] if train_output else None
    if at + (k if train_output else 0) != flat.size:
        raise ValueError(f"{flat.size} weights do not fit d={d}, k={k}, L={hidden_layers}, "
                         f"train_output={train_output}")
    return Trainable(tuple(layers), a)


def n_params(d: int, k: int, hidden_layers: int, train_output: bool) -> int:
    return k * d + (hidden_layers - 1) * k * k + (k if train_output else 0)
