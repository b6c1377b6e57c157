"""``jaxsym report`` on finished, partial and empty sweep directories."""

import numpy as np
import pytest
from typer.testing import CliRunner

from jaxsym.cli import app
from jaxsym.io.rundir import SweepDirError
from jaxsym.report.markdown import write_report
from jaxsym.report.stats import wilson
from jaxsym.sweep.driver import run_sweep
from jaxsym.symmetry.naming import isotropy_type


def _pngs_ok(out):
    figs = sorted((out / "figures").glob("*.png"))
    for f in figs:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
    return {f.name for f in figs}


def test_report_on_a_finished_sweep(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path, progress=False)
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "report.md").read_text()
    assert "State: **finished**" in text and "| d | k | runs |" in text and "ΔS4" in text
    names = ("status", "loss_hist", "losses", "spectra", "types", "lambda_min")
    assert {f"{n}.png" for n in names} <= _pngs_ok(tmp_path)
    for name in names:
        assert f"figures/{name}.png" in text
        assert (tmp_path / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"  # vector copies for papers


def test_report_on_a_partial_sweep(tiny_cfg, tmp_path):
    class StopError(Exception):
        pass

    def stop(cell, a, b):
        if a >= 8:
            raise StopError

    with pytest.raises(StopError):
        run_sweep(tiny_cfg, tmp_path, progress=False, on_chunk=stop)
    assert not (tmp_path / "runs.parquet").exists()
    # how many chunks finished before the stop depends on the two workers' timing: count them on disk
    finished = 8 * len(list((tmp_path / "chunks").glob("*/*.chunk.json")))
    assert 8 <= finished < 48
    text = write_report(tmp_path).read_text()
    assert f"partial: {finished} of 48 runs finished" in text
    assert "status.png" in _pngs_ok(tmp_path)


def test_report_refuses_a_directory_without_a_sweep(tmp_path):
    with pytest.raises(SweepDirError, match="not a directory"):
        write_report(tmp_path / "mistyped")
    assert not (tmp_path / "mistyped").exists()  # a mistyped path is not created
    with pytest.raises(SweepDirError, match="no sweep"):
        write_report(tmp_path)


def test_report_on_a_sweep_with_no_finished_chunk(tiny_cfg, tmp_path):
    from jaxsym.io.rundir import RunDir
    from jaxsym.sweep.driver import prepare_dir

    rd = RunDir(tmp_path)
    with rd.lock():
        prepare_dir(tiny_cfg, rd)
    text = write_report(tmp_path).read_text()
    assert "no finished chunk yet" in text and "No finished runs" in text


def test_wilson_interval_contains_the_estimate_and_shrinks():
    lo, hi = wilson([5, 50], [10, 100])
    assert (lo < 0.5).all() and (hi > 0.5).all() and (hi - lo)[1] < (hi - lo)[0]
    lo, hi = wilson([0], [20])
    assert lo[0] == 0 and 0 < hi[0] < 0.2


def test_wilson_bounds_solve_the_score_equation():
    """The Wilson bounds are the two roots p of (x/n − p)² = z² p(1 − p)/n (a second formula for them)."""
    x, n = np.array([0, 3, 17, 40]), np.array([40, 40, 40, 40])
    for level, z in ((0.95, 1.959963984540054), (0.99, 2.5758293035489004)):
        lo, hi = wilson(x, n, level)
        for p in (lo, hi):
            np.testing.assert_allclose((x / n - p) ** 2, z * z * p * (1 - p) / n, atol=1e-12)
        assert (lo[x > 0] > 0).all() and (hi[x < n] < 1).all() and hi[x == n].tolist() == [1.0]


def test_isotropy_type_labels():
    assert isotropy_type([9, 1], 10) == "Δ(S_{k−1}×S_1)"
    assert isotropy_type([6, 2, 1], 9) == "Δ(S_{k−3}×S_2×S_1)"
    assert isotropy_type([7], 7) == "ΔS_k"
    assert isotropy_type([1, 1, 1], 3) == "1"


def test_figure_labels_are_mathtext_and_panels_split_other_grid_axes():
    import pandas as pd

    from jaxsym.report.figures import panels as _panels
    from jaxsym.symmetry.naming import tex_label

    assert tex_label(isotropy_type([9, 1], 10)) == r"$\Delta (S_{k-1}\times S_1)$"
    assert tex_label("Δ(S8×S2)") == r"$\Delta (S_{8}\times S_{2})$" and tex_label("1") == "1"
    runs = pd.DataFrame({"d": [6, 6, 7, 7], "k": [6, 6, 7, 7], "status": ["global"] * 4,
                         "cell": ["d6-k6-learning_rate=0.1", "d6-k6-learning_rate=0.5", "d7-k7-learning_rate=0.1",
                                  "d7-k7-learning_rate=0.5"]})
    panels = _panels(runs)
    assert [t for t, _ in panels] == ["k = d, learning_rate=0.1", "k = d, learning_rate=0.5"]
    assert all(len(g) == 2 and g["cell"].str.endswith(t.split(", ")[1]).all() for t, g in panels)


def test_families_followed_in_k_are_overlaid_once(tmp_path):
    import pandas as pd

    from jaxsym.report.markdown import load_families

    for name in ("a", "b"):  # the same family followed from two of its points
        d = tmp_path / "families" / name
        d.mkdir(parents=True)
        pd.DataFrame({"k": [8, 9, 10], "blocks": [[7, 1], [8, 1], [9, 1]], "loss": [0.0215, 0.0200, 0.0187],
                      "converged": [True, True, True]}).to_parquet(d / "family.parquet")
    fams = load_families(tmp_path)
    assert [label for label, _ in fams] == [isotropy_type([9, 1], 10)]
    assert fams[0][1]["k"].tolist() == [8, 9, 10]


def _synthetic_tables():
    """Runs and minima of two k = d cells with a global minimum, two spurious types and a saddle."""
    import pandas as pd

    rng = np.random.default_rng(0)
    runs, minima = [], []
    for k in (7, 8):
        cell = f"d{k}-k{k}"
        kinds = [("global", [k], 0.0, 0.09), ("spurious", [k - 1, 1], 0.02, 0.02),
                 ("spurious", [k - 2, 2], 0.04, 0.01), ("saddle", [k - 1, 1], 0.1, -0.05)]
        counts = [850, 120, 5, 1]
        for orbit, ((status, blocks, loss, hmin), n) in enumerate(zip(kinds, counts)):
            minima.append({"d": k, "k": k, "orbit": orbit, "status": status, "loss": loss, "count": n,
                           "hess_min": hmin, "neuron_orbits": blocks, "cell": cell,
                           "eig_values": [hmin, 0.3, 1.0], "eig_mults": [1, k - 1, k * k - k]})
            runs += [{"d": k, "k": k, "run": i, "status": status, "orbit": orbit, "cell": cell, "loss": loss,
                      "steps": int(rng.integers(100, 3000)), "grad_norm": 10 ** rng.uniform(-14, -11),
                      "polish_shift": 10 ** rng.uniform(-3, -1), "handoff": bool(i % 2)} for i in range(n)]
        runs += [{"d": k, "k": k, "run": 0, "status": "not_converged", "orbit": -1, "cell": cell, "loss": 0.3,
                  "steps": 3000, "grad_norm": 1e-3, "polish_shift": 0.0, "handoff": False}] * 24
    return pd.DataFrame(runs), pd.DataFrame(minima)


def _figures(runs, minima):
    from jaxsym.report import figures
    from jaxsym.report.coverage import discovery

    colours = figures.type_colours(figures.types_of(minima))
    return colours, {
        "status": figures.status_figure(runs), "types": figures.type_shares_figure(runs, minima, colours),
        "losses": figures.losses_figure(minima, colours), "lambda_min": figures.lambda_min_figure(minima, colours,
                                                                                                  1e-6),
        "spectra": figures.spectra_figure(minima, colours), "loss_hist": figures.loss_hist_figure(runs),
        "steps": figures.steps_figure(runs), "margins": figures.margins_figure(runs, 1e-10),
        "discovery": figures.discovery_figure(discovery(runs))}


def test_figures_are_readable_at_a_column_width():
    """Rendered at their size (3.4 in for one panel, 7 in for several), every text is at least 6 pt, nothing
    drawn widens the saved figure beyond that size, and legends are outside the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from jaxsym.report import figures

    runs, minima = _synthetic_tables()
    _, figs = _figures(runs, minima)
    for name, fig in figs.items():
        width = fig.get_size_inches()[0]
        assert width in (figures.COLUMN, figures.PAGE), name
        single = [ax for ax in fig.axes if ax.get_visible()]
        if len(single) == 1 and name != "margins":
            assert width == figures.COLUMN, name
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.get_tightbbox(renderer)
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts, name
        for t in texts:
            assert t.get_fontsize() >= figures.MIN_FONT, (name, t.get_text(), t.get_fontsize())
        assert box.width <= 1.03 * width, (name, box.width)  # nothing sticks out: the saved figure keeps its width
        for ax in single:
            assert ax.get_legend() is None or name == "margins", name  # one legend, below the panels
        plt.close(fig)


def test_one_colour_per_isotropy_type_across_figures():
    """The type-share curves and the loss markers of one type have the same colour, the one type_colours gives,
    and the order of types fixes it (Δ(S_{k−1}×S_1) first)."""
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    from jaxsym.report import figures

    runs, minima = _synthetic_tables()
    colours, figs = _figures(runs, minima)
    assert figures.type_colours(["Δ(S_{k−2}×S_2)", "Δ(S_{k−1}×S_1)"])["Δ(S_{k−1}×S_1)"] == figures.PALETTE[0]

    def legend_colours(fig):
        out = {}
        for leg in fig.legends:
            for handle, text in zip(leg.legend_handles, leg.get_texts()):
                c = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()
                out[text.get_text()] = mcolors.to_hex(np.asarray(c).reshape(-1, 4)[0]
                                                      if np.ndim(c) > 1 or not isinstance(c, str) else c)
        return out

    types = legend_colours(figs["types"])
    losses = legend_colours(figs["losses"])
    lam = legend_colours(figs["lambda_min"])
    for t in ("Δ(S_{k−1}×S_1)", "Δ(S_{k−2}×S_2)"):
        label = figures._label(t)
        assert types[label] == losses[label] == lam[label] == mcolors.to_hex(colours[t]), t
    for fig in figs.values():
        plt.close(fig)
