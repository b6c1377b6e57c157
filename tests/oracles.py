"""Independent constructions that tests compare the package against (not used by the package).

The integer-k block spectrum: the Hessian of F at a point of Fix(Δ(S_{p_1}×…×S_{p_r})) restricted to each
isotypic component, from k×k test matrices and Hessian-vector products in the full space. The package computes
the same eigenvalues from nested fixed-point spaces for real block sizes
(:func:`jaxsym.fixedpoints.spectrum.components`); this construction shares nothing with it but the closed-form
Hessian-vector product.

Taking one test vector ``u`` of an irreducible ρ (dimension m, occurring c times) and its images
``φ_1(u), …, φ_c(u)`` under c independent equivariant maps into ``R^{k×k}``, the c eigenvalues solve the
generalized problem ``A y = λ G y`` with ``A = ⟨φ_α(u), ∇²F φ_β(u)⟩`` and ``G = ⟨φ_α(u), φ_β(u)⟩``, each of
multiplicity m: trivial (``1_s 1_tᵀ``, ``diag(1_s)``), standard of block s (``u_s 1_tᵀ``, ``1_t u_sᵀ``,
``diag(u_s)``), ``[p−2,1,1]`` (an antisymmetric triangle), ``[p−2,2]`` (a symmetric zero-row-sum square) and the
products of two standards (``u_s u_tᵀ``, ``u_t u_sᵀ``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from jaxsym.fixedpoints.space import Space
from jaxsym.landscape import model
from jaxsym.symmetry.spectra import group_eigenvalues, irrep_dim


def _isotypic_test_vectors(blocks: tuple[int, ...]) -> list[tuple[str, int, list[np.ndarray]]]:
    """(irreducible label, its dimension, images φ_α(u) as k×k matrices) for every irreducible type."""
    k = sum(blocks)
    edges = np.concatenate([[0], np.cumsum(blocks)])
    idx = [np.arange(edges[s], edges[s + 1]) for s in range(len(blocks))]
    ones = [np.zeros(k) for _ in blocks]
    for s, ix in enumerate(idx):
        ones[s][ix] = 1.0

    def unit(i: int) -> np.ndarray:
        e = np.zeros(k)
        e[i] = 1.0
        return e

    out = []
    triv = [np.outer(ones[s], ones[t]) for s in range(len(blocks)) for t in range(len(blocks))]
    triv += [np.diag(ones[s]) for s, p in enumerate(blocks) if p >= 2]
    out.append(("trivial", 1, triv))
    for s, p in enumerate(blocks):
        if p < 2:
            continue
        u = unit(idx[s][0]) - unit(idx[s][1])
        vecs = [np.outer(u, ones[t]) for t in range(len(blocks))] + [np.outer(ones[t], u) for t in range(len(blocks))]
        if p >= 3:
            vecs.append(np.diag(u))
        out.append((f"std[{s}]", p - 1, vecs))
        if p >= 3:
            i0, i1, i2 = idx[s][:3]
            A = np.zeros((k, k))
            for x, y in ((i0, i1), (i1, i2), (i2, i0)):
                A[x, y], A[y, x] = 1.0, -1.0
            out.append((f"[p-2,1,1][{s}]", irrep_dim((p - 2, 1, 1)), [A]))
        if p >= 4:
            i0, i1, i2, i3 = idx[s][:4]
            B = np.zeros((k, k))
            for x, y, v in ((i0, i1, 1), (i2, i3, 1), (i0, i2, -1), (i1, i3, -1)):
                B[x, y] = B[y, x] = v
            out.append((f"[p-2,2][{s}]", irrep_dim((p - 2, 2)), [B]))
    for s, p in enumerate(blocks):
        for t, q in enumerate(blocks):
            if t > s and p >= 2 and q >= 2:
                us = unit(idx[s][0]) - unit(idx[s][1])
                ut = unit(idx[t][0]) - unit(idx[t][1])
                out.append((f"std[{s}]⊗std[{t}]", (p - 1) * (q - 1), [np.outer(us, ut), np.outer(ut, us)]))
    return out


@dataclass
class BlockSpectrum:
    """Hessian eigenvalues at a point of Fix(H), by isotypic component: ``values`` ascending, their ``mults``
    and the irreducible of each (``labels``)."""

    values: np.ndarray
    mults: np.ndarray
    labels: list[str] = field(default_factory=list)

    def grouped(self, tol: float = 1e-6) -> list[tuple[float, float]]:
        """Distinct eigenvalues (merging equal values from different components) with multiplicities."""
        return group_eigenvalues(self.values, tol, self.mults)


def block_spectrum(space: Space, x: np.ndarray) -> BlockSpectrum:
    """The full k²-dimensional Hessian spectrum at ``E x`` from small generalized eigenproblems (integer k)."""
    blocks = space.blocks
    k = sum(blocks)
    with jax.enable_x64(True):
        W = space.embed(jnp.asarray(x, jnp.float64))
        V = jnp.eye(k, dtype=jnp.float64)
        hvp = jax.jit(model.hvp, static_argnames="accurate")
        values, mults, labels = [], [], []
        for label, dim, vecs in _isotypic_test_vectors(blocks):
            Phi = np.stack([v.ravel() for v in vecs], axis=1)
            HPhi = np.stack([np.asarray(hvp(W, V, jnp.asarray(v), accurate=k <= 200)).ravel() for v in vecs], axis=1)
            A = Phi.T @ HPhi
            A = (A + A.T) / 2
            lam = scipy.linalg.eigh(A, Phi.T @ Phi, eigvals_only=True)
            values += list(lam)
            mults += [dim] * len(lam)
            labels += [label] * len(lam)
    order = np.argsort(values, kind="stable")
    return BlockSpectrum(np.asarray(values)[order], np.asarray(mults)[order], [labels[i] for i in order])
