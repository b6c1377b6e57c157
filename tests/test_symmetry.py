"""Isotropy groups, equivalence modulo the group, orbit clustering and symmetry-predicted spectra."""

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym.symmetry.group import (
    Element,
    apply,
    compose,
    equivalent,
    find_element,
    identity,
    inverse,
    isotropy,
    random_element,
    target_column_colours,
)
from jaxsym.symmetry.orbits import cluster


def block_point(blocks: list[int], rng: np.random.Generator) -> np.ndarray:
    """A k×k matrix with the Δ(S_{p1}×…×S_{pr}) pattern: W_ii = a_b(i), W_ij = c_{b(i) b(j)} (i ≠ j),
    with generic random values, so its isotropy is exactly Δ(Π S_{p})."""
    b = np.repeat(np.arange(len(blocks)), blocks)
    a = rng.normal(size=len(blocks))
    c = rng.normal(size=(len(blocks), len(blocks)))
    W = c[b][:, b].copy()
    np.fill_diagonal(W, a[b])
    return W


def brute_force_order(W: np.ndarray, tol: float = 1e-9) -> int:
    """|{(π, ρ) ∈ S_k × S_d : P_π W P_ρᵀ = W}| by enumerating every element (tiny k, d only)."""
    k, d = W.shape
    count = 0
    for pi in itertools.permutations(range(k)):
        Wp = W[np.argsort(pi)]
        for rho in itertools.permutations(range(d)):
            if np.max(np.abs(Wp[:, np.argsort(rho)] - W)) <= tol:
                count += 1
    return count


def test_group_operations():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 5))
    g, h = random_element(rng, 4, 5), random_element(rng, 4, 5)
    np.testing.assert_array_equal(apply(compose(g, h), W), apply(g, apply(h, W)))
    np.testing.assert_array_equal(apply(inverse(g), apply(g, W)), W)
    np.testing.assert_array_equal(apply(identity(4, 5), W), W)
    # the definition: entry (i, a) moves to (π(i), ρ(a))
    out = apply(g, W)
    assert out[g.pi[1], g.rho[3]] == W[1, 3]


@pytest.mark.parametrize("k", [2, 3, 6, 10])
def test_isotropy_of_identity_is_delta_sk(k):
    iso = jaxsym.isotropy(np.eye(k))
    assert iso.order == math.factorial(k)
    assert iso.name == f"ΔS{k}" and iso.neuron_orbits == [k] and iso.coordinate_orbits == [k]


def test_isotropy_of_identity_k100_is_fast():
    t = time.perf_counter()
    iso = isotropy(np.eye(100))
    assert iso.order == math.factorial(100) and time.perf_counter() - t < 1.0
    rng = np.random.default_rng(1)
    W = block_point([99, 1], rng)
    t = time.perf_counter()
    iso = isotropy(W)
    assert iso.name == "Δ(S99×S1)" and iso.order == math.factorial(99) and time.perf_counter() - t < 1.0


def test_random_point_has_trivial_isotropy():
    iso = isotropy(np.random.default_rng(2).normal(size=(6, 6)))
    assert iso.order == 1 and iso.name == "1" and iso.neuron_orbits == [1] * 6


@pytest.mark.parametrize("blocks,name", [([5, 1], "Δ(S5×S1)"), ([4, 2], "Δ(S4×S2)"), ([3, 2, 1], "Δ(S3×S2×S1)"),
                                         ([2, 2, 1], "Δ(S2×S2×S1)")])
def test_constructed_symmetry_is_found_exactly(blocks, name):
    W = block_point(blocks, np.random.default_rng(sum(blocks)))
    iso = isotropy(W)
    assert iso.name == name
    assert iso.order == math.prod(math.factorial(p) for p in blocks)
    assert iso.neuron_orbits == sorted(blocks, reverse=True)
    for g in iso.generators:
        np.testing.assert_allclose(apply(g, W), W, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_order_agrees_with_brute_force(seed):
    """Independent count over all of S_k × S_d for small structured and unstructured points."""
    rng = np.random.default_rng(seed)
    shapes = [[2, 1], [1, 1, 1], [3], [2, 2], [3, 1], [2, 1, 1]]
    W = block_point(shapes[seed], rng)
    if seed % 2:  # duplicate a column: a non-diagonal (column-kernel) symmetry
        W = np.concatenate([W, W[:, :1]], axis=1)
    assert isotropy(W).order == brute_force_order(W)


def test_non_product_group_is_enumerated():
    n = 5
    W = np.array([[np.cos((i - j) % n) + 0.3 * np.sin(2 * ((i - j) % n) + 0.3) for j in range(n)] for i in range(n)])
    iso = isotropy(W)
    assert iso.order == brute_force_order(W) == 5
    assert iso.neuron_orbits == [5]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([[5, 1], [4, 2], [3, 2, 1], [6], [2, 2, 2], [1, 1, 1, 1]]), st.integers(0, 2**31 - 1))
def test_isotropy_is_conjugation_invariant_and_orbits_match(blocks, seed):
    rng = np.random.default_rng(seed)
    W = block_point(blocks, rng)
    k = W.shape[0]
    g = random_element(rng, k, k)
    a, b = isotropy(W), isotropy(apply(g, W))
    assert (a.order, a.neuron_orbits, a.coordinate_orbits, a.name) == (b.order, b.neuron_orbits,
                                                                        b.coordinate_orbits, b.name)
    h = find_element(W, apply(g, W))
    assert h is not None
    np.testing.assert_allclose(apply(h, W), apply(g, W), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_canonical_equivalence_of_random_points(k, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, k))
    g = random_element(rng, k, k)
    assert equivalent(W, apply(g, W))
    W2 = W.copy()
    W2[0, 0] += 1e-3
    assert not equivalent(W, apply(g, W2))


def test_target_restricts_column_permutations():
    """V = [I_2 0]: coordinates 0, 1 may not be swapped with coordinate 2."""
    V = np.eye(2, 3)
    assert target_column_colours(V, 3).tolist() == [1, 1, 0] or len(set(target_column_colours(V, 3)[:2])) == 1
    W = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]])
    swapped = W[:, [2, 1, 0]]
    assert equivalent(W, swapped)  # with no target (V = I type) the swap is allowed
    assert not equivalent(W, swapped, V)
    iso = isotropy(W, V)
    assert iso.order == 2 and iso.name == "ΔS2"
    Wz = np.array([[0.9, 0.1, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0]])
    iso = isotropy(Wz, np.eye(2, 4))
    assert iso.order == 2 * 2 and iso.name == "ΔS2×S2"


# ---------------------------------------------------------------------------------------------------
# Spectra and representation theory
# ---------------------------------------------------------------------------------------------------
def irrep_dim(partition: list[int]) -> int:
    """Dimension of the S_n irreducible representation of a partition (hook length formula)."""
    n = sum(partition)
    conj = [sum(1 for p in partition if p > j) for j in range(partition[0])]
    hooks = math.prod(partition[i] - j + conj[j] - i - 1 for i in range(len(partition)) for j in range(partition[i]))
    return math.factorial(n) // hooks


@pytest.mark.parametrize("k", [4, 5, 6, 8])
def test_spectrum_at_global_minimum_follows_representation_theory(k):
    """M(k, k) under ΔS_k is (1 ⊕ S)⊗(1 ⊕ S) = 2·[k] ⊕ 3·[k−1,1] ⊕ [k−2,1,1] ⊕ [k−2,2]; the Hessian
    commutes with the action, so each eigenspace is a sum of these irreducibles. The dimensions come from
    the hook length formula, the characters from χ_S(g) = fix(g) − 1, χ_Λ²S = (χ_S² − χ_S(g²))/2 and
    Sym²S = [k] ⊕ [k−1,1] ⊕ [k−2,2]: each eigenspace's character tr(P_E R(g)) is checked against them."""
    I = np.eye(k)
    spec = jaxsym.spectrum(I, I)
    assert len(spec) == 6
    triv, std = irrep_dim([k]), irrep_dim([k - 1, 1])
    x, y = irrep_dim([k - 2, 1, 1]), irrep_dim([k - 2, 2])
    assert 2 * triv + 3 * std + x + y == k * k
    mults = sorted(m for _, m in spec)
    assert mults == sorted([triv, triv, std, std, std + x, y])
    values = {m: v for v, m in spec}
    assert values[std + x] == pytest.approx(0.25 - 1 / (2 * np.pi), abs=1e-10)
    assert values[y] == pytest.approx(0.25 + 1 / (2 * np.pi), abs=1e-10)

    def chars(perm):
        fix = lambda p: int(np.sum(p == np.arange(k)))  # noqa: E731
        s1, s2 = fix(perm) - 1, fix(perm[perm]) - 1
        lam2 = (s1 * s1 - s2) // 2
        sym2 = (s1 * s1 + s2) // 2
        return {triv: 1, std: s1, std + x: s1 + lam2, y: sym2 - s1 - 1}

    with jax.enable_x64(True):
        H = np.asarray(jaxsym.hessian(jnp.asarray(I), jnp.asarray(I)))
    lam, vec = np.linalg.eigh(H)
    rng = np.random.default_rng(k)
    for _ in range(5):
        perm = rng.permutation(k)
        R = np.zeros((k * k, k * k))  # M ↦ P M Pᵀ on row-major vec(M)
        for i, j in itertools.product(range(k), range(k)):
            R[perm[i] * k + perm[j], i * k + j] = 1
        for value, mult in spec:
            E = vec[:, np.abs(lam - value) < 1e-8]
            assert E.shape[1] == mult
            trace = np.trace(E.T @ R @ E)
            assert trace == pytest.approx(chars(perm)[mult], abs=1e-8)


def test_spectrum_groups_and_sorts():
    from jaxsym.symmetry.spectra import group_eigenvalues
    out = group_eigenvalues(np.array([2.0, 1.0, 1.0 + 1e-9, -3.0]), tol=1e-6)
    assert [m for _, m in out] == [1, 2, 1] and out[0][0] == -3.0


# ---------------------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------------------
def test_clustering_recovers_orbits_of_known_points():
    rng = np.random.default_rng(5)
    k = 6
    bases = [rng.normal(size=(k, k)), block_point([5, 1], rng), block_point([4, 2], rng), np.eye(k)]
    which = rng.integers(0, len(bases), 3000)
    Ws = np.stack([apply(random_element(rng, k, k), bases[w]) for w in which])
    Ws += rng.normal(scale=1e-9, size=Ws.shape)
    cl = cluster(Ws, tol=1e-6, order=np.arange(3000)[::-1])
    assert len(cl.reps) == len(bases)
    # the partition is exactly the generating one
    assert len(set(zip(cl.labels.tolist(), which.tolist()))) == len(bases)
    assert cl.counts.sum() == 3000
    # representatives have the smallest order key of their orbit
    order = np.arange(3000)[::-1]
    for j, r in enumerate(cl.reps):
        assert order[r] == order[cl.labels == j].min()


def test_clustering_twice_equals_clustering_once():
    """Clustering chunk representatives gives the same orbits as clustering all points (chunk independence)."""
    rng = np.random.default_rng(6)
    k = 5
    bases = [rng.normal(size=(k, k)) for _ in range(3)]
    which = rng.integers(0, 3, 400)
    Ws = np.stack([apply(random_element(rng, k, k), bases[w]) for w in which])
    once = cluster(Ws)
    reps, owners, counts = [], [], []
    for chunk in np.array_split(np.arange(400), 7):
        c = cluster(Ws[chunk], order=chunk)
        reps.append(chunk[c.reps])
        counts.append(c.counts)
    reps, counts = np.concatenate(reps), np.concatenate(counts)
    twice = cluster(Ws[reps], order=reps, weights=counts)
    np.testing.assert_array_equal(reps[twice.reps], once.reps)
    np.testing.assert_array_equal(twice.counts, once.counts)
    del owners


@pytest.mark.parametrize("blocks,distinct", [([7], 7), ([6, 1], 12), ([5, 2], 19), ([4, 2, 1], None)])
def test_predicted_multiplicities(blocks, distinct):
    from jaxsym.symmetry.spectra import predicted_multiplicities
    pred = predicted_multiplicities(blocks)
    assert sum(pred) == sum(blocks) ** 2
    if distinct is not None:
        assert len(pred) == distinct


def test_predicted_multiplicities_match_generic_block_points():
    """A random Δ(S_{k−1}×S_1)- or Δ(S_{k−2}×S_2)-symmetric point is not critical, but its Hessian still
    commutes with the group, so its spectrum has exactly the predicted multiplicities."""
    from jaxsym.symmetry.spectra import predicted_multiplicities
    rng = np.random.default_rng(11)
    for blocks in ([5, 1], [4, 2], [3, 2, 1]):
        W = block_point(blocks, rng) + 0.5 * np.eye(sum(blocks))
        k = sum(blocks)
        got = sorted(m for _, m in jaxsym.spectrum(W, np.eye(k), tol=1e-7))
        assert got == predicted_multiplicities(blocks)


@pytest.mark.parametrize("bad,match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "non-finite"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "non-finite"),
    (np.ones(4), r"one \(k, d\) matrix"),
    (np.ones((2, 3, 3)), r"one \(k, d\) matrix"),
    (np.eye(3) * (1 + 1j), "real"),
])
def test_isotropy_and_equivalence_refuse_bad_input_with_a_message(bad, match):
    with pytest.raises(ValueError, match=match):
        isotropy(bad)
    with pytest.raises(ValueError, match=match):
        find_element(bad, np.eye(2))


def test_isotropy_takes_python_lists():
    assert isotropy([[1.0, 0.0], [0.0, 1.0]]).order == isotropy(np.eye(2)).order == 2


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["two_layer", "layered"]))
def test_every_group_of_the_seam_answers_its_four_questions_consistently(seed, which):
    """For each instance of jaxsym.symmetry.groups.Group: the fingerprint is invariant, match finds an element
    mapping x onto g·x (and acting with it gives g·x), and g·x has an isotropy group of the same order."""
    from jaxsym.symmetry.groups import LayeredUnits, TwoLayer

    rng = np.random.default_rng(seed)
    k, d = 4, 3
    if which == "two_layer":
        group = TwoLayer()
        x = rng.normal(size=(k, d))
        x[1] = x[0]  # some symmetry to find
        g = random_element(rng, k, d)
    else:
        group = LayeredUnits()
        x = ([rng.normal(size=(k, d)), rng.normal(size=(2, k))], rng.normal(size=2))
        x[0][0][1] = x[0][0][0]
        x[0][1][:, 1] = x[0][1][:, 0]
        perm = [tuple(rng.permutation(d)), tuple(rng.permutation(k)), tuple(rng.permutation(2))]
        g = Element(tuple(perm))
    y = group.act(g, x)
    fx, fy = group.fingerprint([x]), group.fingerprint([y])
    assert (fx is None and fy is None) or np.allclose(fx, fy)
    h = group.match(x, y, 1e-9)
    assert h is not None
    np.testing.assert_allclose(_flat(group.act(h, x)), _flat(y), atol=1e-9)
    assert group.isotropy(x, 1e-9).order == group.isotropy(y, 1e-9).order > 1


def _flat(point):
    """A two-layer point or a layered network ``(layers, a)`` as one vector."""
    if isinstance(point, np.ndarray):
        return point.ravel()
    layers, a = point
    return np.concatenate([np.ravel(w) for w in layers] + ([] if a is None else [np.ravel(a)]))
