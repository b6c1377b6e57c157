"""The hand-off test, certified per orbit: a run handed to a minimum already certified, without per-run Newton work.

Setting: gradient descent ``W ← W − η∇F(W)`` on the closed-form loss. The fast protocol offers a run to the
hand-off test when its ‖∇F‖ first falls below a phase threshold (:mod:`jaxsym.engine.compact`). The test, for an
iterate ``W₀`` and a strict local minimum ``W*`` (‖∇F(W*)‖ ≤ τ_g/100):

    δ = 2‖H(W₀) − H(W*)‖_F,   accept  ⟺  every eigenvalue of H(W*) lies in [τ_H + δ, 2/η − δ].

**Argument.** Let ``r = ‖W₀ − W*‖``. If every Hessian on the ball ``B(W*, r)`` has its spectrum in ``(0, 2/η)``,
one descent step maps ``W_t`` to ``W_{t+1} − W* = (I − ηĤ_t)(W_t − W*)`` with ``Ĥ_t`` the mean Hessian on the
segment ``[W*, W_t]`` ⊂ B, so ``‖W_{t+1} − W*‖ < ‖W_t − W*‖``: the iterates stay in B and converge to ``W*``. The
test checks the spectrum at ``W*`` with the margin δ, assuming the Hessian varies over B at most twice as much as
it does between ``W*`` and ``W₀`` (a Lipschitz model, measured at ``W₀``, not proven; the Frobenius norm bounds
the spectral one). "Certified" means within this model and the stated tolerances.

**Per orbit.** The loss is invariant under the group ``G_V`` (``S_k × S_d`` for ``V = I``), so ``W*`` may be any
point of a certified orbit: ``g·W*`` for ``g ∈ G_V``. The float64 work that defines an orbit — the float64 polish
to ``∇F = 0`` (:func:`jaxsym.certify.exact.make_polish`), the Hessian at ``W*``, its extreme eigenvalues and
inverse — is done once, for the first run of the orbit, its *representative*. Every later run is matched to a
representative modulo the group (:func:`match_many`: ``X = g·W₀`` close to ``W*``, assignments of columns and rows in
alternation) and pays one Hessian ``H(X)`` and a comparison (``‖H(X) − H(W*)‖_F`` reduced inside one program).
Since ``‖H(g·W₀) − H(W*)‖ = ‖H(W₀) − H(g⁻¹·W*)‖``, this is the same test with the orbit's point nearest ``W₀``: a run is
accepted or not whatever run represents its orbit, up to rounding (the ``W*`` of two representatives agree to
‖∇F‖/λ_min ≈ 1e-11). That the match found the orbit of ``X``'s basin is checked by Newton's step: near ``W*``,
``X − H(W*)⁻¹∇F(X)`` lands on ``W*`` (to second order; ``∇F(X)`` is the descent's gradient at ``W₀``, carried by the
same permutation); where it does not land within :data:`NEWTON_SAME` of the distance, ``X`` lies near another
critical point.

A run that matches no representative (a new orbit, a saddle, a plateau) pays the per-run path: the critical point
near it (chord Newton with one Cholesky factor of ``H(W₀)``, else the float64 polish), then the test with it; so
does a run with a smaller index than its representative, which then represents the orbit — so an orbit's first
run in a chunk, hence in a cell (the row of ``minima.parquet``), is always certified from its own iterate,
whatever the chunking. A run certified per orbit ends at ``g⁻¹·W*``, with the representative's
loss and gradient norm (group-invariant).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.optimize import linear_sum_assignment

from jaxsym.certify.exact import Polished
from jaxsym.config import CertifyConfig

NEWTON_SAME = 0.5  # a matched iterate whose Newton step lands within half its distance of W* is in W*'s basin
CHORD_STEPS = 30  # chord-Newton steps of the per-run path before it falls back to the polish
OFFER_BLOCK_BYTES = 2**27  # at most this much of Hessians held at once while an offer is decided


def block_runs(W0: np.ndarray) -> int:
    """Runs whose float64 Hessians (k·d, k·d) fit :data:`OFFER_BLOCK_BYTES`: the per-run path decides this many runs
    at a time, so its memory does not grow with the chunk (at k = d = 15 a Hessian is 405 KB: 331 runs a block)."""
    n = W0.shape[1] * W0.shape[2]
    return max(1, OFFER_BLOCK_BYTES // (8 * n * n))


# --------------------------------------------------------------------------------------------------
# Matching modulo the group
# --------------------------------------------------------------------------------------------------
def sorted_entries(Ws: np.ndarray) -> np.ndarray:
    """(N, k·d) each point's entries sorted: ``‖sort(W₁) − sort(W₂)‖ ≤ min_g ‖g·W₁ − W₂‖`` (a permutation of
    entries cannot come closer than the sorted matching), the key that picks a representative."""
    Ws = np.asarray(Ws)
    return np.sort(Ws.reshape(len(Ws), -1), axis=1)


def _assign(cost: np.ndarray) -> np.ndarray:
    """``p`` with ``p[b]`` the row of ``cost`` assigned to column ``b`` (minimum total cost)."""
    rows, cols = linear_sum_assignment(cost)
    p = np.empty(cost.shape[1], dtype=np.int64)
    p[cols] = rows
    return p


def _assign_many(cost: np.ndarray) -> np.ndarray:
    """:func:`_assign` of each square matrix of ``cost`` (n, c, c): (n, c).

    Each column's cheapest row first: where these rows are distinct they are the assignment of least total cost
    (their total, ``Σ_b min_a cost[a, b]``, bounds every assignment's from below), the one
    ``linear_sum_assignment`` returns when the least is unique — the case near a representative, whose rows and
    columns are far apart against the distance of the iterate. The other matrices are solved by
    ``linear_sum_assignment``."""
    p = np.argmin(cost, axis=1)
    c = cost.shape[2]
    clash = np.flatnonzero(~(np.sort(p, axis=1) == np.arange(c)).all(axis=1))
    for n in clash:
        p[n] = _assign(cost[n])
    return p


def match_many(Ws: np.ndarray, R: np.ndarray, colours: np.ndarray, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Row and column permutations ``(pi (n, k), rho (n, d))`` with ``X_n = W_n[pi_n][:, rho_n]`` close to ``R``
    (k, d) for each point of ``Ws`` (n, k, d), columns only within their colour class (``colours``: the target's
    column colours, :func:`jaxsym.symmetry.group.target_column_colours`).

    Columns first by their sorted entries (invariant under row permutations), then rows given the columns and
    columns given the rows, until the pair stops changing (``rounds`` at most). A heuristic: a poor match only
    sends the run to the per-run path. Vectorised over the points; each point's pair is the one it gets alone
    (its rounds stop when its own pair stops changing)."""
    Ws = np.asarray(Ws, np.float64)
    R = np.asarray(R, np.float64)
    n, k, _ = Ws.shape
    apart = (colours[:, None] != colours[None, :]) * 1e30
    sw, sr = np.sort(Ws, axis=1), np.sort(R, axis=0)
    rho = _assign_many(((sw[:, :, :, None] - sr[None, :, None, :]) ** 2).sum(1) + apart)
    pi = np.broadcast_to(np.arange(k), (n, k)).copy()
    todo = np.arange(n)
    for _ in range(rounds):
        if not len(todo):
            break
        W = Ws[todo]
        by_cols = np.take_along_axis(W, rho[todo][:, None, :], axis=2)  # W[:, rho]
        pi_new = _assign_many(((by_cols[:, :, None, :] - R[None, None, :, :]) ** 2).sum(3))
        by_rows = np.take_along_axis(W, pi_new[:, :, None], axis=1)  # W[pi_new]
        rho_new = _assign_many(((by_rows[:, :, :, None] - R[None, :, None, :]) ** 2).sum(1) + apart)
        moved = ~((pi_new == pi[todo]).all(axis=1) & (rho_new == rho[todo]).all(axis=1))
        pi[todo], rho[todo] = pi_new, rho_new
        todo = todo[moved]
    return pi, rho


def permuted(Ws: np.ndarray, pi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``W[pi][:, rho]`` of each point: (n, k, d) from ``Ws`` (n, k, d), ``pi`` (n, k), ``rho`` (n, d)."""
    return np.take_along_axis(np.take_along_axis(Ws, pi[:, :, None], axis=1), rho[:, None, :], axis=2)


def unmap(R: np.ndarray, pi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """The point ``Y`` with ``Y[pi][:, rho] = R``: the representative carried back to the run's frame."""
    Y = np.empty_like(R)
    Y[np.ix_(pi, rho)] = R
    return Y


def window(lo: float, hi: float, delta: float, cfg: CertifyConfig, learning_rate: float) -> bool:
    """The spectral condition of the test: ``[lo, hi] ⊂ [τ_H + δ, 2/η − δ]`` (module docstring)."""
    return bool(lo >= cfg.hess_tol + delta and hi <= 2 / learning_rate - delta)


# --------------------------------------------------------------------------------------------------
# The representatives of a chunk
# --------------------------------------------------------------------------------------------------
class Representative(NamedTuple):
    """A certified minimum that later runs are matched to."""

    run: int
    W: np.ndarray        # (k, d) float64
    H: np.ndarray        # (k·d, k·d) float64 Hessian at W
    H_inv: np.ndarray    # its inverse (a strict minimum's Hessian is positive definite)
    lo: float            # its extreme eigenvalues
    hi: float
    loss: float
    grad_norm: float
    entries: np.ndarray  # sorted entries of W (the key that picks a representative)


class Certified(NamedTuple):
    """The outcome for the runs offered at once (host arrays of the offer's length)."""

    accepted: np.ndarray   # bool
    W: np.ndarray          # (c, k, d) float64 the certified point (the iterate where not accepted)
    loss: np.ndarray
    grad_norm: np.ndarray
    shift: np.ndarray
    per_orbit: np.ndarray  # bool: certified by matching a representative (no per-run polish)


class Basins:
    """The representatives of one chunk and the test of its runs (module docstring).

    ``polish(W (c, k, d)) -> Polished`` is the float64 polish over a run axis
    (:func:`jaxsym.certify.exact.make_polish`); ``hessian(W (c, k, d)) -> H (c, k·d, k·d)`` the Hessians of a
    batch of points (:func:`jaxsym.certify.exact.hessians`: each point's independent of the others);
    ``distance(X (c, k, d), H_ref (k·d, k·d)) -> (c,)`` the norms ``‖H(X_n) − H_ref‖_F`` of the test per orbit,
    without the Hessians (:func:`jaxsym.certify.exact.hessian_distances`, likewise per point); ``gradient(W)
    -> ∇F`` and ``loss(W)`` one point's, float64 (programs shared by every cell of a shape,
    :func:`jaxsym.certify.exact.gradient`: no program of its own); the per-run path's Hessians are computed in
    batches of :func:`block_runs` runs, the matched runs' distances per representative (no Hessian of theirs
    reaches the host); each point's Hessian, hence each run's decision, does not depend on its batch.
    ``colours`` are the target's column colours. The rest — eigenvalues of a representative's Hessian, its
    inverse, Cholesky factors, the per-run path's norms — is host linear algebra on (k·d, k·d) matrices.
    """

    def __init__(self, cfg: CertifyConfig, learning_rate: float, colours: np.ndarray,
                 polish: Callable[[np.ndarray], Polished], hessian: Callable[[np.ndarray], np.ndarray],
                 distance: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 gradient: Callable[[np.ndarray], np.ndarray], loss: Callable[[np.ndarray], float]) -> None:
        self.cfg, self.lr, self.colours = cfg, learning_rate, colours
        self.polish, self.hessian, self.distance, self.gradient, self.loss = polish, hessian, distance, gradient, loss
        self.reps: list[Representative] = []
        self.solved = 0   # runs that paid the per-run path
        self.matched = 0  # runs certified per orbit
        self.solve_s = 0.0  # seconds in the per-run path (the rest of an offer is the test per orbit)

    def _add(self, rep: Representative) -> None:
        same = [i for i, r in enumerate(self.reps)
                if abs(r.loss - rep.loss) <= 1e-10 and np.max(np.abs(r.entries - rep.entries)) <= 1e-6]
        if not same:
            self.reps.append(rep)
        elif rep.run < self.reps[same[0]].run:  # a smaller run of a known orbit represents it from now on
            self.reps[same[0]] = rep

    def offer(self, runs: np.ndarray, W0: np.ndarray, g0: np.ndarray | None) -> Certified:
        """Test the iterates ``W0`` (c, k, d) of the runs ``runs`` (c,) (global indices), whose gradients (in the
        training dtype) are ``g0`` (None: unknown, every run takes the per-run path); returns the outcome.

        Runs are taken in the order of their index: those that match a representative are decided by the test
        per orbit; of the others, the first few take the per-run path (and may become representatives), then the
        rest are matched again, the batch doubling each round — so an offer of many runs near few orbits pays a
        handful of polishes."""
        c = len(runs)
        W0 = np.asarray(W0, np.float64)
        out = Certified(np.zeros(c, bool), W0.copy(), np.full(c, np.nan), np.full(c, np.nan), np.zeros(c),
                        np.zeros(c, bool))
        pending = np.argsort(runs, kind="stable")
        if g0 is None:
            self._solve(runs, W0, pending, out)
            return out
        g0 = np.asarray(g0, np.float64)
        batch = 4
        while len(pending):
            unsolved = self._match(runs, W0, g0, pending, out)
            now, pending = unsolved[:batch], unsolved[batch:]
            if len(now):
                self._solve(runs, W0, now, out)
            batch *= 2
        return out

    def _match(self, runs: np.ndarray, W0: np.ndarray, g0: np.ndarray, idx: np.ndarray, out: Certified
               ) -> np.ndarray:
        """Decide the runs ``idx`` that match a representative of their orbit (into ``out``); returns the others,
        in order: those that match none, or whose representative has a larger run index."""
        if not self.reps or not len(idx):
            return idx
        entries = np.stack([r.entries for r in self.reps])
        bound = np.linalg.norm(sorted_entries(W0[idx])[:, None, :] - entries[None], axis=2)
        rep_runs = np.array([r.run for r in self.reps])
        bound[rep_runs[None, :] > runs[idx][:, None]] = np.inf  # a smaller run takes the per-run path
        choice = np.argmin(bound, axis=1)
        solve = np.isinf(bound[np.arange(len(idx)), choice])
        for r in dict.fromkeys(choice[~solve]):  # per representative, in order of first use
            ns = np.flatnonzero(~solve & (choice == r))
            rep, i = self.reps[r], idx[ns]
            pi, rho = match_many(W0[i], rep.W, self.colours)
            X = permuted(W0[i], pi, rho)
            d = (X - rep.W).reshape(len(ns), -1)
            step = permuted(g0[i], pi, rho).reshape(len(ns), -1) @ rep.H_inv.T  # the gradient, carried likewise
            far = np.linalg.norm(d - step, axis=1) > NEWTON_SAME * np.linalg.norm(d, axis=1)
            solve[ns[far]] = True  # near another critical point: the per-run path
            near = np.flatnonzero(~far)
            if not len(near):
                continue
            dist = self.distance(X[near], rep.H)
            for m, dn in zip(near, dist, strict=True):
                if window(rep.lo, rep.hi, 2 * float(dn), self.cfg, self.lr):
                    Y = unmap(rep.W, pi[m], rho[m])
                    out.accepted[i[m]], out.per_orbit[i[m]] = True, True
                    out.W[i[m]], out.loss[i[m]], out.grad_norm[i[m]] = Y, rep.loss, rep.grad_norm
                    out.shift[i[m]] = np.linalg.norm(Y - W0[i[m]])
                    self.matched += 1
                # else: in the representative's basin but refused: it descends further (what its own polish would
                # decide, with the orbit's point nearest W₀)
        return idx[solve]

    def _solve(self, runs: np.ndarray, W0: np.ndarray, idx: np.ndarray, out: Certified) -> None:
        """The per-run path for the runs ``idx``: find the critical point — chord Newton from the iterate with one
        Cholesky factor of ``H(W₀)`` (:data:`CHORD_STEPS` steps at most, ‖∇F‖ decreasing at each), else the float64
        polish —, test it, and keep the minima found as representatives; :func:`block_runs` runs at a time, in
        order (a run's decision is its own; representatives are added in the same order)."""
        block = block_runs(W0)
        for at in range(0, len(idx), block):
            self._solve_block(runs, W0, idx[at:at + block], out)

    def _solve_block(self, runs: np.ndarray, W0: np.ndarray, idx: np.ndarray, out: Certified) -> None:
        t0 = time.perf_counter()
        self.solved += len(idx)
        tol = self.cfg.grad_tol / 100
        found: dict[int, tuple[np.ndarray, float, float, np.ndarray]] = {}  # i -> (W*, loss, ‖∇F‖, H(W₀))
        rest: list[tuple[int, np.ndarray]] = []  # (i, H(W₀)) of the runs the polish finishes
        H0s = self.hessian(W0[idx])  # one batch of Hessians
        for i, H0 in zip(idx, H0s, strict=True):
            W, gn, steps = self._chord(W0[i], H0)
            if gn <= tol:
                found[int(i)] = (W, float("nan"), gn, H0)
            elif steps > 0:  # chord Newton converges, slowly (its rate is ≈ ‖I − H(W₀)⁻¹H(W*)‖): the polish finishes
                rest.append((int(i), H0))
            # else refused without a polish, the run descends further: H(W₀) is not positive definite (then no W*
            # passes the test: δ/2 ≥ ‖H(W₀) − H(W*)‖₂ ≥ λ_min(H(W*)) contradicts λ_min(H(W*)) ≥ τ_H + δ), or the
            # first chord step does not lower ‖∇F‖ (W₀ is not yet where H(W₀) predicts the way to a minimum)
        if rest:
            p = self.polish(W0[[i for i, _ in rest]])
            for n, (i, H0) in enumerate(rest):
                if p.grad_norm[n] <= tol:
                    found[i] = (np.asarray(p.W[n]), float(p.loss[n]), float(p.grad_norm[n]), H0)
        Hs = self.hessian(np.stack([W for W, _, _, _ in found.values()])) if found else []
        for (i, (W, loss, gn, H0)), H in zip(found.items(), Hs, strict=True):
            loss = self.loss(W) if np.isnan(loss) else loss
            eig = np.linalg.eigvalsh(H)
            delta = 2 * np.linalg.norm(H0 - H)
            if eig[0] > self.cfg.hess_tol:
                self._add(Representative(int(runs[i]), W, H, np.linalg.inv(H), float(eig[0]), float(eig[-1]), loss,
                                         gn, sorted_entries(W[None])[0]))
            if window(eig[0], eig[-1], delta, self.cfg, self.lr):
                out.accepted[i] = True
                out.W[i], out.loss[i], out.grad_norm[i], out.shift[i] = W, loss, gn, np.linalg.norm(W - W0[i])
        self.solve_s += time.perf_counter() - t0

    def _chord(self, W0: np.ndarray, H0: np.ndarray) -> tuple[np.ndarray, float, int]:
        """Chord Newton ``W ← W − H(W₀)⁻¹∇F(W)`` while ‖∇F‖ decreases: ``(W, ‖∇F(W)‖, steps taken)`` (‖∇F‖ = inf
        where ``H(W₀)`` is not positive definite)."""
        try:
            factor = scipy.linalg.cho_factor(H0)
        except np.linalg.LinAlgError:
            return W0, np.inf, 0
        W, g = W0, self.gradient(W0)
        gn = float(np.linalg.norm(g))
        steps = 0
        while steps < CHORD_STEPS and gn > self.cfg.grad_tol / 100:
            W1 = W - scipy.linalg.cho_solve(factor, g.reshape(-1)).reshape(W.shape)
            g1 = self.gradient(W1)
            gn1 = float(np.linalg.norm(g1))
            if not gn1 < gn:
                break
            W, g, gn, steps = W1, g1, gn1, steps + 1
        return W, gn, steps
