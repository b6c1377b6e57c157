"""``jaxsym report DIR``: a Markdown report with PNG figures of a sweep directory.

Works on a finished, a running or an interrupted sweep (it reports the chunks finished so far, refreshing
``runs.parquet``/``minima.parquet`` first when chunk files are newer) and on an empty directory. Writes
``DIR/report.md`` and ``DIR/figures/*.png``:

- ``status.png``: share of runs per status vs ``k`` for each ``d``, with 95% Wilson intervals;
- ``losses.png``: loss of each distinct critical point vs ``k``, coloured by isotropy type;
- ``loss_hist.png``: histogram of final losses (log scale) per status;
- ``spectra.png``: Hessian spectra of the distinct points (eigenvalue vs multiplicity), per isotropy type;
- a table of the distinct critical points per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from jaxsym import config, results
from jaxsym.certify import STATUSES
from jaxsym.naming import isotropy_type, tex_label
from jaxsym.rundir import RunDir, SweepDirError
from jaxsym.stats import wilson
from jaxsym.summary import markdown, minima_table, status_table
from jaxsym.sweep import finalize, read_sweep

COLOURS = {"global": "tab:green", "spurious": "tab:red", "saddle": "tab:orange", "degenerate": "tab:purple",
           "not_converged": "tab:gray", "diverged": "black"}


def load_tables(out: Path) -> tuple[config.SweepConfig, pd.DataFrame, pd.DataFrame, str]:
    """The sweep of ``out`` with its tables, merging finished chunks first when the tables are missing or older.

    Never runs code named by the directory: a sweep with a user sampler is merged only by ``jaxsym sweep``
    with its config file (the merge draws from the sampler), so here its tables are used as they are."""
    rd = RunDir(out)
    manifest, cfg = read_sweep(rd)
    rd.check_no_links([c.label for c in cfg.cells()])
    chunks = rd.all_chunk_files()
    if not chunks:
        return cfg, pd.DataFrame(), pd.DataFrame(), "no finished chunk yet"
    newest = max(p.stat().st_mtime for p in chunks)
    stale = not rd.runs_table.exists() or rd.runs_table.stat().st_mtime < newest
    note = ""
    if stale and manifest.get("fingerprint") != cfg.fingerprint():  # never move another version's chunks
        note = (f"; tables not merged: {out} was fingerprinted by another jaxsym version "
                f"({manifest.get('fingerprint')}, now {cfg.fingerprint()}); run `jaxsym sweep` with its config to "
                f"merge")
    elif stale and cfg.sampled is not None and cfg.sampled.distribution == "user":
        note = (f"; tables not merged: this sweep's merge runs its user sampler {cfg.sampled.sampler!r}, which "
                f"`jaxsym report` never imports — run `jaxsym sweep CONFIG --out {out}` to merge")
    elif stale:
        try:
            finalize(cfg, out)
        except SweepDirError as e:  # a sweep is writing DIR: report the tables of its last merge
            note = f"; tables as of the last merge ({e})"
    if not rd.runs_table.exists():
        return cfg, pd.DataFrame(), pd.DataFrame(), "not merged yet" + note
    runs = pd.read_parquet(rd.runs_table)
    minima = pd.read_parquet(rd.minima_table)
    done = len(runs)
    total = cfg.runs * len(cfg.cells())
    state = "finished" if done >= total else f"partial: {done} of {total} runs finished"
    return cfg, runs, minima, state + note


TYPE_COLOURS = ("tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan",
                "tab:blue")  # isotropy types (green is the global minimum's)
DPI = 200  # PNG resolution; every figure is also written as a PDF (vector) next to it, for papers


FORMATS = ("png", "pdf", "svg")
Formats = tuple[str, ...]


def _save(fig: plt.Figure, path: Path, formats: Formats) -> None:
    """``path`` (a .png name) in every format asked for: PNG at :data:`DPI`, PDF and SVG as vectors."""
    for fmt in formats:
        fig.savefig(path.with_suffix(f".{fmt}"), dpi=DPI if fmt == "png" else None)
    plt.close(fig)


def _series(runs: pd.DataFrame) -> pd.Series:
    """The part of each row's cell label beyond d and k (other grid axes: m, learning rate, target, …), so that
    figures never pool cells that differ in anything but k."""
    if "cell" not in runs:
        return pd.Series("", index=runs.index)
    return runs["cell"].astype(str).str.replace(r"^d\d+-k\d+-?", "", regex=True)


def _panels(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per d (one for all when k = d throughout) and per value of the other grid axes."""
    diagonal = bool((runs["k"] == runs["d"]).all())
    series = _series(runs)
    out = []
    for rest, g in runs.groupby(series, sort=True):
        groups = [("k = d", g)] if diagonal else [(f"d = {d}", gd) for d, gd in g.groupby("d")]
        out += [(f"{t}, {rest}" if rest else t, gg) for t, gg in groups]
    return out


def _types(df: pd.DataFrame) -> list[str]:
    """The k-independent isotropy type of each row of a minima table ("global" for global minima)."""
    return ["global" if st == "global" else isotropy_type(o, k)
            for st, o, k in zip(df["status"], df["neuron_orbits"], df["k"])]


def fig_status(runs: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf")) -> None:
    """Share per status vs k: one panel when k = d throughout, else one panel per d (and per other grid value)."""
    groups = _panels(runs)
    diagonal = len(groups) == 1
    fig, axes = plt.subplots(1, len(groups), figsize=(6.4 if diagonal else 3.6 * len(groups), 4.0), squeeze=False)
    for ax, (title, g) in zip(axes[0], groups):
        counts = g.groupby("k")["status"].value_counts().unstack(fill_value=0)
        totals = counts.sum(axis=1).to_numpy()
        for status in STATUSES:
            if status not in counts or counts[status].sum() == 0:
                continue
            n = counts[status].to_numpy()
            lo, hi = wilson(n, totals)
            p = n / totals
            ax.errorbar(counts.index, 100 * p, yerr=[100 * (p - lo), 100 * (hi - p)], marker="o", capsize=3,
                        color=COLOURS[status], label=status)
        ax.set_xlabel("k (student neurons)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=8, loc="center right")
    axes[0][0].set_ylabel("share of runs (%)")
    fig.suptitle("End points per status (95% Wilson intervals)", fontsize=11)
    fig.tight_layout()
    _save(fig, path, formats)


def load_families(out: Path) -> list[tuple[str, pd.DataFrame]]:
    """The families followed with ``jaxsym family`` into ``DIR/families/<name>/family.parquet``: (type label,
    converged rows ``k, loss``), for overlaying on the sweep's points."""
    fams: list[tuple[str, pd.DataFrame]] = []
    seen: set[tuple[str, int, float]] = set()
    for f in sorted((out / "families").glob("*/family.parquet")):
        t = pd.read_parquet(f)
        if "loss" not in t or "blocks" not in t:
            continue
        t = t[t["converged"]] if "converged" in t else t
        if len(t):
            r = t.iloc[-1]
            key = (isotropy_type(list(r["blocks"]), int(r["k"])), int(r["k"]), round(float(r["loss"]), 9))
            if key not in seen:  # one family followed from two of its points is drawn once
                seen.add(key)
                fams.append((key[0], t[["k", "loss"]]))
    return fams


def fig_losses(minima: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf"),
               families: Sequence[tuple[str, pd.DataFrame]] = ()) -> None:
    """Loss of the distinct non-global critical points vs k, per isotropy type, with the families followed in
    k (``jaxsym family``) drawn as curves over the same range of k."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    crit = minima[minima["status"] != "global"]
    types = sorted({isotropy_type(o, k) for o, k in zip(crit["neuron_orbits"], crit["k"])})
    cmap = plt.get_cmap("tab10")
    for i, t in enumerate(types):
        sel = crit[[isotropy_type(o, k) == t for o, k in zip(crit["neuron_orbits"], crit["k"])]]
        for status, marker in (("spurious", "o"), ("saddle", "x"), ("degenerate", "s")):
            s = sel[sel["status"] == status]
            if len(s):
                ax.scatter(s["k"], s["loss"], marker=marker, color=cmap(i % 10), s=20 + 10 * np.log10(s["count"]),
                           label=f"{tex_label(t)} ({status})")
    if len(crit):
        lo, hi = crit["k"].min() - 0.5, crit["k"].max() + 0.5
        for label, t in families:
            t = t[(t["k"] >= lo) & (t["k"] <= hi)]
            if len(t):
                ax.plot(t["k"], t["loss"], "-", lw=1, color="0.4", zorder=0)
                ax.annotate(f"family {tex_label(label)}", (t["k"].iloc[-1], t["loss"].iloc[-1]), fontsize=6,
                            color="0.3", xytext=(3, 0), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("k (student neurons)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss F(W)")
    ax.set_title("Distinct non-global critical points (marker size ~ log count)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    else:  # none, or only not_converged ones (not plotted)
        ax.text(0.5, 0.5, "no non-global critical point found", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    _save(fig, path, formats)


def fig_loss_hist(runs: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf")) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    loss = runs["loss"].to_numpy(dtype=float)
    floor = 1e-16
    bins = np.logspace(-16, max(0.5, np.log10(max(np.nanmax(np.abs(loss)), 1e-15)) + 0.5), 60)
    for status in STATUSES:
        v = np.abs(loss[(runs["status"] == status).to_numpy()])
        v = v[np.isfinite(v)]
        if len(v):
            ax.hist(np.maximum(v, floor), bins=bins, alpha=0.7, color=COLOURS[status], label=f"{status} ({len(v)})")
    ax.set_xscale("log")
    ax.set_xlabel("final loss F(W) (|F|, floored at 1e-16)")
    ax.set_ylabel("runs")
    ax.set_title("Final losses")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path, formats)


def fig_spectra(minima: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf")) -> None:
    types = _types(minima)
    minima = minima.assign(_type=types)
    kinds = sorted(set(types))
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.2 * max(1, len(kinds)), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        sel = minima[minima["_type"] == kind]
        ks = sorted(sel["k"].unique())
        cmap = plt.get_cmap("viridis", max(2, len(ks)))
        markers = "os^Dv<>"
        for _, r in sel.sort_values(["k", "loss"]).iterrows():  # every orbit: a marker per orbit of one k
            nth = int(((sel["k"] == r["k"]) & (sel["loss"] < r["loss"])).sum())
            ax.scatter(r["eig_values"], r["eig_mults"], s=14, color=cmap(ks.index(r["k"])),
                       marker=markers[nth % len(markers)], facecolors="none" if nth else None,
                       label=f"k={r['k']}" + (f", F={r['loss']:.3g}" if (sel["k"] == r["k"]).sum() > 1 else ""))
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_yscale("log")
        ax.set_title("global " + tex_label("ΔS_k") if kind == "global" else tex_label(kind), fontsize=9)
        ax.set_xlabel("eigenvalue")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("multiplicity")
    fig.suptitle("Hessian spectra of the distinct critical points, per isotropy type", fontsize=10)
    fig.tight_layout()
    _save(fig, path, formats)


def fig_type_shares(runs: pd.DataFrame, minima: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf")) -> None:
    """Share of runs ending in each isotropy type vs k, stacked (runs that are not certified critical points:
    "other"); one panel per d and other grid value."""
    key = ["cell", "orbit"]
    typ = minima.assign(_type=_types(minima))[[*key, "_type"]]
    r = runs.merge(typ, on=key, how="left")
    r["_type"] = r["_type"].fillna("other")
    kinds = ["global", *sorted(set(r["_type"]) - {"global", "other"}), "other"]
    kinds = [t for t in kinds if (r["_type"] == t).any()]
    palette = TYPE_COLOURS
    groups = _panels(r)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(6.4, 3.8 * len(groups)), 4.0), squeeze=False)
    for ax, (title, g) in zip(axes[0], groups):
        share = g.groupby("k")["_type"].value_counts(normalize=True).unstack(fill_value=0.0)
        bottom = np.zeros(len(share))
        for i, t in enumerate(kinds):
            v = 100 * share[t].to_numpy() if t in share else np.zeros(len(share))
            colour = "0.85" if t == "other" else COLOURS["global"] if t == "global" else palette[i % len(palette)]
            ax.bar(share.index, v, bottom=bottom, color=colour, label=tex_label(t) if t not in ("global", "other")
                   else t)
            bottom += v
        ax.set_xlabel("k (student neurons)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
    axes[0][0].set_ylabel("share of runs (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle("End points by isotropy type", fontsize=11)
    fig.tight_layout()
    _save(fig, path, formats)


def fig_lambda_min(minima: pd.DataFrame, path: Path, formats: Formats = ("png", "pdf")) -> None:
    """Signed smallest Hessian eigenvalue of each distinct critical point vs k, per isotropy type (symlog, so
    that saddles below zero show)."""
    m = minima.assign(_type=_types(minima))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (t, g) in enumerate(m.groupby("_type", sort=True)):
        colour = COLOURS["global"] if t == "global" else TYPE_COLOURS[i % len(TYPE_COLOURS)]
        ax.scatter(g["k"], g["hess_min"], s=24, color=colour, label=tex_label(t) if t != "global" else t)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-3)
    top = float(np.nanmax(np.abs(m["hess_min"]))) if m["hess_min"].notna().any() else 1.0
    lo = float(np.nanmin(m["hess_min"])) if m["hess_min"].notna().any() else 0.0
    ax.set_ylim(min(-2e-3, 2 * lo), 2 * top)
    ax.set_xlabel("k (student neurons)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(r"$\lambda_{\min}$ of the Hessian")
    ax.set_title("Smallest Hessian eigenvalue of the distinct critical points")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, formats)


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
        cert = (f"sampled objective: {s.distribution} inputs, {s.hidden_layers} hidden layer(s), output "
                f"{'trained' if s.train_output else 'fixed'}, {s.mode} SGD with batches of {s.batch_size}; "
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
        fig_status(runs, figs / "status.png", formats)
        fig_loss_hist(runs, figs / "loss_hist.png", formats)
        lines += ["## End points per cell\n", markdown(status_table(runs), ".1f"), "",
                  "![share of runs per status](figures/status.png)\n",
                  "![histogram of final losses](figures/loss_hist.png)\n"]
        if not minima.empty:
            fig_losses(minima, figs / "losses.png", formats, load_families(out))
            fig_spectra(minima, figs / "spectra.png", formats)
            fig_type_shares(runs, minima, figs / "types.png", formats)
            fig_lambda_min(minima, figs / "lambda_min.png", formats)
            lines += ["## Distinct critical points (modulo the symmetry group)\n",
                      markdown(minima_table(minima, per_cell=12)), "",
                      "![share of runs per isotropy type](figures/types.png)\n",
                      "![loss of distinct critical points](figures/losses.png)\n",
                      "![smallest Hessian eigenvalue](figures/lambda_min.png)\n",
                      "![Hessian spectra](figures/spectra.png)\n",
                      f"Every figure is in `figures/` as {', '.join(formats).upper()}.\n"]
    path = out / "report.md"
    results.atomic_write_text("\n".join(lines), path)  # replaces a link rather than writing through it
    return path
