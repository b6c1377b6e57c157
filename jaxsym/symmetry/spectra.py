"""Hessian spectra grouped into distinct eigenvalues with multiplicities.

Symmetry predicts the multiplicities: at a point with isotropy ``H`` the Hessian commutes with the action of
``H`` on ``R^{k×d}``, so each isotypic component contributes eigenvalues whose multiplicities are the
dimensions of the irreducible representations (e.g. at ``W = V = I``: 1, k−1, (k−1)(k−2)/2, k(k−3)/2).
Spectra are computed in float64 with NumPy/LAPACK on the host, once per distinct point (batched ``eigh`` on
GPUs is slow above 32×32).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import jax
import numpy as np

from jaxsym.landscape.activations import RELU, Objective
from jaxsym.numerics import programs


def group_eigenvalues(eigs: np.ndarray, tol: float = 1e-6, mults: np.ndarray | None = None
                      ) -> list[tuple[float, float]]:
    """Sorted eigenvalues grouped where consecutive gaps are ≤ ``tol·max(1, |λ|)``.

    ``mults`` gives each value a multiplicity (e.g. an isotypic block's eigenvalue stands for ``dim ρ``
    eigenvalues; a real number along a family in real k); a group's value is then the multiplicity-weighted
    mean. Returns
    ``[(mean eigenvalue, multiplicity), ...]`` in ascending order.
    """
    eigs = np.asarray(eigs, dtype=np.float64)
    if eigs.size == 0:
        return []
    if mults is None:
        eigs = np.sort(eigs)
        w = None
    else:
        by = np.argsort(eigs, kind="stable")
        eigs, w = eigs[by], np.asarray(mults, np.float64)[by]
    gaps = np.diff(eigs) > tol * np.maximum(1.0, np.abs(eigs[1:]))
    starts = np.concatenate([[0], np.flatnonzero(gaps) + 1, [eigs.size]])
    if w is None:
        return [(float(eigs[a:b].mean()), int(b - a)) for a, b in itertools.pairwise(starts)]
    return [(float(np.average(eigs[a:b], weights=w[a:b])), _count(w[a:b].sum())) for a, b in itertools.pairwise(starts)]


def _count(m: float) -> float:
    """A multiplicity: an int when it is one (real ones come from dimension polynomials at real block sizes)."""
    return int(m) if float(m).is_integer() else float(m)


@functools.lru_cache(maxsize=32)
def _hessian_program(obj: Objective) -> Callable[..., jax.Array]:
    return programs.jit(obj.hessian, name="hessian", key=obj.key)


def hessian_matrix(W: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> np.ndarray:
    """The Hessian of ``obj`` at ``W`` (k, d), (k·d, k·d) float64 on the host: one jitted program per shape
    (compiled once, not op by op, and stored across processes: :mod:`jaxsym.numerics.programs`), the target an
    argument, so cells of one shape share it."""
    with jax.enable_x64(True):
        return np.asarray(_hessian_program(obj)(np.asarray(W, np.float64), np.asarray(V, np.float64)))


def hessian_eigenvalues(W: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> np.ndarray:
    """All Hessian eigenvalues of ``obj`` at ``W`` (k, d), ascending, float64: :func:`hessian_matrix`, then
    LAPACK's eigendecomposition on the host (batched ``eigh`` on GPUs is slow above 32×32, and this runs once per
    distinct point)."""
    return np.linalg.eigvalsh(hessian_matrix(W, V, obj))


def spectrum(W: np.ndarray, V: np.ndarray, *, tol: float = 1e-6) -> list[tuple[float, int]]:
    """Distinct Hessian eigenvalues and multiplicities at ``W``, ascending: ``[(λ, m), ...]``."""
    return group_eigenvalues(hessian_eigenvalues(W, V), tol)


def irrep_dim(partition: tuple[int, ...]) -> int:
    """Dimension of the irreducible representation of ``S_n`` for a partition of n (hook length formula)."""
    parts = [int(p) for p in partition if int(p) > 0]  # Python ints: numpy ones overflow in the product
    if not parts:
        return 1
    n = sum(parts)
    conj = [sum(1 for p in parts if p > j) for j in range(parts[0])]
    hooks = math.prod(parts[i] - j + conj[j] - i - 1 for i in range(len(parts)) for j in range(parts[i]))
    return math.factorial(n) // hooks


def predicted_multiplicities(blocks: list[int]) -> list[int]:
    """Hessian eigenvalue multiplicities predicted by symmetry at a point with isotropy ``Δ(Π S_{p_i})``
    (``k = d``, blocks ``p_i`` summing to k), for generic values: one entry per distinct eigenvalue.

    ``R^{k×k} = P ⊗ P`` with ``P`` the permutation representation restricted to ``H = Π S_{p_i}``:
    ``P = n·1 ⊕ ⊕_i S_i`` (n blocks, ``S_i`` the standard representation of the i-th factor, absent when
    p_i = 1). Hence ``P⊗P = n²·1 ⊕ 2n·⊕S_i ⊕ ⊕_{i≠j} S_i⊗S_j ⊕ ⊕_i S_i⊗S_i`` with
    ``S_i⊗S_i = 1 ⊕ [p−1,1] ⊕ [p−2,2] ⊕ [p−2,1,1]`` (terms present only when p is large enough; for p = 2
    only 1). An irreducible of dimension m occurring c times contributes c eigenvalues of multiplicity m.
    Eigenvalues can still coincide (as at the global minimum), merging predicted entries.
    """
    blocks = [int(p) for p in blocks]
    n = len(blocks)
    copies: dict[tuple[object, ...], int] = {("triv",): n * n}
    dims: dict[tuple[object, ...], int] = {("triv",): 1}

    def add(key: tuple[object, ...], dim: int, c: int) -> None:
        if dim > 0 and c > 0:
            copies[key] = copies.get(key, 0) + c
            dims[key] = dim

    for i, p in enumerate(blocks):
        if p < 2:
            continue
        add(("std", i), p - 1, 2 * n)
        add(("triv",), 1, 1)  # S_i ⊗ S_i ∋ 1
        if p >= 3:
            add(("std", i), p - 1, 1)
            add(("hook", i), irrep_dim((p - 2, 1, 1)), 1)
        if p >= 4:
            add(("two", i), irrep_dim((p - 2, 2)), 1)
        for j, q in enumerate(blocks):
            if j > i and q >= 2:
                add(("pair", i, j), (p - 1) * (q - 1), 2)
    out = [dims[key] for key, c in copies.items() for _ in range(c)]
    assert sum(out) == sum(blocks) ** 2
    return sorted(out)
