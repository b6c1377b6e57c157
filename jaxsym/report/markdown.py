"""``jaxsym report DIR``: a Markdown report with PNG figures of a sweep directory.

Works on a finished, a running or an interrupted sweep (it reports the chunks finished so far, refreshing
``runs.parquet``/``minima.parquet`` first when chunk files are newer) and on an empty directory. Writes
``DIR/report.md`` and ``DIR/figures/*.png``:

- ``status.png``: share of runs per status vs ``k`` (a panel per ``d`` and other grid value), 95% Wilson
  intervals, runs per cell, the published share where the protocol matches;
- ``loss_hist.png``: final losses (log scale) per status; ``steps.png``: steps per status vs ``k``;
- ``margins.png``: ‖∇F‖ of the certified points against τ_g, and how far the certificate moved each run;
- ``types.png``: share of runs per isotropy type vs ``k`` with intervals (log scale), published counts overlaid;
- ``losses.png``, ``lambda_min.png`` (with the band |λ| < τ_H): each distinct critical point vs ``k``;
- ``spectra.png``: Hessian spectra per isotropy type with the multiplicities symmetry predicts;
- a table of the distinct critical points per cell.

The figures (:mod:`jaxsym.report.figures`) are sized for a paper's column and share one colour per isotropy type.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd

from jaxsym.io import columns as col
from jaxsym.io import results
from jaxsym.report import figures
from jaxsym.report.coverage import discovery, unseen
from jaxsym.report.summary import markdown, minima_table, status_table
from jaxsym.sweep.loading import load_tables
from jaxsym.symmetry.naming import isotropy_type

FORMATS = figures.FORMATS
Formats = tuple[str, ...]
_save = figures.save


def load_families(out: Path) -> list[tuple[str, pd.DataFrame]]:
    """The families followed with ``jaxsym family`` into ``DIR/families/<name>/family.parquet``: (type label,
    converged rows ``k, loss``), for overlaying on the sweep's points."""
    fams: list[tuple[str, pd.DataFrame]] = []
    seen: set[tuple[str, int, float]] = set()
    for f in sorted((out / "families").glob("*/family.parquet")):
        t = pd.read_parquet(f)
        if col.LOSS not in t or col.BLOCKS not in t:
            continue
        t = t[t["converged"]] if "converged" in t else t
        if len(t):
            r = t.iloc[-1]
            key = (isotropy_type(list(r[col.BLOCKS]), int(r[col.K])), int(r[col.K]), round(float(r[col.LOSS]), 9))
            if key not in seen:  # one family followed from two of its points is drawn once
                seen.add(key)
                fams.append((key[0], t[[col.K, col.LOSS]]))
    return fams


def write_report(out: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> Path:
    """Write ``DIR/report.md`` (and figures in ``formats``, from :data:`FORMATS`; the report shows the PNGs,
    which are always written) for the sweep in ``DIR``; returns the report's path."""
    bad = set(formats) - set(FORMATS)
    if bad:
        raise ValueError(f"figure formats must be among {FORMATS}, got {sorted(bad)}")
    formats = ("png", *(f for f in formats if f != "png"))
    out = Path(out)
    cfg, runs, minima, state = load_tables(out)
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    title = f"# jaxsym report: {cfg.name}\n"
    lines = [title, f"State: **{state}**.\n"]
    s = cfg.sampled
    if s is None:
        cert = (f"{cfg.train.dtype}; certificate thresholds τ_L = {cfg.certify.loss_tol:g}, "
                f"τ_g = {cfg.certify.grad_tol:g}, τ_H = {cfg.certify.hess_tol:g}.")
    else:
        layers, trained = s.hidden_layers, s.train_output
        if s.student is not None and not runs.empty:  # read from the module by the sweep (the runs' columns)
            layers, trained = int(runs[col.HIDDEN_LAYERS].iloc[0]), bool(runs[col.TRAIN_OUTPUT].iloc[0])
        net = f"{layers} hidden layer(s), output {'trained' if trained else 'fixed'}"
        if s.student is not None:
            net = f"the flax student `{s.student}` ({net if not runs.empty else 'structure read from the module'})"
        if s.teacher is not None:
            net += f", the flax teacher `{s.teacher}`"
        cert = (f"sampled objective: {s.distribution} inputs, {net}, {s.mode} SGD with batches of {s.batch_size}; "
                f"empirical certificate τ_L = {s.loss_tol:g}, τ_g = {s.grad_tol:g} + 2 se, "
                f"τ_H = max({s.hess_tol:g}, 2 se) (the closed-form certificate where the population loss has "
                f"one: τ_L = {cfg.certify.loss_tol:g}, τ_g = {cfg.certify.grad_tol:g}, "
                f"τ_H = {cfg.certify.hess_tol:g}).")
    lines.append(f"Config fingerprint `{cfg.fingerprint()}`; seed {cfg.seed}; {cfg.runs} runs per cell; "
                 f"optimizer {cfg.train.optimizer}, learning rate {cfg.train.learning_rate}, "
                 f"{cfg.train.steps} steps, {cert}\n")
    if runs.empty:
        lines.append("No finished runs to report yet.\n")
    else:
        colours = figures.type_colours(figures.types_of(minima) if len(minima) else [])
        _save(figures.status_figure(runs, cfg), figs / "status.png", formats)
        _save(figures.loss_hist_figure(runs), figs / "loss_hist.png", formats)
        _save(figures.steps_figure(runs), figs / "steps.png", formats)
        lines += ["## End points per cell\n", markdown(status_table(runs), ".1f"), "",
                  "![share of runs per status](figures/status.png)\n",
                  "Share of each cell's runs per status, with 95% Wilson intervals; n is the runs per cell.\n",
                  "![histogram of final losses](figures/loss_hist.png)\n",
                  "Final losses of all runs by status (log scale, floored at 1e-16): global minima at rounding "
                  "level, spurious minima decades above.\n",
                  "![steps to the end of descent per status](figures/steps.png)\n",
                  "Descent steps per run (median and 10–90% range) by status and cell; runs that hit the step "
                  "budget sit at the top.\n"]
        margins = figures.margins_figure(runs, cfg.certify.grad_tol) if cfg.sampled is None else None
        if margins is not None:
            _save(margins, figs / "margins.png", formats)
            lines += ["![certificate margins](figures/margins.png)\n",
                      "Left: ‖∇F‖ at each certified point against the threshold τ_g; right: how far each run's "
                      "certified point lies from where its descent stopped, handed off or polished.\n"]
        if not minima.empty:
            _save(figures.type_shares_figure(runs, minima, colours, cfg), figs / "types.png", formats)
            _save(figures.losses_figure(minima, colours, load_families(out)), figs / "losses.png", formats)
            _save(figures.lambda_min_figure(minima, colours, cfg.certify.hess_tol), figs / "lambda_min.png", formats)
            _save(figures.spectra_figure(minima, colours), figs / "spectra.png", formats)
            lines += ["## Distinct critical points (modulo the symmetry group)\n",
                      markdown(minima_table(minima, per_cell=12)), "",
                      "![share of runs per isotropy type](figures/types.png)\n",
                      "Share of runs ending at each isotropy type per cell (log scale, 95% Wilson intervals), one "
                      "colour per type in every figure.\n",
                      "![loss of distinct critical points](figures/losses.png)\n",
                      "Loss of each distinct non-global critical point against k, coloured by isotropy type, marked "
                      "by status (size grows with the runs that reached it).\n",
                      "![smallest Hessian eigenvalue](figures/lambda_min.png)\n",
                      "Smallest Hessian eigenvalue of each distinct point; the dashed line is τ_H, above which a "
                      "point is a minimum.\n",
                      "![Hessian spectra](figures/spectra.png)\n",
                      "Hessian eigenvalues and their multiplicities per isotropy type (grey levels: k); dashed lines "
                      "are the multiplicities representation theory predicts at the largest k.\n"]
        curve = discovery(runs)
        if len(curve):
            _save(figures.discovery_figure(curve), figs / "discovery.png", formats)
            lines += ["## Discovery: are more runs needed?\n", markdown(unseen(runs), ".3g"), "",
                      "![distinct orbits found against runs](figures/discovery.png)\n",
                      "Distinct critical points (solid) and minima (dashed) among each cell's first n runs. "
                      "`unseen_mass` is the Good–Turing estimate (orbits reached by one run / runs) of the chance "
                      "that one more run ends at an orbit not yet seen.\n"]
        lines.append(f"Every figure is in `figures/` as {', '.join(formats).upper()}.\n")
    path = out / "report.md"
    results.atomic_write_text("\n".join(lines), path)  # replaces a link rather than writing through it
    return path
