"""The compacting engine and the fast protocol: compaction, the hand-off test, float64 training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from jaxsym import config
from jaxsym.config import CertifyConfig, TrainConfig
from jaxsym.engine.compact import descend, make_compact_engine, thresholds
from jaxsym.engine.descent import make_train, make_train_batch, make_train_from
from jaxsym.landscape import model
from jaxsym.sweep.driver import run_sweep


def no_handoff(positions: np.ndarray, W: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.zeros(len(positions), bool)


@pytest.mark.parametrize("k,slots", [(6, 1), (6, 2), (6, 3), (6, 16), (8, 2), (8, 32), (8, 64), (8, 128)])
def test_compaction_keeps_every_run_bit_identical_to_runs_trained_alone(k, slots):
    """With one threshold (no hand-off), every run's end point, step count and flags equal those of the run
    trained alone (its own one-run program), whatever the number of slots — at k = 8 also across 32 → 64
    slots, where XLA's CPU dot would otherwise switch to YNNPACK (`parallel.invariant_jit`) —; and
    equal the plain batch engine's; padding repeats the last run's result; the work counted is the steps the
    runs took."""
    cfg = TrainConfig(learning_rate=5 / k, steps=3000, grad_tol=1e-4, handoff_from=1e-4)
    assert thresholds(cfg) == [1e-4]
    runs = np.concatenate([np.arange(37), [36, 36, 36]])  # 37 runs padded to 40
    from jaxsym.engine.descent import cell_key, run_key
    from jaxsym.numerics.parallel import invariant_jit

    # its own one-run program, compiled with the engine's options (without them XLA's CPU dots of one run and
    # of a batch sum in different orders: the reason for the options)
    alone = invariant_jit(make_train(cfg, jnp.eye(k), k))

    base = cell_key(0, k, k)
    ref = [jax.device_get(alone(run_key(base, r))) for r in range(37)]
    batch = jax.device_get(make_train_batch(cfg, jnp.eye(k), k, 0)(jnp.asarray(runs[:37], jnp.uint32)))
    res, handed, stats = descend(make_compact_engine(cfg, np.eye(k), k, 0, slots=slots), runs, cfg, no_handoff)
    for field in ("W", "steps", "diverged", "grad_norm"):
        got = getattr(res, field)
        np.testing.assert_array_equal(got[:37], np.stack([getattr(r, field) for r in ref]))
        np.testing.assert_array_equal(got[:37], getattr(batch, field))
        np.testing.assert_array_equal(got[37:], np.repeat(got[36:37], 3, axis=0))
    assert not handed.any()
    assert stats.needed == int(np.sum(res.steps[:37])) and stats.executed >= stats.needed
    if slots <= 2:  # (one slot is two: see MIN_SLOTS) a slot idles at most the rest of a round per run
        assert stats.executed - stats.needed <= 37 * 15 + 2 * 15


def test_step_size_and_seed_are_arguments_not_new_programs(compilations):
    """Cells that differ only in the step size and the seed share the compacting engine's compiled programs:
    building and running a second one compiles nothing (XLA's compile events counted), yet each runs with its
    own values — bit for bit what the engine built for it alone gives, different from the first cell's."""
    k = 6
    runs = np.arange(24)

    def run(lr: float, seed: int) -> np.ndarray:
        cfg = TrainConfig(learning_rate=lr, steps=400, grad_tol=1e-4, handoff_from=1e-4)
        res, _, _ = descend(make_compact_engine(cfg, np.eye(k), k, seed, slots=8), runs, cfg, no_handoff)
        return np.asarray(res.W)

    first = run(0.8, 0)
    with compilations() as compiled:
        second = run(0.7, 3)
    assert compiled == []
    assert not np.array_equal(first, second)
    # the same cell in a process that has not seen the first one gives the same end points: its own trajectory
    cfg = TrainConfig(learning_rate=0.7, steps=400, grad_tol=1e-4, handoff_from=1e-4)
    from jaxsym.engine.descent import cell_key, run_key
    from jaxsym.numerics.parallel import invariant_jit

    alone = invariant_jit(make_train(cfg, jnp.eye(k), k))
    base = cell_key(3, k, k)
    np.testing.assert_array_equal(second, np.stack([np.asarray(alone(run_key(base, r)).W) for r in runs]))


def test_fast_sweep_does_not_depend_on_chunk_size_at_k8(tmp_path):
    """The default protocol at k = d = 8 in one chunk of 160 runs (128 slots) and in chunks of 32 (32 slots):
    the same tables, bit for bit — every run's certified values are its orbit's, whose representative is the
    orbit's first run whatever the chunking —, except ``polish_shift``: the distance to the certified point,
    which may be a run's own polish or its chunk's representative carried to it (the same point to the polish's
    precision, ‖∇F‖/λ_min ≲ 1e-10)."""
    raw = {"name": "c", "seed": 0, "runs": 160, "grid": {"d": [8], "k": "d"}, "train": {"learning_rate": "5/k"}}
    run_sweep(config.from_dict(raw), tmp_path / "a", progress=False)
    run_sweep(config.from_dict({**raw, "chunk_size": 32}), tmp_path / "b", progress=False)
    for table in ("runs.parquet", "minima.parquet"):
        a, b = pd.read_parquet(tmp_path / "a" / table), pd.read_parquet(tmp_path / "b" / table)
        near = [c for c in a.columns if c == "polish_shift"]
        pd.testing.assert_frame_equal(a.drop(columns=near), b.drop(columns=near), check_exact=True)
        for c in near:
            np.testing.assert_allclose(a[c], b[c], rtol=0, atol=1e-10)


def test_compaction_is_efficient_when_runs_differ_in_length():
    """Runs of very different lengths: the slot-steps executed stay close to the steps the runs needed (the
    plain engine would execute runs × the longest run)."""
    k = 8
    cfg = TrainConfig(learning_rate=5 / k, steps=20000, grad_tol=1e-4, handoff_from=1e-4)
    runs = np.arange(512)
    res, _, stats = descend(make_compact_engine(cfg, np.eye(k), k, 0, slots=32), runs, cfg, no_handoff)
    plain = len(runs) * int(res.steps.max())
    assert stats.efficiency > 0.8
    assert stats.executed < plain / 3


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([2, 3, 8, 16, 17, 40, 128, 512, 1024]), st.data())
def test_the_slot_ladder_holds_every_busy_run_in_few_sizes(full, data):
    """The slot counts a chunk of ``full`` slots moves through are its ladder ``full, full/16, …`` above
    ``ladder_floor(full)``: the size chosen for ``busy`` runs (queue empty) or ``pending`` runs (a phase's start)
    is on it, holds every busy run, and is the smallest such size (for pending runs: the largest they fill);
    at most three sizes up to 1,024 slots."""
    from jaxsym.engine.compact import SHRINK, _phase_slots, _target_slots, ladder_floor

    floor = ladder_floor(full)
    ladder = [full]
    while ladder[-1] > floor:
        ladder.append(max(floor, ladder[-1] // SHRINK))
    assert len(ladder) <= 3
    B = data.draw(st.sampled_from(ladder))
    busy = data.draw(st.integers(0, B))
    got = _target_slots(busy, B, floor)
    assert got in ladder and busy <= got <= B
    assert got == floor or busy > got // SHRINK  # no smaller size of the ladder would hold them
    pending = data.draw(st.integers(0, 4 * full))
    got = _phase_slots(pending, full, floor)
    assert got in ladder and (got == floor or pending >= got)
    assert all(pending < b for b in ladder if b > got)


def test_a_chunk_compiles_two_slot_counts_and_keeps_its_runs():
    """A chunk of 300 runs with 128 slots steps in 128 slots and, for the stragglers, 16 (two
    ``compact-advance`` programs); its runs end as in 8 slots (one program, no ladder), bit for bit."""
    k = 6
    cfg = TrainConfig(learning_rate=5 / k, steps=3000, grad_tol=1e-4, handoff_from=1e-4)
    runs = np.arange(300)
    seen: set[int] = set()

    def counted(slots: int):
        ops = make_compact_engine(cfg, np.eye(k), k, 0, slots=slots)
        advance = ops.engine.advance

        def spy(s, until):
            seen.add(s.slot_pos.shape[0])
            return advance(s, until)
        return ops._replace(engine=ops.engine._replace(advance=spy))

    res, _, _ = descend(counted(128), runs, cfg, no_handoff)
    assert seen == {128, 16}
    seen.clear()
    ref, _, _ = descend(counted(8), runs, cfg, no_handoff)
    assert seen == {8}
    for field in ("W", "steps", "grad_norm"):
        np.testing.assert_array_equal(getattr(res, field), getattr(ref, field))


def test_a_stopped_descent_saves_and_resumes_bit_identically(tmp_path):
    """Under a set stop event, descent saves its in-flight state and raises StoppedError; resuming from the save
    gives what an uninterrupted descent gives."""
    import threading

    from jaxsym.engine.interface import StoppedError, stop_on

    k = 6
    cfg = TrainConfig(learning_rate=5 / k, steps=3000, grad_tol=1e-4, handoff_from=1e-4)
    runs = np.arange(40)
    ops = make_compact_engine(cfg, np.eye(k), k, 0, slots=8)
    ref, _, _ = descend(ops, runs, cfg, no_handoff)
    event = threading.Event()
    event.set()
    with stop_on(event), pytest.raises(StoppedError):
        descend(ops, runs, cfg, no_handoff, inflight=tmp_path / "fl")
    assert list((tmp_path / "fl").glob("sha256-*.txt"))  # saved before stopping
    res, _, _ = descend(ops, runs, cfg, no_handoff, inflight=tmp_path / "fl")
    for field in ("W", "steps", "diverged", "grad_norm"):
        np.testing.assert_array_equal(getattr(res, field), getattr(ref, field))


def _float64_descent(k: int, lr: float):
    with jax.enable_x64(True):
        cfg = TrainConfig(learning_rate=lr, steps=100_000, grad_tol=1e-12, dtype="float64")
        return jax.jit(make_train_from(cfg, jnp.eye(k, dtype=jnp.float64)))


def _basins(k: int, lr: float, V: np.ndarray | None = None):
    """A chunk's hand-off test for k = d, as the closed-form pipeline builds it (float64 polish, jitted)."""
    from jaxsym.certify.basins import Basins
    from jaxsym.certify.exact import gradient, hessian_distances, hessians, loss_value, make_polish, per_run
    from jaxsym.symmetry.group import target_column_colours

    V = np.eye(k) if V is None else V
    cfg = CertifyConfig()
    with jax.enable_x64(True):
        polish = per_run(make_polish(cfg, V))

    def polish_all(W):
        with jax.enable_x64(True):
            return jax.device_get(polish(W, np.zeros(len(W)), np.zeros(len(W), bool)))

    return Basins(cfg, lr, target_column_colours(V, k), polish_all, lambda Ws: hessians(Ws, V),
                  lambda Xs, H: hessian_distances(Xs, H, V), lambda W: gradient(W, V), lambda W: loss_value(W, V))


def _grad(W: np.ndarray, V: np.ndarray | None = None) -> np.ndarray:
    V = np.eye(W.shape[-1]) if V is None else V
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(lambda w: model.grad(w, jnp.asarray(V)))(jnp.asarray(W)))


def _iterates(k: int, lr: float, n: int, tol: float = 1e-3):
    it = jax.device_get(make_train_batch(TrainConfig(learning_rate=lr, steps=20000, grad_tol=tol), jnp.eye(k), k, 0)(
        jnp.arange(n, dtype=jnp.uint32)))
    keep = np.flatnonzero(~it.diverged & (it.grad_norm <= tol))
    W = np.asarray(it.W, np.float64)[keep]
    return keep, W, _grad(W)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31), st.sampled_from([0.0, 1.0]))
def test_the_vectorised_assignment_is_the_least_cost_one(c, seed, spread):
    """`_assign_many` gives, for every matrix of a batch, the assignment `linear_sum_assignment` gives (random
    costs: cheapest rows often clash and fall back to it; with a dominant diagonal, permuted, they do not)."""
    from scipy.optimize import linear_sum_assignment

    from jaxsym.certify.basins import _assign_many

    rng = np.random.default_rng(seed)
    cost = rng.random((5, c, c)) + spread * 10 * (1 - np.eye(c))[None][:, rng.permutation(c)]
    got = _assign_many(cost.copy())
    for n in range(5):
        rows, cols = linear_sum_assignment(cost[n])
        assert np.array_equal(got[n][cols], rows)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 7), st.integers(2, 7), st.integers(0, 2**31))
def test_matching_modulo_the_group_undoes_the_group_element(k, d, seed):
    """Points ``g·R + noise`` (random row and column permutations of a representative, small noise) are matched
    back: ``permuted(W, pi, rho)`` is ``R`` up to the noise, and ``unmap`` carries ``R`` back to ``W``'s frame."""
    from jaxsym.certify.basins import match_many, permuted, unmap

    rng = np.random.default_rng(seed)
    R = rng.normal(size=(k, d))
    Ws = np.stack([R[rng.permutation(k)][:, rng.permutation(d)] + 1e-4 * rng.normal(size=(k, d))
                   for _ in range(6)])
    pi, rho = match_many(Ws, R, np.zeros(d, int))
    X = permuted(Ws, pi, rho)
    assert np.abs(X - R).max() <= 1e-3
    for n in range(6):
        np.testing.assert_array_equal(X[n], Ws[n][pi[n]][:, rho[n]])
        assert np.abs(unmap(R, pi[n], rho[n]) - Ws[n]).max() <= 1e-3


def test_an_accepted_handoff_is_where_continued_descent_ends():
    """For iterates (‖∇F‖ ≤ 1e-3) that the hand-off test accepts, per orbit or by their own polish, float64
    gradient descent *run on* from the iterate to ‖∇F‖ ≤ 1e-12 ends at the certified point: the test's claim,
    checked by doing the descent."""
    k, lr = 7, 5 / 7
    runs, W0, g0 = _iterates(k, lr, 48)
    basins = _basins(k, lr)
    out = basins.offer(runs, W0, g0)
    gd = _float64_descent(k, lr)
    assert out.per_orbit.sum() >= 30 and basins.solved <= 8  # most runs matched a representative
    for i in np.flatnonzero(out.accepted):
        with jax.enable_x64(True):
            end = jax.device_get(gd(jnp.asarray(W0[i])))
        assert end.grad_norm <= 1e-12
        np.testing.assert_allclose(end.W, out.W[i], atol=1e-9)
        assert abs(float(end.loss) - out.loss[i]) <= 1e-12
    assert out.accepted.sum() >= 40  # nearly every run (a handful may be refused near saddles)


def test_the_decision_per_orbit_equals_the_decision_of_the_run_s_own_polish():
    """Whether a run is handed off does not depend on which run represents its orbit: offered alone (its own
    polish, no representative) and offered after the others (matched per orbit), each run gets the same answer,
    at thresholds where the test accepts most runs (1e-3) and none (6e-3: matched, and refused per orbit)."""
    k, lr = 7, 5 / 7
    for tol, accepted in ((1e-3, True), (6e-3, False)):
        runs, W0, g0 = _iterates(k, lr, 40, tol)
        basins = _basins(k, lr)
        together = basins.offer(runs, W0, g0)
        assert basins.solved < len(runs) // 2 and (together.accepted.sum() > 30) == accepted
        for i in range(len(runs)):
            alone = _basins(k, lr).offer(runs[i:i + 1], W0[i:i + 1], g0[i:i + 1])
            assert alone.accepted[0] == together.accepted[i], (tol, runs[i])
            if alone.accepted[0]:
                np.testing.assert_allclose(alone.W[0], together.W[i], atol=1e-9)


def test_handoff_refuses_a_neighbourhood_of_a_saddle():
    """At the rank-one critical point W = c·𝟙𝟙ᵀ (all neurons equal: a saddle, checked by a dense
    eigendecomposition) the hand-off test refuses nearby iterates; near the global minimum it accepts them and
    certifies W = I."""
    k = 6
    V = np.eye(k)
    with jax.enable_x64(True):
        c = minimize_scalar(lambda c: float(model.loss(jnp.full((k, k), c), jnp.asarray(V))), bounds=(0.01, 2),
                            method="bounded", options={"xatol": 1e-12}).x
        W_saddle = np.full((k, k), c)
        eigs = np.linalg.eigvalsh(np.asarray(model.hessian(jnp.asarray(W_saddle), jnp.asarray(V))))
    assert eigs[0] < -1e-3  # a saddle
    rng = np.random.default_rng(0)
    near_saddle = W_saddle + 1e-4 * rng.normal(size=(5, k, k))
    assert not _basins(k, 5 / k).offer(np.arange(5), near_saddle, _grad(near_saddle)).accepted.any()
    W = V + 1e-4 * rng.normal(size=(6, k, k))
    near = _basins(k, 5 / k).offer(np.arange(6), W, _grad(W))
    assert near.accepted.all() and near.per_orbit.sum() == 2 and (near.grad_norm <= 1e-12).all()  # 4 polished first
    np.testing.assert_allclose(near.W, np.broadcast_to(V, (6, k, k)), atol=1e-10)
    # a step too large for the curvature (η λ_max ≥ 2) is refused too: descent would not converge there
    assert not _basins(k, 20.0).offer(np.arange(6), W, _grad(W)).accepted.any()


def test_matching_recovers_a_permuted_point():
    """match_many finds the row and column permutations that carry a permuted, perturbed point back (colours: all
    columns alike, or columns only within their class)."""
    from jaxsym.certify.basins import match_many, unmap

    rng = np.random.default_rng(5)
    k = 8
    R = np.eye(k) + 0.3 * rng.normal(size=(k, k))
    for colours in (np.zeros(k, int), np.repeat([0, 1], k // 2)):
        pi0 = rng.permutation(k)
        rho0 = np.concatenate([rng.permutation(np.flatnonzero(colours == c)) for c in np.unique(colours)])
        rho0 = rho0[np.argsort(np.argsort(np.concatenate([np.flatnonzero(colours == c) for c in np.unique(colours)])))]
        W = unmap(R, pi0, rho0) + 1e-3 * rng.normal(size=(k, k))
        (pi,), (rho,) = match_many(W[None], R, colours)
        assert np.abs(W[pi][:, rho] - R).max() < 1e-2
        assert (colours[rho] == colours).all()


BASE = {"name": "p", "seed": 3, "runs": 48, "grid": {"d": [7], "k": "d"},
        "train": {"learning_rate": "5/k", "steps": 20000}}


def _sweep(tmp_path, name: str, **train) -> pd.DataFrame:
    cfg = config.from_dict({**BASE, "train": {**BASE["train"], **train}})
    run_sweep(cfg, tmp_path / name, progress=False)
    return pd.read_parquet(tmp_path / name / "runs.parquet")


def test_fast_protocol_statuses_equal_the_published_float64_protocol(tmp_path):
    """The default protocol (float32, compaction, hand-off) and the published one (float64 descent to
    ‖∇F‖ ≤ 1e-12, every run to its end) from the same initial points: the same status for every run, and the
    same critical point (loss) for every certified run; the fast one takes far fewer steps."""
    fast = _sweep(tmp_path, "fast")
    pub = _sweep(tmp_path, "pub", dtype="float64", grad_tol=1e-12, protocol="full", steps=200_000)
    assert (pub["train_grad_norm"] <= 1e-12).all()  # float64 descent really reached 1e-12
    assert (fast["status"] == pub["status"]).all()
    np.testing.assert_allclose(fast["loss"], pub["loss"], atol=1e-10)
    assert fast["handoff"].mean() > 0.9
    assert fast["steps"].sum() < pub["steps"].sum() / 2


def test_float64_sweep_trains_in_float64_from_the_float32_start(tmp_path):
    """dtype = "float64" trains in float64 (the float32 and float64 descents differ run by run) from the same
    initial points (a float64 run of zero steps starts where the float32 one does)."""
    a = _sweep(tmp_path, "a", protocol="full", grad_tol=1e-5)
    b = _sweep(tmp_path, "b", protocol="full", grad_tol=1e-5, dtype="float64")
    assert not np.array_equal(a["train_loss"], b["train_loss"])
    assert (a["status"] == b["status"]).mean() > 0.9
    cfg = config.from_dict({**BASE, "runs": 4, "save_weights": True, "train": {"steps": 1, "grad_tol": 1e9}})
    for dtype in ("float32", "float64"):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, dtype=dtype, protocol="full"))
        run_sweep(c, tmp_path / dtype, progress=False)
    w32, w64 = (np.stack(pd.read_parquet(tmp_path / x / "runs.parquet")["W"]) for x in ("float32", "float64"))
    assert (pd.read_parquet(tmp_path / "float64" / "runs.parquet")["steps"] == 0).all()
    np.testing.assert_array_equal(w32, w64)


def test_an_offer_holds_a_bounded_block_of_hessians_and_decides_as_in_one_batch(monkeypatch):
    """An offer's Hessians are computed :func:`block_runs` runs at a time (its memory does not grow with the
    chunk: at k = d = 15 one batch of a chunk's Hessians took 6 GB), and the decisions, points and
    representatives are those of one batch."""
    from jaxsym.certify import basins as bmod

    k, lr = 7, 5 / 7
    runs, W0, g0 = _iterates(k, lr, 40)
    whole = _basins(k, lr)
    one = whole.offer(runs, W0, g0)
    monkeypatch.setattr(bmod, "OFFER_BLOCK_BYTES", 3 * 8 * (k * k) ** 2)  # three Hessians a block
    assert bmod.block_runs(W0) == 3
    small = _basins(k, lr)
    sizes, matched = [], []
    hessian, distance = small.hessian, small.distance
    small.hessian = lambda Ws: sizes.append(len(Ws)) or hessian(Ws)
    small.distance = lambda Xs, H: matched.append(len(Xs)) or distance(Xs, H)  # no Hessian leaves its program
    blocked = small.offer(runs, W0, g0)
    assert max(sizes) <= 3 and sum(sizes) + sum(matched) >= len(runs) and sum(matched) > 0
    for a, b in zip(one, blocked):
        np.testing.assert_array_equal(a, b)
    assert [r.run for r in whole.reps] == [r.run for r in small.reps]
