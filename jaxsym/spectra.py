"""Hessian spectra grouped into distinct eigenvalues with multiplicities.

Symmetry predicts the multiplicities: at a point with isotropy ``H`` the Hessian commutes with the action of
``H`` on ``R^{k×d}``, so each isotypic component contributes eigenvalues whose multiplicities are the
dimensions of the irreducible representations (e.g. at ``W = V = I``: 1, k−1, (k−1)(k−2)/2, k(k−3)/2).
Spectra are computed in float64 with NumPy/LAPACK on the host, once per distinct point (batched ``eigh`` on
GPUs is slow above 32×32).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from jaxsym import model


def group_eigenvalues(eigs: np.ndarray, tol: float = 1e-6) -> list[tuple[float, int]]:
    """Sorted eigenvalues grouped where consecutive gaps are ≤ ``tol·max(1, |λ|)``.

    Returns ``[(mean eigenvalue, multiplicity), ...]`` in ascending order.
    """
    eigs = np.sort(np.asarray(eigs, dtype=np.float64))
    if eigs.size == 0:
        return []
    gaps = np.diff(eigs) > tol * np.maximum(1.0, np.abs(eigs[1:]))
    starts = np.concatenate([[0], np.flatnonzero(gaps) + 1, [eigs.size]])
    return [(float(eigs[a:b].mean()), int(b - a)) for a, b in itertools.pairwise(starts)]


def hessian_eigenvalues(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """All Hessian eigenvalues at ``W`` (k, d), ascending, float64."""
    with jax.enable_x64(True):
        H = np.asarray(model.hessian(jax.numpy.asarray(W, dtype=np.float64),
                                     jax.numpy.asarray(V, dtype=np.float64)))
    return np.linalg.eigvalsh(H)


def spectrum(W: np.ndarray, V: np.ndarray, *, tol: float = 1e-6) -> list[tuple[float, int]]:
    """Distinct Hessian eigenvalues and multiplicities at ``W``, ascending: ``[(λ, m), ...]``."""
    return group_eigenvalues(hessian_eigenvalues(W, V), tol)
