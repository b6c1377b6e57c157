"""The atlas: critical points of fixed-point spaces found by Newton, checked in the full space."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from jaxsym.cli import app
from jaxsym.fixedpoints.atlas import atlas, types_up_to
from jaxsym.landscape import model
from jaxsym.sweep.driver import run_sweep


def test_types_are_the_partitions_with_few_blocks():
    assert types_up_to(4) == [(4,), (3, 1), (2, 2), (2, 1, 1)]
    # count by brute force: non-increasing tuples of positive integers summing to k, length <= 3
    k = 9
    brute = {(a, b, c)[: 3 - [a, b, c].count(0)] for a in range(1, k + 1) for b in range(0, a + 1)
             for c in range(0, b + 1) if a + b + c == k and (b or not c)}
    assert set(types_up_to(k)) == brute


def test_every_atlas_point_is_critical_and_its_index_is_the_dense_hessians():
    df = atlas(6, starts=8)
    assert len(df) >= 5 and (df["kind"] == "global").sum() == 1
    other = df[~df["isotropy"].str.startswith("Δ")]
    assert len(other) and (other["type"] == other["isotropy"]).all()  # only diagonal products get a k-free type
    with jax.enable_x64(True):
        for row in df.itertuples():
            W = jnp.asarray(np.reshape(row.W, (6, 6)), jnp.float64)
            V = jnp.eye(6, dtype=jnp.float64)
            assert float(jnp.linalg.norm(model.grad(W, V))) <= 1e-10
            eigs = np.linalg.eigvalsh(np.asarray(model.hessian(W, V)))  # dense, not the block spectrum
            assert int((eigs < -1e-6).sum()) == row.index
            # block eigenvalues lose half their digits where two neurons coincide (θ = 0: arccos at 1;
            # classify's docstring): 1e-8 elsewhere, 1e-7 there
            Wn = np.reshape(row.W, (6, 6))
            n = np.linalg.norm(Wn, axis=1)
            cos = (Wn @ Wn.T) / np.outer(n, n) - np.eye(6)
            tol = 1e-7 if cos.max() > 1 - 1e-12 else 1e-8
            assert abs(eigs[0] - row.hess_min) <= tol * max(1.0, abs(eigs[0]))


def test_the_atlas_contains_what_descent_finds(tmp_path):
    cfg = {"name": "a7", "seed": 0, "runs": 200, "grid": {"d": [7], "k": "d"},
           "train": {"learning_rate": "5/k", "steps": 20000}}
    from jaxsym import config

    run_sweep(config.from_dict(cfg), tmp_path / "sweep", progress=False)
    minima = pd.read_parquet(tmp_path / "sweep" / "minima.parquet")
    assert set(minima["status"]) >= {"global", "spurious"}  # the sweep found the k = 7 spurious minimum
    r = CliRunner().invoke(app, ["atlas", "--k", "7", "--max-blocks", "2", "--starts", "8", "--out",
                                 str(tmp_path / "atlas")])
    assert r.exit_code == 0, r.output
    at = pd.read_parquet(tmp_path / "atlas" / "atlas.parquet")
    for m in minima.itertuples():
        same = at[(at["isotropy"] == m.isotropy) & (np.abs(at["loss"] - m.loss) <= 1e-9)]
        assert len(same) == 1, (m.isotropy, m.loss)
        assert same["kind"].iloc[0] == m.status  # one vocabulary: the atlas's kind is the sweep's status
    assert "| isotropy |" in (tmp_path / "atlas" / "atlas.md").read_text()
    import jaxsym
    from jaxsym.io.results import verify_results

    # which atlas minima descent reached, in the Python API and on the command line
    cov = jaxsym.load(tmp_path / "sweep").coverage(tmp_path / "atlas")
    for m in minima[minima["status"].isin(["global", "spurious"])].itertuples():
        (row,) = cov[cov["orbit"] == m.orbit].itertuples()  # ΔS7 names the global minimum and a spurious one
        assert row.reached == m.count and row.isotropy == m.isotropy and abs(row.atlas_loss - m.loss) <= 1e-9
    never = cov[cov["reached"] == 0]
    assert len(never) == len(at[at["kind"].isin(["global", "spurious"])]) - len(cov[cov["reached"] > 0])
    assert np.allclose(never["hi"], 1 - 0.05 ** (1 / 200))
    r = CliRunner().invoke(app, ["coverage", str(tmp_path / "sweep"), str(tmp_path / "atlas")])
    assert r.exit_code == 0 and "unseen_mass" in r.output and "Δ(S6×S1)" in r.output, r.output
    # the directory carries a manifest of what made it and every file's digest; a changed file is named
    manifest = verify_results(tmp_path / "atlas")
    assert manifest["what"]["k"] == 7 and {"atlas.parquet", "atlas.md"} <= set(manifest["files"])
    with open(tmp_path / "atlas" / "atlas.md", "a") as f:
        f.write("edited")
    with pytest.raises(ValueError, match=r"atlas\.md changed"):
        verify_results(tmp_path / "atlas")


def test_family_from_a_type_alone(tmp_path):
    r = CliRunner().invoke(app, ["family", "--k", "7", "--isotropy", "D(S6xS1)", "--k-max", "9", "--spectra-at", "7",
                                 "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    table = pd.read_parquet(tmp_path / "family.parquet")
    row = table[table["k"] == 7].iloc[0]
    assert abs(row["loss"] - 0.0232027149136) <= 1e-9  # the k = 7 spurious minimum (docs/reproduction.md)
    r = CliRunner().invoke(app, ["family", "--k", "7", "--isotropy", "D(S5xS1)"])
    assert r.exit_code == 2 and "product type of k = 7" in r.output


# --------------------------------------------------------------------------------------------------
# Scans over many k (restricted computations only)
# --------------------------------------------------------------------------------------------------
def _dense(k: int, row: object) -> tuple[float, np.ndarray]:
    """Full-space ‖∇F‖ and Hessian eigenvalues of a scan row's point, from the dense closed forms."""
    from jaxsym.fixedpoints.space import Space

    with jax.enable_x64(True):
        W = Space(tuple(int(p) for p in row.space)).embed(jnp.asarray(row.x, jnp.float64))
        V = jnp.eye(k, dtype=jnp.float64)
        return float(jnp.linalg.norm(model.grad(W, V))), np.linalg.eigvalsh(np.asarray(model.hessian(W, V)))


@pytest.mark.slow  # ~40 s; run with -m slow
def test_scan_points_are_critical_with_the_dense_index_and_saddles_left_unclassified_are_saddles():
    from jaxsym.fixedpoints.atlas import scan_k

    df = scan_k(7, starts=8, max_blocks=2)
    assert df["index"].notna().all() and (df["kind"] == "global").sum() == 1
    for row in df.itertuples():
        gn, eigs = _dense(7, row)
        assert gn <= 1e-10
        assert int((eigs < -1e-6).sum()) == row.index
        assert abs(eigs[0] - row.hess_min) <= 1e-8 * max(1.0, abs(eigs[0]))
    # classifying only what can be a minimum: the same points, the same minima; the rest are saddles for certain
    part = scan_k(7, starts=8, max_blocks=2, classify_all_to=0)
    assert np.allclose(part["loss"], df["loss"], rtol=0, atol=1e-12)
    assert part["index"].isna().any()
    for row, full in zip(part.itertuples(), df.itertuples(), strict=True):
        if pd.isna(row.index):
            assert row.kind == "saddle" and full.index >= row.index_at_least >= 1
        else:
            assert (row.index, row.isotropy) == (full.index, full.isotropy)
    # and the minima are the atlas's (a second search: full-space polish, isotropy test)
    at = atlas(7, starts=8, max_blocks=2)
    key = {(r.isotropy, round(r.loss, 9)) for r in at[at["index"] == 0].itertuples()}
    assert {(r.isotropy, round(r.loss, 9)) for r in df[df["index"] == 0].itertuples()} == key


def test_scan_resumes_with_the_same_tables_and_refuses_other_settings(tmp_path):
    from jaxsym.fixedpoints.atlas import scan

    whole = scan(4, 6, tmp_path / "a", starts=4, max_blocks=1)  # one block: few programs to compile
    (tmp_path / "a" / "k0006.parquet").unlink()  # interrupted before k = 6 was written
    (tmp_path / "a" / "k0005.parquet").write_bytes(b"PAR1 torn")  # and a torn file
    again = scan(4, 6, tmp_path / "a", starts=4, max_blocks=1)
    pd.testing.assert_frame_equal(whole, again)
    r = CliRunner().invoke(app, ["atlas", "--k", "4", "--k-to", "5", "--starts", "5", "--max-blocks", "1",
                                 "--out", str(tmp_path / "a")])  # writes a/scan/
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["atlas", "--k", "4", "--k-to", "5", "--starts", "4", "--max-blocks", "1",
                                 "--out", str(tmp_path / "a")])
    assert r.exit_code != 0 and "settings" in r.output and "Traceback" not in r.output


def test_scan_families_follow_each_minimum_once(tmp_path):
    r = CliRunner().invoke(app, ["atlas", "--k", "6", "--k-to", "8", "--starts", "8", "--max-blocks", "2",
                                 "--k-max", "9", "--asymptotic-to", "9", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    scan = pd.read_parquet(tmp_path / "atlas.parquet")
    fams = pd.read_parquet(tmp_path / "families.parquet")
    curves = pd.read_parquet(tmp_path / "family_curves.parquet")
    minima = scan[scan["index"] == 0]
    for m in minima.itertuples():  # every minimum of every k lies on exactly one family, which its row names
        on = curves[(curves["k"] == m.k) & (np.abs(curves["loss"] - m.loss) <= 1e-9)]
        assert on["family"].nunique() == 1, (m.k, m.isotropy, m.loss)
        assert m.family == on["family"].iloc[0]
    # each family followed once: no two pass through one point of the scanned k (below, near the edge of
    # their domains, families do meet: e.g. at k = 3 the Δ(S_{k−1}×S_1) point can be the ΔS_k one)
    scanned = curves[curves["k"].between(6, 8)]
    assert not scanned.assign(loss=scanned["loss"].round(9)).duplicated(["k", "loss"]).any()
    assert 0 < len(fams) < len(minima)
    assert (tmp_path / "families.png").exists() and "Families of the local minima" in (
        tmp_path / "atlas.md").read_text()
