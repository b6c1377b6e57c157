"""The group seam: what the sweeps ask of a symmetry group, and its instances.

A :class:`Group` acts on points and answers four questions, each in one method:

    act(g, x)            the point g·x
    fingerprint(xs)      (N, F) invariant features of N points (equal on an orbit), or None when there are none
    match(x, y, tol)     an element g with g·x = y within tol, or None
    isotropy(x, tol)     the exact isotropy group of x, with its name in the papers' notation

Clustering (:func:`jaxsym.symmetry.orbits.cluster`) takes any group; a pipeline chooses its group once per cell
(:func:`jaxsym.sweep.closed_form.build` the two-layer one, :mod:`jaxsym.sweep.sampled` the layered one). Both
instances below are permutation groups and share the search of :mod:`jaxsym.symmetry.group`; a group of another
kind (sign flips of an odd activation's units, scalings) is a new class with these four methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from jaxsym.symmetry.group import (
    Element,
    Isotropy,
    Layers,
    apply,
    apply_net,
    find_element,
    find_net_element,
    isotropy,
    net_isotropy,
    target_column_colours,
)


class Group(Protocol):
    """A symmetry group acting on points (module docstring)."""

    def act(self, g: Element, x: Any) -> Any: ...

    def fingerprint(self, xs: Sequence[Any]) -> np.ndarray | None: ...

    def match(self, x: Any, y: Any, tol: float) -> Element | None: ...

    def isotropy(self, x: Any, tol: float) -> Isotropy: ...


def fingerprints(Ws: np.ndarray) -> np.ndarray:
    """Invariants of two-layer points ``Ws`` (N, k, d) under ``S_k × S_d``, float64: sorted entries, sorted row
    norms and singular values, (N, k·d + k + min(k, d))."""
    Ws = np.asarray(Ws, dtype=np.float64)
    n = Ws.shape[0]
    entries = np.sort(Ws.reshape(n, -1), axis=1)
    norms = np.sort(np.linalg.norm(Ws, axis=2), axis=1)
    sv = np.linalg.svd(Ws, compute_uv=False) if n else np.zeros((0, min(Ws.shape[1:])))
    return np.concatenate([entries, norms, sv], axis=1)


@dataclass(frozen=True)
class TwoLayer:
    """``G_V ⊂ S_k × S_d`` acting on two-layer students ``W`` (k, d): rows (neurons) permuted freely, columns
    (input coordinates) permuted where the target ``V`` allows it (its column structure; None: every
    permutation, the group of ``V = I``). Today's group of every closed-form sweep."""

    V: np.ndarray | None = field(default=None, compare=False)

    def act(self, g: Element, x: np.ndarray) -> np.ndarray:
        return apply(g, x)

    def fingerprint(self, xs: Sequence[np.ndarray]) -> np.ndarray | None:
        return fingerprints(np.asarray(xs)) if len(xs) else None

    def match(self, x: np.ndarray, y: np.ndarray, tol: float) -> Element | None:
        return find_element(x, y, self.V, tol=tol)

    def isotropy(self, x: np.ndarray, tol: float) -> Isotropy:
        return isotropy(x, self.V, tol=tol)

    def column_colours(self, d: int) -> np.ndarray:
        """The input coordinates' colours (equal colours: permutable), from the target."""
        return target_column_colours(self.V, d)


@dataclass(frozen=True)
class LayeredUnits:
    """Permutations of the hidden units of every layer (and of the input coordinates of one colour) acting on
    layered networks ``(layers, a)``: ``layers`` the weight matrices, ``a`` the output weights (None: all equal).
    The group of sampled sweeps' networks; no fingerprint (they are clustered by the matcher alone).
    ``constant``: networks in homogeneous coordinates (biases as the edges of a constant unit, the last vertex of
    every layer; :func:`jaxsym.symmetry.group.net_isotropy`), whose constant units no element moves."""

    input_colours: np.ndarray | None = field(default=None, compare=False)
    limit: int = 20_000  # search nodes before a match or an isotropy gives up (isotropy: ``exact`` False)
    constant: bool = False

    def act(self, g: Element, x: tuple[Layers, np.ndarray | None]) -> tuple[Layers, np.ndarray | None]:
        return apply_net(g, list(x[0]), x[1])

    def fingerprint(self, xs: Sequence[Any]) -> np.ndarray | None:
        return None

    def match(self, x: tuple[Layers, np.ndarray | None], y: tuple[Layers, np.ndarray | None], tol: float
              ) -> Element | None:
        return find_net_element(list(x[0]), x[1], list(y[0]), y[1], tol=tol, input_colours=self.input_colours,
                                limit=self.limit, constant=self.constant)

    def isotropy(self, x: tuple[Layers, np.ndarray | None], tol: float) -> Isotropy:
        return net_isotropy(list(x[0]), x[1], tol=tol, input_colours=self.input_colours, limit=self.limit,
                            constant=self.constant)
