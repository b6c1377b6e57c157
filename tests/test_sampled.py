"""Sampled objectives: input laws, networks and their symmetry, the SGD engine, the empirical certificate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym import config
from jaxsym.certify import empirical
from jaxsym.engine import sgd as sampled
from jaxsym.io import checkpoint
from jaxsym.landscape import activations, distributions, model, networks
from jaxsym.landscape.distributions import DISTRIBUTION_NAMES
from jaxsym.symmetry import group as symmetry

LAWS = [n for n in DISTRIBUTION_NAMES if n != "user"]


# --------------------------------------------------------------------------------------------------
# Input laws
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAWS)
def test_laws_have_the_documented_second_moments(name):
    d, n, shift = 5, 200_000, 0.5
    X = np.asarray(distributions.make_sampler(name, shift=shift)(jax.random.key(1), n, d, jnp.float32), np.float64)
    assert X.shape == (n, d) and np.all(np.isfinite(X))
    M = X.T @ X / n
    expected = np.eye(d) + (shift**2 * (np.ones((d, d)) - np.eye(d)) if name == "mixture" else 0)
    # standard error of a second moment ≤ √(E x⁴/n); x⁴ moments are ≤ 25 for every law here (Student ν = 5: 9)
    assert np.max(np.abs(M - expected)) < 5 * np.sqrt(25 / n)
    if name == "sphere":
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), np.sqrt(d), rtol=1e-5)
    if name == "cube":
        assert np.max(np.abs(X)) <= np.sqrt(3) + 1e-6


def test_user_sampler_is_loaded_by_name_and_bad_names_are_clear_errors():
    fn = distributions.make_sampler("user", sampler="jaxsym.landscape.distributions:cube")
    key = jax.random.key(0)
    np.testing.assert_array_equal(fn(key, 7, 3, jnp.float32), distributions.cube(key, 7, 3, jnp.float32))
    for bad in ("nocolon", "jaxsym.landscape.distributions:nope", "no_such_module_xyz:f",
                "jaxsym.landscape.distributions:STUDENT_DOF"):
        with pytest.raises(ValueError, match="sampler"):
            distributions.make_sampler("user", sampler=bad)
    with pytest.raises(ValueError):
        distributions.make_sampler("user")


@pytest.mark.parametrize("name,activation", [("gaussian", "relu"), ("sphere", "relu"), ("student_t", "relu"),
                                             ("gaussian", "erf")])
def test_sampled_loss_approaches_the_closed_form(name, activation):
    """F̂_n → F: within 4 standard errors at every n, and the error bar shrinks like 1/√n."""
    d = k = 4
    rng = np.random.default_rng(3)
    W = rng.normal(size=(k, d)) / np.sqrt(d)
    V = np.eye(k, d)
    exact = float(activations.loss(jnp.asarray(W), jnp.asarray(V), activation))
    if name != "gaussian":
        assert distributions.closed_form_scale(name, activation) == 1.0
    sampler = distributions.make_sampler(name)
    ses = []
    for i, n in enumerate((2**10, 2**14, 2**18)):
        X = np.asarray(sampler(jax.random.key(i), n, d, jnp.float32), np.float64)
        sig = activations.ACTIVATIONS[activation].sigma
        r = np.asarray(sig(X @ W.T)).sum(1) - np.asarray(sig(X @ V.T)).sum(1)
        per = 0.5 * r**2
        se = per.std(ddof=1) / np.sqrt(n)
        assert abs(per.mean() - exact) < 4 * se, (n, per.mean(), exact, se)
        ses.append(se)
    assert ses[2] < ses[0] / 8  # 16× the samples, error bar ~4× smaller per step of 16


def test_no_closed_form_is_claimed_where_none_is_known():
    assert distributions.closed_form_scale("cube", "relu") is None
    assert distributions.closed_form_scale("mixture", "relu") is None
    assert distributions.closed_form_scale("sphere", "erf") is None


# --------------------------------------------------------------------------------------------------
# Networks and their symmetry
# --------------------------------------------------------------------------------------------------
def _random_net(seed, d, k, L, train_output):
    p = networks.init(jax.random.key(seed), d, k, L, train_output=train_output, dtype=jnp.float64)
    return jax.tree.map(np.asarray, p)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(1, 3), train_output=st.booleans(), d=st.integers(2, 5),
       k=st.integers(2, 5))
def test_networks_are_invariant_under_hidden_permutations_and_equivariant_in_inputs(seed, L, train_output, d, k):
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        params = _random_net(seed, d, k, L, train_output)
        net = networks.merge(params, k)
        X = rng.normal(size=(64, d))
        g = symmetry.Element(tuple([rng.permutation(d)] + [rng.permutation(k) for _ in range(L)]))
        moved, a = symmetry.apply_net(g, list(net.layers), np.asarray(net.a))
        # hidden units: f unchanged; inputs: f(g·W)(P₀x) = f(W)(x)
        Xp = X[:, np.argsort(g.perms[0])]
        np.testing.assert_allclose(networks.forward(networks.Net(tuple(moved), a), Xp), networks.forward(net, X),
                                   rtol=1e-12, atol=1e-12)
        # loss on a sample whose inputs are permuted the same way (an exchangeable law does this in law)
        y = rng.normal(size=64)
        p2 = networks.Trainable(tuple(moved), a if train_output else None)
        np.testing.assert_allclose(networks.sample_loss(p2, Xp, y, k), networks.sample_loss(params, X, y, k),
                                   rtol=1e-12)
        # the ReLU rescaling: canonical() gives the same function, with unit incoming rows where rescalable
        can = networks.canonical(params, "relu")
        np.testing.assert_allclose(networks.forward(networks.merge(can, k), X), networks.forward(net, X),
                                   rtol=1e-10, atol=1e-12)
        for layer in networks.rescalable_layers(L, train_output):
            np.testing.assert_allclose(np.linalg.norm(can.layers[layer - 1], axis=1), 1.0)
        flat = networks.flatten(params)
        assert flat.size == networks.n_params(d, k, L, train_output)
        back = networks.unflatten(flat, d, k, L, train_output)
        assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params)))


@pytest.mark.parametrize("L", [1, 2, 3])
def test_identity_teacher_has_isotropy_delta_s_d(L):
    d = 5
    t = networks.teacher(d, d, L)
    iso = symmetry.net_isotropy([np.asarray(W) for W in t.layers], np.asarray(t.a))
    assert iso.order == np.prod(np.arange(1, d + 1)) and iso.name == "ΔS5"
    assert iso.layer_orbits == [[d]] * (L + 1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(0, 3))
def test_product_fast_path_agrees_with_the_orbit_stabiliser_chain_and_is_conjugation_invariant(seed, p):
    """On (k, d) matrices the two algorithms of the symmetry core give the same group: the product-type fast
    path (``isotropy(W)``) and the orbit–stabiliser chain (forced by constant output weights ``a = 𝟙``, which
    do not change the group); g·W has the same isotropy order and find_element recovers an element
    mapping W to g·W."""
    k = 6
    rng = np.random.default_rng(seed)
    x, y, z, u = rng.normal(size=4)
    W = np.full((k, k), y)
    np.fill_diagonal(W, x)
    W[k - p:, :] = z
    for i in range(k - p, k):
        W[i, i] = u
    if seed % 3 == 0:
        W = rng.normal(size=(k, k))
    if seed % 5 == 0:  # identical columns: a kernel factor fixing every neuron
        W[:, 1] = W[:, 0]
    two = symmetry.isotropy(W)
    chain = symmetry.net_isotropy([W], np.ones(k))
    assert (chain.order, chain.neuron_orbits, chain.coordinate_orbits) == (two.order, two.neuron_orbits,
                                                                           two.coordinate_orbits)
    g = symmetry.Element.of(rng.permutation(k), rng.permutation(k))
    h = symmetry.find_net_element([W], None, [g(W)], None)
    assert h is not None
    assert np.allclose(symmetry.apply_net(h, [W])[0][0], g(W))
    assert symmetry.net_isotropy([g(W)]).order == two.order
    assert symmetry.find_net_element([W], None, [g(W) + 1e-3 * rng.normal(size=W.shape)], None) is None


def test_layered_isotropy_of_a_deep_net_with_a_broken_unit():
    """Two hidden layers, unit 0 of layer 1 made different: the group is Δ(S4×S1) on every layer."""
    d = 5
    W1, W2, a = np.eye(d) + 0.1, np.eye(d) * 0.7 + 0.05, np.ones(d)
    W1 = W1.copy()
    W1[0, 0] = 2.0
    iso = symmetry.net_isotropy([W1, W2], a)
    assert iso.order == 24 and iso.name == "Δ(S4×S1)"
    assert iso.layer_orbits == [[4, 1]] * 3


# --------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------
def _problem(distribution="cube", mode="online", L=1, train_output=False, d=4, **kw):
    scfg = config.SampledConfig(distribution=distribution, mode=mode, hidden_layers=L, train_output=train_output,
                                n_train=512, batch_size=32, **kw)
    return scfg, sampled.make_problem(scfg, d, d, d, "relu", 0)


@pytest.mark.parametrize("mode", ["online", "fixed"])
def test_engine_results_do_not_depend_on_chunking_or_segments(mode):
    scfg, p = _problem(mode=mode, L=2, train_output=True)
    tc = config.TrainConfig(learning_rate=0.05, steps=60)
    eng = sampled.make_engine(p, tc, scfg, 0)
    whole = eng.finish(eng.advance(eng.init(jnp.arange(6, dtype=jnp.uint32)), jnp.int32(60)))
    s = eng.init(jnp.arange(3, 6, dtype=jnp.uint32))
    s = eng.advance(eng.advance(s, jnp.int32(25)), jnp.int32(60))
    part = eng.finish(s)
    for x, y in zip(jax.tree.leaves(whole), jax.tree.leaves(part)):
        np.testing.assert_array_equal(np.asarray(x)[3:], np.asarray(y))
    assert int(eng.n_running(s)) == 0 and not np.any(np.asarray(whole.diverged))


def test_engine_state_survives_an_orbax_checkpoint(tmp_path):
    scfg, p = _problem(train_output=False)
    eng = sampled.make_engine(p, config.TrainConfig(learning_rate=0.05, steps=40), scfg, 0)
    s = eng.advance(eng.init(jnp.arange(4, dtype=jnp.uint32)), jnp.int32(20))
    assert checkpoint.save(tmp_path / "ck", 20, s)
    step, back = checkpoint.restore(tmp_path / "ck", s)
    assert step == 20
    a = eng.finish(eng.advance(s, jnp.int32(40)))
    b = eng.finish(eng.advance(jax.tree.map(jnp.asarray, back), jnp.int32(40)))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_diverging_run_is_flagged_not_raised():
    scfg, p = _problem(distribution="laplace")
    eng = sampled.make_engine(p, config.TrainConfig(learning_rate=50.0, steps=200), scfg, 0)
    res = eng.finish(eng.advance(eng.init(jnp.arange(4, dtype=jnp.uint32)), jnp.int32(200)))
    assert np.all(np.asarray(res.diverged))


def test_sgd_reaches_the_global_minimum_where_there_is_no_spurious_one():
    """k = d = 3 has no spurious minimum: online SGD on Gaussian samples ends at the teacher's orbit (its
    closed-form loss, an independent check of the sampled training, is tiny)."""
    scfg, p = _problem(distribution="gaussian", d=3)
    eng = sampled.make_engine(p, config.TrainConfig(learning_rate=0.1, steps=4000), scfg, 0)
    res = eng.finish(eng.advance(eng.init(jnp.arange(4, dtype=jnp.uint32)), jnp.int32(4000)))
    for w in np.asarray(res.params.layers[0]):
        assert float(model.loss(jnp.asarray(w), jnp.eye(3))) < 1e-4


# --------------------------------------------------------------------------------------------------
# Empirical certificate
# --------------------------------------------------------------------------------------------------
def test_empirical_certificate_matches_the_closed_form_at_a_random_point_and_at_the_teacher():
    """Gaussian inputs, two-layer ReLU with a = 𝟙: the sampled gradient and the finite-difference Hessian agree
    with the closed forms of jaxsym.landscape.model within their error bars; at the teacher λ_min ≈ 1/4 − 1/2π."""
    d = 3
    with jax.enable_x64(True):
        _, p = _problem(distribution="gaussian", d=d)
        X, y = p.draw(sampled.HESS_SET, 2**17, 0, jnp.float64)
        rng = np.random.default_rng(0)
        W = np.eye(d) + 0.3 * rng.normal(size=(d, d))
        params = networks.Trainable((jnp.asarray(W),), None)
        ev = empirical.evaluate(p, params, X, y, 16)
        g_exact = np.linalg.norm(np.asarray(model.grad(jnp.asarray(W), jnp.eye(d))))
        assert abs(float(ev.grad_norm) - g_exact) < 4 * float(ev.grad_se) + 1e-3
        teacher = networks.Trainable((jnp.eye(d),), None)
        cert = empirical.certify_point(p, teacher, X, y, eval_blocks=8, hess_blocks=8, fd_step=0.02,
                                     tangents=np.zeros((0, d * d)))
        exact = np.linalg.eigvalsh(np.asarray(model.hessian(jnp.eye(d), jnp.eye(d))))
        assert cert.loss == 0.0 and cert.grad_norm == 0.0
        assert abs(cert.eigs[0] - (0.25 - 1 / (2 * np.pi))) < max(4 * cert.hess_min_se, 5e-3)
        np.testing.assert_allclose(cert.eigs, exact, atol=0.03)
        assert 0 < cert.hess_min_se < 0.02


def test_rescaling_directions_are_projected_out():
    """Trainable output layer: at the teacher the full Hessian has k null directions (the ReLU rescalings);
    the certificate removes exactly those and the rest is positive."""
    d = k = 3
    with jax.enable_x64(True):
        _, p = _problem(distribution="gaussian", d=d, train_output=True)
        X, y = p.draw(sampled.HESS_SET, 2**16, 0, jnp.float64)
        teacher = networks.Trainable((jnp.eye(d),), jnp.ones(k))
        T = networks.scaling_tangents(jax.tree.map(np.asarray, teacher), "relu")
        assert T.shape == (k, d * k + k)
        Hb = empirical.fd_hessian_blocks(p, teacher, X, y, 4, 0.02)
        H = Hb.mean(0)
        assert np.max(np.abs(H @ T.T)) < 0.02  # rescalings are (numerically) null directions
        cert = empirical.certify_point(p, teacher, X, y, eval_blocks=4, hess_blocks=4, fd_step=0.02, tangents=T)
        assert cert.n_null == k and len(cert.eigs) == d * k
        assert cert.eigs[0] > 0.02


# --------------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------------
def _sampled_cfg(steps=1500, **sampled_kw):
    raw = {"name": "s", "seed": 0, "runs": 8, "chunk_size": 4, "grid": {"d": [4], "k": "d"},
           "train": {"learning_rate": 0.1, "steps": steps},
           "sampled": {"eval_samples": 4096, "hess_samples": 8192, **sampled_kw}}
    return config.from_dict(raw)


@pytest.mark.parametrize("kw", [{"distribution": "cube"}, {"distribution": "mixture", "hidden_layers": 2,
                                                          "train_output": True, "mode": "fixed"}])
def test_empirical_sweep_tables_and_resume(kw, tmp_path):
    from jaxsym.certify.exact import STATUSES
    from jaxsym.sweep.driver import run_sweep

    cfg = _sampled_cfg(**kw)
    seen = []

    def stop_after_first(cell, start, stop):
        seen.append(start)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, tmp_path / "a", progress=False, on_chunk=stop_after_first)
    run_sweep(cfg, tmp_path / "a", progress=False)   # resumes: only the second chunk is trained
    run_sweep(cfg, tmp_path / "b", progress=False)   # uninterrupted
    import pandas as pd

    ra, ma = pd.read_parquet(tmp_path / "a" / "runs.parquet"), pd.read_parquet(tmp_path / "a" / "minima.parquet")
    rb, mb = pd.read_parquet(tmp_path / "b" / "runs.parquet"), pd.read_parquet(tmp_path / "b" / "minima.parquet")
    pd.testing.assert_frame_equal(ra, rb)
    pd.testing.assert_frame_equal(ma.drop(columns=["W"]), mb.drop(columns=["W"]))
    assert sorted(ra["run"]) == list(range(8)) and set(ra["status"]) <= set(STATUSES)
    for row in ma.itertuples():
        assert (ra["orbit"] == row.orbit).sum() == row.count
        assert (ra.loc[ra["orbit"] == row.orbit, "status"] == row.status).all()
        assert len(row.W) == networks.n_params(4, 4, cfg.sampled.hidden_layers, cfg.sampled.train_output)
        assert row.isotropy_order >= 1 and len(row.layer_orbits) == cfg.sampled.hidden_layers + 1
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "beyond_gaussian_tables.py"
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "a")], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "spurious isotropy (runs)" in res.stdout and (tmp_path / "a" / "tables.md").exists()
    from jaxsym.report.markdown import write_report

    assert "empirical certificate" in write_report(tmp_path / "a").read_text()
    if cfg.sampled.hidden_layers == 1:  # the short deep run need not reach its global minimum
        glob = ma[ma["status"] == "global"]
        assert len(glob) == 1 and glob.iloc[0]["isotropy"] == "ΔS4"


def test_closed_form_sweep_uses_the_exact_certificate(tmp_path):
    """Sphere inputs, two-layer ReLU with a = 𝟙: sampled SGD, then the float64 closed-form polish (‖∇F‖ ≤ 1e-10
    exactly as in the Gaussian sweeps)."""
    import pandas as pd

    from jaxsym.sweep.driver import run_sweep

    cfg = _sampled_cfg(distribution="sphere", steps=5000)
    run_sweep(cfg, tmp_path, progress=False)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    crit = runs[runs["status"].isin(["global", "spurious"])]
    assert len(crit) >= 6 and (crit["grad_norm"] <= cfg.certify.grad_tol).all()
    # SGD leaves ‖∇F‖ ~ 1e-3: runs are polished up to max(certify.polish_from, 10·sampled.grad_tol) = 0.02
    near = runs["train_grad_norm"] <= 10 * cfg.sampled.grad_tol
    assert (runs.loc[near, "polish_iters"] > 0).all()
    minima = pd.read_parquet(tmp_path / "minima.parquet")
    assert minima.iloc[0]["isotropy"] == "ΔS4" and minima.iloc[0]["n_distinct_eigs"] == 6


@pytest.mark.parametrize("raw,match", [
    ({"distribution": "normal"}, "sampled.distribution"),
    ({"distribution": "user"}, "sampler"),
    ({"mode": "batch"}, "sampled.mode"),
    ({"shift": 1.5}, "shift"),
    ({"eval_samples": 1000, "eval_blocks": 16}, "divide"),
    ({"hidden_layer": 2}, "unknown key"),
])
def test_bad_sampled_configs_are_clear_errors(raw, match):
    with pytest.raises(config.ConfigError, match=match):
        _sampled_cfg(**raw)


def test_sampled_config_round_trips_through_the_manifest():
    cfg = _sampled_cfg(distribution="mixture", shift=0.3, hidden_layers=2)
    back = config.from_manifest(cfg.to_dict())
    assert back == cfg and back.fingerprint() == cfg.fingerprint()
    assert _sampled_cfg(distribution="cube").fingerprint() != cfg.fingerprint()


def test_deep_runs_are_grouped_by_first_layer_type_and_loss():
    """Points on one continuum (same first layer, different W_2 ≥ 0 with aᵀW_2 = 𝟙ᵀ: all global minima) form
    one group; a different loss or first-layer type starts another."""
    from jaxsym.landscape.students import BuiltIn
    from jaxsym.sweep.sampled import group_by_type

    d = 4
    rng = np.random.default_rng(0)
    pts, losses = [], []
    for _ in range(3):  # global minima: W_1 = I, W_2 = column-stochastic-like positive, a = 𝟙
        W2 = rng.uniform(0.1, 1.0, size=(d, d))
        W2 /= W2.sum(axis=0, keepdims=True)
        pts.append(networks.Trainable((np.eye(d), W2), np.ones(d)))
        losses.append(0.0)
    broken = np.eye(d)
    broken[0] = [0.6, 0.8, 0, 0]
    pts += [networks.Trainable((broken, np.eye(d)), np.ones(d)), networks.Trainable((broken, np.eye(d)), np.ones(d))]
    losses += [0.05, 0.08]
    student = BuiltIn(d, d, 2, True, "relu")
    reps, firsts, counts, labels = group_by_type(student, pts, np.array(losses), np.full(5, 1e-4), 1e-6,
                                                 np.zeros(d, np.int64), 1e-3)
    assert counts == [3, 1, 1] and firsts == [0, 3, 4] and labels.tolist() == [0, 0, 0, 1, 2]
    assert np.array_equal(reps[0], networks.flatten(pts[0]))


def test_a_sampler_that_fails_or_returns_the_wrong_shape_is_a_config_error():
    from jaxsym.config import ConfigError, SampledConfig
    from jaxsym.engine.sgd import make_problem

    for name, match in (("os:system", "fails on a test call"),
                        ("jaxsym.landscape.model:identity_target", "fails|shape")):
        with pytest.raises(ConfigError, match=match):
            make_problem(SampledConfig(distribution="user", sampler=name), 3, 3, 3, "relu", 0)


def test_a_chunk_without_segment_steps_is_segmented_by_time_with_the_same_result(monkeypatch):
    """Without ``segment_steps`` a chunk is advanced in segments sized to take about SEGMENT_S seconds (so a
    stop or a checkpoint never waits for a whole chunk), and its result is bit-identical to one call."""
    from jaxsym.engine import interface

    scfg, p = _problem(mode="online", L=1, train_output=True)
    tc = config.TrainConfig(learning_rate=0.05, steps=600)
    eng = sampled.make_engine(p, tc, scfg, 0)
    runs = np.arange(8)
    whole = eng.finish(eng.advance(eng.init(jnp.asarray(runs, jnp.uint32)), jnp.int32(600)))
    bounds = []

    class Counting:  # the engine, recording every segment's bound
        def __getattr__(self, name):
            return getattr(eng, name)

        def advance(self, state, until):
            bounds.append(int(until))
            return eng.advance(state, until)

    monkeypatch.setattr(interface, "FIRST_SEGMENT", 16)
    monkeypatch.setattr(interface, "SEGMENT_S", 1e-4)  # tiny segments: many of them
    got = interface.train_chunk(Counting(), runs, steps=600)
    assert len(bounds) > 2 and bounds[0] == 16 and bounds == sorted(bounds)
    for x, y in zip(jax.tree.leaves(whole), jax.tree.leaves(got)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    bounds.clear()
    monkeypatch.setattr(interface, "SEGMENT_S", 1e3)  # a fast chunk: one short segment, then the rest at once
    interface.train_chunk(Counting(), runs, steps=600)
    assert bounds[0] == 16 and len(bounds) == 2 and bounds[1] >= 600
    bounds.clear()
    interface.train_chunk(Counting(), runs, steps=600, segment_steps=250)  # the config's segments, fixed
    assert bounds == [250, 500, 750]
