"""Flax students and teachers (jaxsym.landscape.flax_students): structure and symmetry read from the module,
the built-in network reproduced, planted isotropy against a brute force, and bad modules as clear errors."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym import config
from jaxsym.examples import networks as ex
from jaxsym.landscape import flax_students as fs
from jaxsym.landscape import networks
from jaxsym.landscape.students import BuiltIn
from jaxsym.symmetry.groups import LayeredUnits


class Deep(nnx.Module):
    """Two hidden layers of different widths with biases, trained output: f = a·relu(K₂ᵀ relu(K₁ᵀx + b₁) + b₂) + c."""

    def __init__(self, d: int, k: int, rngs: nnx.Rngs) -> None:
        self.first = nnx.Linear(d, k, rngs=rngs, bias_init=nnx.initializers.normal(0.5))
        self.second = nnx.Linear(k, k + 1, rngs=rngs, bias_init=nnx.initializers.normal(0.5))
        self.head = nnx.Linear(k + 1, 1, rngs=rngs, bias_init=nnx.initializers.normal(0.5))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(jax.nn.relu(self.second(jax.nn.relu(self.first(x)))))


def _f(student: fs.FlaxStudent, params, X) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(student.apply(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params),
                                        jnp.asarray(X, jnp.float64)))


# --------------------------------------------------------------------------------------------------
# Structure from the module
# --------------------------------------------------------------------------------------------------
def test_the_structure_is_read_from_the_module():
    two = fs.build_student(ex.two_layer_relu_bias, 4, 3)
    assert (two.hidden_layers, two.train_output, two.constant, two.rescalable) == (1, True, True, (1,))
    fixed = fs.build_student(ex.sum_of_relus, 4, 3)
    assert (fixed.hidden_layers, fixed.train_output, fixed.constant, fixed.rescalable) == (1, False, False, ())
    deep = fs.build_student(Deep, 3, 4)  # attribute order (first, head, second) is not the chain's
    assert [link.kernel[0] for link in deep.chain] == ["first", "second", "head"]
    assert (deep.hidden_layers, deep.train_output, deep.rescalable) == (2, True, (1, 2))

    class Tanh(nnx.Module):
        def __init__(self, d, k, rngs):
            self.h, self.o = nnx.Linear(d, k, rngs=rngs), nnx.Linear(k, 1, rngs=rngs)

        def __call__(self, x):
            return self.o(jnp.tanh(self.h(x)))

    tanh = fs.build_student(Tanh, 3, 3)
    assert tanh.rescalable == () and tanh.odd == (1,)  # tanh is odd, not positively homogeneous
    assert two.odd == deep.odd == ()


def test_odd_units_are_signed_canonically_and_equivalent_points_cluster_together():
    """Flipping a tanh unit's signs (w, b, a) → (−w, −b, −a) keeps f; the canonical points of a point and of its
    flipped and permuted image are equal, so they match modulo the permutations."""
    from jaxsym.symmetry.group import Element

    class Tanh(nnx.Module):
        def __init__(self, d, k, rngs):
            self.h = nnx.Linear(d, k, rngs=rngs, bias_init=nnx.initializers.normal(1.0))
            self.o = nnx.Linear(k, 1, rngs=rngs)

        def __call__(self, x):
            return self.o(jnp.tanh(self.h(x)))

    student = fs.build_student(Tanh, 3, 4)
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), student.init(jax.random.key(7), 1.0))
    q = jax.tree.map(np.copy, p)
    q["h"]["kernel"][:, 1] *= -1
    q["h"]["bias"][1] *= -1
    q["o"]["kernel"][1] *= -1
    X = np.random.default_rng(0).normal(size=(16, 3))
    np.testing.assert_allclose(_f(student, q, X), _f(student, p, X), rtol=1e-12, atol=1e-12)
    cp, cq = student.canonical(p), student.canonical(q)
    assert all(np.allclose(u, v) for u, v in zip(jax.tree.leaves(cp), jax.tree.leaves(cq)))
    assert np.all(cp["o"]["kernel"] >= 0)
    g = Element((np.arange(4), np.array([2, 0, 3, 1, 4])))
    group = LayeredUnits(constant=True)
    moved = student.from_layered(*group.act(g, student.layered(q)))
    assert group.match(student.layered(student.canonical(moved)), student.layered(cp), 1e-9) is not None
    assert group.match(student.layered(moved), student.layered(p), 1e-9) is None  # not without the signs


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(["bias", "deep", "plain"]))
def test_layered_form_symmetries_and_rescaling_keep_the_function(seed, which):
    """Property: the layered form round-trips; a random element of the group (hidden permutations) and the
    canonical rescaling leave f unchanged; each rescaling tangent is a null direction of f."""
    factory, d, k = {"bias": (ex.two_layer_relu_bias, 3, 4), "deep": (Deep, 3, 3), "plain": (ex.two_layer_relu, 4, 4)}[
        which]
    student = fs.build_student(factory, d, k)
    params = jax.tree.map(lambda x: np.asarray(x, np.float64), student.init(jax.random.key(seed), 1.0))
    if which == "bias":  # biases start at zero: give them values
        params["hidden"]["bias"] = np.random.default_rng(seed).normal(size=k)
    X = np.random.default_rng(seed + 1).normal(size=(32, d))
    ref = _f(student, params, X)
    layers, a = student.layered(params)
    back = student.from_layered(layers, a)
    assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(back), jax.tree.leaves(params)))
    rng = np.random.default_rng(seed)
    sizes = [d] + [W.shape[0] - int(student.constant) for W in layers]
    perms = [rng.permutation(n) if i else np.arange(n) for i, n in enumerate(sizes)]
    if student.constant:
        perms = [np.append(p, len(p)) for p in perms]
    from jaxsym.symmetry.group import Element

    moved = LayeredUnits(constant=student.constant).act(Element(tuple(perms)), (layers, a))
    np.testing.assert_allclose(_f(student, student.from_layered(*moved), X), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_f(student, student.canonical(params), X), ref, rtol=1e-10, atol=1e-12)
    flat = student.flatten(params)
    for t in student.tangents(params):
        h = 1e-6
        up, down = (_f(student, student.unflatten(flat + s * h * t), X) for s in (1, -1))
        assert np.max(np.abs(up - down)) / (2 * h) < 1e-6 * (1 + np.max(np.abs(ref)))


# --------------------------------------------------------------------------------------------------
# Planted symmetry: isotropy from the module against a brute force over the whole group
# --------------------------------------------------------------------------------------------------
def _brute_force_order(kernel: np.ndarray, bias: np.ndarray, out: np.ndarray, out_bias: float,
                       colours: np.ndarray) -> int:
    """|{(ρ, π) ∈ S_d × S_k : ρ preserves colours, the permuted parameters equal the parameters}|, counted on
    the flax parameters themselves."""
    d, k = kernel.shape
    count = 0
    for rho in itertools.permutations(range(d)):
        if not np.array_equal(colours[list(rho)], colours):
            continue
        for pi in itertools.permutations(range(k)):
            K = np.empty_like(kernel)
            K[np.ix_(list(rho), list(pi))] = kernel
            b, o = np.empty_like(bias), np.empty_like(out)
            b[list(pi)], o[list(pi)] = bias, out
            if np.allclose(K, kernel) and np.allclose(b, bias) and np.allclose(o, out):
                count += 1
    return count


@pytest.mark.parametrize("broken, name", [(None, "ΔS3"), (0, "Δ(S2×S1)")])
def test_a_planted_symmetric_teacher_s_isotropy_is_found_from_the_model(broken, name):
    """A teacher module with weights αI + β, equal biases and equal output weights has isotropy ΔS3 (order 6);
    changing one unit's bias breaks it to Δ(S2×S1). Read from the module (structure, bias as a constant unit,
    input colours from the teacher) and counted by brute force over S3 × S3."""
    d = k = 3

    def planted(d: int, m: int) -> nnx.Module:
        net = ex.TwoLayer(d, m, nnx.Rngs(0), bias=True)
        net.hidden.kernel[...] = 0.8 * jnp.eye(d, m) + 0.1
        net.hidden.bias[...] = jnp.full(m, -0.2).at[0].set(-0.2 if broken is None else 0.3)
        net.out.kernel[...] = jnp.ones((m, 1))
        return net

    colours = fs.input_colours(fs.build_teacher(planted, d, k), d)
    assert colours.tolist() == ([0, 0, 0] if broken is None else [0, 1, 1])
    student = fs.build_student(lambda d, k, rngs: planted(d, k), d, k)
    params = nnx.to_pure_dict(nnx.state(planted(d, k), nnx.Param))
    iso = LayeredUnits(colours, constant=True).isotropy(student.layered(params), 1e-9)
    p = jax.tree.map(np.asarray, params)
    order = _brute_force_order(p["hidden"]["kernel"], p["hidden"]["bias"], p["out"]["kernel"][:, 0],
                               float(p["out"]["bias"][0]), colours)
    assert iso.order == order == (6 if broken is None else 2)
    assert iso.name == name and iso.exact
    assert sum(iso.neuron_orbits) == k and sum(iso.coordinate_orbits) == d  # the constant units left out


def test_input_colours_of_the_identity_teacher_are_found_from_it():
    labels = fs.build_teacher(ex.identity_teacher, 5, 3)
    assert fs.input_colours(labels, 5).tolist() == [0, 0, 0, 1, 1]
    X = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(labels(jnp.asarray(X))), np.maximum(X[:, :3], 0).sum(axis=1), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# The built-in network, reproduced by its flax copy
# --------------------------------------------------------------------------------------------------
def test_the_flax_copy_has_the_built_in_objective_certificate_and_symmetry():
    """At the same point (built-in W, a ↔ flax kernel Wᵀ, out a), the two students give the same sampled
    loss, gradient, Hessian spectrum (float64, same samples), canonical form and isotropy."""
    from jaxsym.certify.empirical import certify_point
    from jaxsym.engine.sgd import HESS_SET, make_problem

    d = k = 3
    base = config.SampledConfig(train_output=True, hess_samples=4096, hess_blocks=8)
    flax_cfg = config.SampledConfig(train_output=True, hess_samples=4096, hess_blocks=8,
                                    student="jaxsym.examples.networks:two_layer_relu")
    rng = np.random.default_rng(3)
    W, a = rng.normal(size=(k, d)), rng.normal(size=k)
    certs, isos, canon = [], [], []
    with jax.enable_x64(True):
        for scfg in (base, flax_cfg):
            p = make_problem(scfg, d, k, k, "relu", 0)
            params = networks.Trainable((W,), a) if isinstance(p.student, BuiltIn) else \
                {"hidden": {"kernel": W.T.copy()}, "out": {"kernel": a[:, None].copy()}}
            X, y = p.draw(HESS_SET, 4096, 0, jnp.float64)
            q = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
            certs.append(certify_point(p, q, X, y, eval_blocks=8, hess_blocks=8, fd_step=0.02,
                                       tangents=p.student.tangents(params)))
            layers, out = p.student.layered(p.student.canonical(params))
            canon.append((layers[0], out))
            isos.append(LayeredUnits(constant=p.student.constant).isotropy((layers, out), 1e-6).name)
    b, f = certs
    assert b.loss == pytest.approx(f.loss, rel=1e-12) and b.grad_norm == pytest.approx(f.grad_norm, rel=1e-9)
    np.testing.assert_allclose(b.eigs, f.eigs, rtol=1e-8, atol=1e-10)
    assert b.n_null == f.n_null == k
    np.testing.assert_allclose(canon[0][0], canon[1][0], atol=1e-12)
    assert isos[0] == isos[1]


def test_a_flax_copy_of_the_built_in_sweep_reproduces_it_run_by_run(tmp_path):
    """The same sweep with the built-in network and with its flax copy started at the same points
    (``jaxsym.examples.networks:builtin_copy``): every run's status, held-out loss, end point and orbit's
    isotropy are the same, and so are the distinct minima (the symmetry read from the module is the built-in
    network's)."""
    import jaxsym

    raw = {"name": "s", "seed": 0, "runs": 16, "chunk_size": 8, "grid": {"d": [3], "k": "d"},
           "train": {"learning_rate": 0.1, "steps": 4000},
           "sampled": {"train_output": True, "eval_samples": 4096, "hess_samples": 8192}}
    built = jaxsym.run(raw, tmp_path / "b", progress=False)
    flax_raw = {**raw, "sampled": {**raw["sampled"], "student": "jaxsym.examples.networks:builtin_copy"}}
    flax = jaxsym.run(flax_raw, tmp_path / "f", progress=False)
    rb, rf = built.runs.sort_values("run"), flax.runs.sort_values("run")
    assert rb["status"].tolist() == rf["status"].tolist() and "global" in set(rb["status"])
    # losses near 0 (global minima, ~1e-13) differ by the end points' rounding: absolute there
    np.testing.assert_allclose(rf["loss"], rb["loss"], rtol=1e-6, atol=1e-11)
    fstudent = fs.build_student(ex.builtin_copy, 3, 3)
    for wb, wf in zip(rb["W"], rf["W"]):  # the same end point in the two layouts, modulo the rescalings
        # (w_i, a_i) -> (c w_i, a_i / c): minima are not isolated, and where the rounding of the two
        # implementations sends a run along that flat direction its a_i w_i stay the same; two float32
        # descents stopped at ‖∇‖ ≤ grad_tol differ by up to grad_tol / λ along slow directions (a layout
        # error would differ by O(1))
        layers, a = fstudent.layered(fstudent.unflatten(np.asarray(wf)))
        Wb, ab = np.reshape(wb[:9], (3, 3)), np.asarray(wb[9:])
        np.testing.assert_allclose(layers[0] * a[:, None], Wb * ab[:, None], atol=1e-4)
    iso_b = dict(zip(built.minima["orbit"], built.minima["isotropy"]))
    iso_f = dict(zip(flax.minima["orbit"], flax.minima["isotropy"]))
    assert [iso_b.get(o) for o in rb["orbit"]] == [iso_f.get(o) for o in rf["orbit"]]
    assert built.minima["isotropy"].tolist() == flax.minima["isotropy"].tolist()
    assert built.minima["count"].tolist() == flax.minima["count"].tolist()
    assert set(flax.runs["hidden_layers"]) == {1} and set(flax.runs["train_output"]) == {True}
    from jaxsym.report.markdown import write_report

    text = write_report(tmp_path / "f").read_text()  # the report names the module and its structure as read
    assert "the flax student `jaxsym.examples.networks:builtin_copy` (1 hidden layer(s), output trained)" in text


# --------------------------------------------------------------------------------------------------
# Bad modules
# --------------------------------------------------------------------------------------------------
class _NoParams(nnx.Module):
    def __init__(self, d, k, rngs):
        pass

    def __call__(self, x):
        return x.sum(-1)


class _NonFinite(nnx.Module):
    def __init__(self, d, k, rngs):
        self.h = nnx.Linear(d, k, rngs=rngs)

    def __call__(self, x):
        return jnp.log(-jnp.abs(self.h(x)).sum(-1) - 1.0)


class _NotAChain(nnx.Module):
    def __init__(self, d, k, rngs):
        self.h = nnx.Linear(d, k, rngs=rngs)
        self.o = nnx.Linear(k, 1, rngs=rngs)

    def __call__(self, x):  # units weighted by position: no permutation symmetry
        return self.o(jax.nn.relu(self.h(x)) * jnp.arange(1.0, self.h.out_features + 1))


@pytest.mark.parametrize("factory, match", [
    (lambda d, k, rngs: nnx.Linear(d + 1, 1, rngs=rngs), "fails on inputs of shape"),
    (lambda d, k, rngs: nnx.Linear(d, 2, rngs=rngs), "must give one output per input"),
    (_NoParams, "has no parameters"),
    (_NonFinite, "non-finite outputs"),
    (lambda d, k, rngs: "a module", "not a flax nnx.Module"),
    (lambda d, k: None, "fails when called"),
    (_NotAChain, "leaves its output unchanged"),
])
def test_bad_modules_are_clear_errors_naming_the_module(factory, match):
    with pytest.raises(fs.ModuleError, match=match) as e:
        fs.build_student(factory, 3, 3)
    assert "test_flax" in str(e.value)  # the factory is named


def test_a_student_that_cannot_be_loaded_is_a_config_error():
    from jaxsym.engine.sgd import make_problem

    with pytest.raises(config.ConfigError, match="student: cannot load student"):
        make_problem(config.SampledConfig(student="jaxsym.examples.networks:nothing"), 3, 3, 3, "relu", 0)
    with pytest.raises(config.ConfigError, match="must name a factory"):
        config.SampledConfig(student="no_colon")
    with pytest.raises(config.ConfigError, match=r"but the student .* has hidden_layers = 1"):
        make_problem(config.SampledConfig(student="jaxsym.examples.networks:two_layer_relu", hidden_layers=2), 3, 3,
                     3, "relu", 0)
    with pytest.raises(config.ConfigError, match="has a fixed read-out"):
        make_problem(config.SampledConfig(student="jaxsym.examples.networks:sum_of_relus", train_output=True), 3, 3,
                     3, "relu", 0)
    assert make_problem(config.SampledConfig(student="jaxsym.examples.networks:two_layer_relu", train_output=True),
                        3, 3, 3, "relu", 0).train_output
    cfg = config.SampledConfig(student="jaxsym.examples.networks:two_layer_relu")
    from jaxsym.engine.sgd import has_closed_form

    assert not has_closed_form(cfg, "relu") and cfg.user_code == ["jaxsym.examples.networks:two_layer_relu"]


def test_run_takes_factories_by_function_or_name():
    from jaxsym.api import factory_name

    assert factory_name(ex.two_layer_relu) == "jaxsym.examples.networks:two_layer_relu"
    assert factory_name("pkg.mod:f") == "pkg.mod:f"
    assert factory_name(Deep, "student").endswith("test_flax:Deep")  # a class is a factory too
    with pytest.raises(config.ConfigError, match="cannot be found again by its name"):
        factory_name(lambda d, k, rngs: Deep(d, k, rngs))
