"""The report's figures, made for a paper: each readable at one column's width, one colour per isotropy type.

Every function takes the tables (``runs.parquet``, ``minima.parquet`` as DataFrames) and returns a Matplotlib
``Figure``; :mod:`jaxsym.report.markdown` saves them. The conventions, shared by all figures:

- **Width.** A single-panel figure is :data:`COLUMN` inches wide (one column of a two-column paper); a figure
  with several panels (one per ``d`` or per value of another grid axis) is at most :data:`PAGE` inches. Text is
  at least :data:`MIN_FONT` points at that size (tested), legends sit outside the data.
- **Colours.** :func:`type_colours` gives every isotropy type one colour for all figures of a report (global
  minimum green, runs at no critical point grey), in a fixed order of types, so that ``Δ(S_{k−1}×S_1)`` has the
  same colour in every report; statuses have their own fixed colours (:data:`STATUS_COLOURS`).
- **Counts and uncertainty.** Shares carry 95% Wilson intervals (:func:`jaxsym.report.stats.wilson`) and the number of
  runs per cell; published counts are overlaid (open black markers) where the cell follows the published protocol
  (:func:`jaxsym.report.published.comparable`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jaxsym.certify.exact import STATUSES
from jaxsym.io import columns as col
from jaxsym.report import published
from jaxsym.report.stats import status_counts, wilson
from jaxsym.symmetry.naming import isotropy_type, tex_label
from jaxsym.symmetry.spectra import predicted_multiplicities

COLUMN = 3.4  # inches: one column of a two-column paper
PAGE = 7.0    # inches: the full text width
MIN_FONT = 6.0  # points: the smallest text any figure uses
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 6.5, "figure.titlesize": 8, "lines.linewidth": 1.0, "lines.markersize": 4,
         "axes.spines.top": False, "axes.spines.right": False, "savefig.bbox": "tight", "savefig.pad_inches": 0.02}
DPI = 200  # PNG resolution; every figure is also written as a PDF (vector) next to it, for papers
FORMATS = ("png", "pdf", "svg")


def save(fig: plt.Figure, path: Path, formats: tuple[str, ...] = ("png", "pdf")) -> None:
    """The one way a figure is written: ``path`` (a .png name) in every format asked for, PNG at :data:`DPI`,
    PDF and SVG as vectors; the figure is closed."""
    for fmt in formats:
        fig.savefig(Path(path).with_suffix(f".{fmt}"), dpi=DPI if fmt == "png" else None)
    plt.close(fig)


STATUS_COLOURS = {"global": "#009E73", "spurious": "#D55E00", "saddle": "#E69F00", "degenerate": "#CC79A7",
                  "not_converged": "#999999", "diverged": "#000000"}
OTHER = "no critical point"  # runs that ended at none (not converged, diverged)
# Okabe–Ito and Tol's colour-blind-safe colours (green and grey are taken by "global" and OTHER)
PALETTE = ("#D55E00", "#0072B2", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#332288", "#999933", "#44AA99",
           "#AA4499", "#117733", "#661100")
PUBLISHED_STYLE = {"marker": "o", "mfc": "none", "mec": "black", "ecolor": "black", "ls": "none", "ms": 5,
                   "capsize": 2, "elinewidth": 0.7, "zorder": 5}


def style() -> matplotlib.rc_context:
    """The figures' rc settings (:data:`STYLE`), as a context."""
    return plt.rc_context(STYLE)


def _type_key(t: str) -> tuple[int, list[int], str]:
    """Order of types: global first, then by the sizes of the blocks after the first (``Δ(S_{k−1}×S_1)`` before
    ``Δ(S_{k−2}×S_2)`` before ``Δ(S_{k−2}×S_1×S_1)``), other groups by name, no critical point last."""
    if t == "global":
        return (0, [], t)
    if t == OTHER:
        return (3, [], t)
    m = re.fullmatch(r"Δ\(S_\{k−\d+\}((?:×S_\d+)+)\)", t)
    if m:
        sizes = [int(s) for s in re.findall(r"\d+", m.group(1))]
        return (1, [sum(sizes), len(sizes), *sizes], t)
    return (2, [], t)


def types_of(minima: pd.DataFrame) -> list[str]:
    """The k-independent isotropy type of each row of a minima table (``global`` for global minima)."""
    return ["global" if st == "global" else isotropy_type(o, k)
            for st, o, k in zip(minima[col.STATUS], minima[col.NEURON_ORBITS], minima[col.K])]


def type_colours(types: Sequence[str]) -> dict[str, str]:
    """One colour per type (module docstring)."""
    out = {"global": STATUS_COLOURS["global"], OTHER: "#BBBBBB"}
    rest = sorted({t for t in types} - set(out), key=_type_key)
    out.update({t: PALETTE[i % len(PALETTE)] for i, t in enumerate(rest)})
    return out


def _label(t: str) -> str:
    return t if t in ("global", OTHER) else tex_label(t)


def _series(df: pd.DataFrame) -> pd.Series:
    """The part of each row's cell label beyond d and k (other grid axes), so that no figure pools cells."""
    if col.CELL not in df:
        return pd.Series("", index=df.index)
    return df[col.CELL].astype(str).str.replace(r"^d\d+-k\d+-?", "", regex=True)


def panels(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per d (one for all when k = d throughout) and per value of the other grid axes."""
    if df.empty:
        return [("", df)]
    diagonal = bool((df[col.K] == df[col.D]).all())
    out = []
    for rest, g in df.groupby(_series(df), sort=True):
        groups = [("k = d", g)] if diagonal else [(f"d = {d}", gd) for d, gd in g.groupby(col.D)]
        out += [(f"{t}, {rest}" if rest else t, gg) for t, gg in groups]
    return out


def _grid(n: int, height: float = 2.3) -> tuple[Figure, np.ndarray]:
    """``n`` panels: side by side up to the page width (at most 3 per row), one column wide when alone."""
    cols = min(n, 3)
    rows = -(-n // cols)
    width = COLUMN if n == 1 else PAGE
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False, constrained_layout=True)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _k_axis(ax: plt.Axes) -> None:
    ax.set_xlabel("k (student neurons)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend_below(fig: Figure, axes: Sequence[plt.Axes], ncol: int = 3) -> None:
    """One legend for all panels, below them (never over the data)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=min(ncol, len(seen)),
                   frameon=False)


def _n_per_k(ax: plt.Axes, ks: np.ndarray, ns: np.ndarray) -> None:
    """The runs of each cell, written under the axis at its k."""
    if len(set(ns.tolist())) == 1:
        ax.text(1.0, 1.01, f"n = {int(ns[0]):,} per k", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=MIN_FONT)
        return
    for k, n in zip(ks, ns):
        ax.annotate(f"{int(n):,}", (k, 0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=MIN_FONT, color="0.35")


def _published_cells(runs: pd.DataFrame, cfg: object | None) -> set[str]:
    """The cells of ``runs`` that follow the published protocol."""
    if cfg is None:
        return set()
    return {c.label for c in cfg.cells() if published.comparable(cfg, c)}  # type: ignore[attr-defined]


def status_figure(runs: pd.DataFrame, cfg: object | None = None) -> Figure:
    """Share of runs per status vs k with 95% Wilson intervals and the runs per cell; the published share of
    spurious end points (not global) overlaid where the protocol matches."""
    counts = status_counts(runs)
    pub = _published_cells(runs, cfg)
    with style():
        groups = panels(runs)
        fig, axes = _grid(len(groups))
        for ax, (title, g) in zip(axes, groups):
            c = counts[counts[col.CELL].isin(set(g[col.CELL]))]
            for status in STATUSES:
                s = c[c[col.STATUS] == status].sort_values(col.K)
                if s[col.COUNT].sum() == 0:
                    continue
                p = 100 * s["share"].to_numpy()
                ax.errorbar(s[col.K], p, yerr=[p - 100 * s["lo"].to_numpy(), 100 * s["hi"].to_numpy() - p],
                            marker="o", capsize=2, color=STATUS_COLOURS[status], label=status)
            cells = c.drop_duplicates(col.CELL).sort_values(col.K)
            _n_per_k(ax, cells[col.K].to_numpy(), cells["runs"].to_numpy())
            mine = cells[cells[col.CELL].isin(pub)]
            if len(mine):
                ks = mine[col.K].to_numpy()
                x = np.array([published.RUNS - published.GLOBAL[int(k)] for k in ks])
                lo, hi = wilson(x, np.full(len(x), published.RUNS))
                p = 100 * x / published.RUNS
                ax.errorbar(ks, p, yerr=[p - 100 * lo, 100 * hi - p], label=f"spurious, published ({published.RUNS} "
                            f"runs)", **PUBLISHED_STYLE)
            _k_axis(ax)
            ax.set_title(title)
            ax.set_ylim(-3, 103)
            ax.set_ylabel("share of runs (%)")
        _legend_below(fig, axes)
    return fig


def type_shares_figure(runs: pd.DataFrame, minima: pd.DataFrame, colours: dict[str, str],
                       cfg: object | None = None) -> Figure:
    """Share of runs ending at each isotropy type vs k, with 95% Wilson intervals, on a log scale (a type one
    run in a thousand reaches shows); runs at no critical point in grey; published counts overlaid."""
    key = [col.CELL, col.ORBIT]
    typ = minima.assign(_type=types_of(minima))[[*key, "_type"]] if len(minima) else \
        pd.DataFrame(columns=[*key, "_type"])
    r = runs.merge(typ, on=key, how="left")
    r["_type"] = r["_type"].fillna(OTHER)
    pub = _published_cells(runs, cfg)
    with style():
        groups = panels(r)
        fig, axes = _grid(len(groups), 2.5)
        for ax, (title, g) in zip(axes, groups):
            n = g.groupby(col.K).size()
            ks = n.index.to_numpy()
            kinds = sorted(set(g["_type"]), key=_type_key)
            for j, t in enumerate(kinds):
                x = g[g["_type"] == t].groupby(col.K).size().reindex(ks, fill_value=0).to_numpy()
                lo, hi = wilson(x, n.to_numpy())
                p = x / n.to_numpy()
                seen = x > 0  # a share of zero has no place on a log scale
                shift = 0.06 * (j - (len(kinds) - 1) / 2)  # side by side, so that equal shares do not hide
                ax.errorbar(ks[seen] + shift, p[seen], yerr=[(p - lo)[seen], (hi - p)[seen]], marker="o",
                            capsize=2, color=colours.get(t, "0.5"), label=_label(t))
            mine = sorted(int(k) for k in g.loc[g[col.CELL].isin(pub), col.K].unique())
            drawn = False
            for by_k in (published.GLOBAL, *published.BY_TYPE.values()):
                ks_pub = [k for k in mine if k in by_k and (by_k[k] > 0)]
                if not ks_pub:
                    continue
                x = np.array([by_k[k] for k in ks_pub])
                lo, hi = wilson(x, np.full(len(x), published.RUNS))
                p = x / published.RUNS
                ax.errorbar(ks_pub, p, yerr=[p - lo, hi - p], label=None if drawn else
                            f"published ({published.RUNS} runs)", **PUBLISHED_STYLE)
                drawn = True
            _k_axis(ax)
            ax.set_yscale("log")
            ax.set_title(title)
            ax.set_ylabel("share of runs")
            _n_per_k(ax, ks, n.to_numpy())
        _legend_below(fig, axes)
    return fig


def losses_figure(minima: pd.DataFrame, colours: dict[str, str],
                  families: Sequence[tuple[str, pd.DataFrame]] = ()) -> Figure:
    """Loss of the distinct non-global critical points vs k, colour by isotropy type, marker by status (size
    grows with the runs that reached the point); families followed in k (``jaxsym family``) as grey curves."""
    crit = minima[minima[col.STATUS] != "global"]
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN, 2.6), constrained_layout=True)
        types = types_of(crit) if len(crit) else []
        crit = crit.assign(_type=types)
        for t in sorted(set(types), key=_type_key):
            sel = crit[crit["_type"] == t]
            for status, marker in (("spurious", "o"), ("saddle", "x"), ("degenerate", "s")):
                s = sel[sel[col.STATUS] == status]
                if len(s):
                    ax.scatter(s[col.K], s[col.LOSS], marker=marker, color=colours.get(t, "0.5"),
                               s=8 + 6 * np.log10(s[col.COUNT].clip(lower=1)),
                               label=_label(t) + ("" if status == "spurious" else f" ({status})"))
        if len(crit):
            lo, hi = crit[col.K].min() - 0.5, crit[col.K].max() + 0.5
            for label, t in families:
                t = t[(t[col.K] >= lo) & (t[col.K] <= hi)]
                if len(t):
                    ax.plot(t[col.K], t[col.LOSS], "-", lw=0.8, color="0.6", zorder=0)
                    ax.annotate(tex_label(label), (t[col.K].iloc[-1], t[col.LOSS].iloc[-1]), fontsize=MIN_FONT,
                                color="0.4", xytext=(2, 0), textcoords="offset points")
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no non-global critical point found", ha="center", transform=ax.transAxes)
        _k_axis(ax)
        ax.set_ylabel("loss F(W)")
        _legend_below(fig, [ax], 2)
    return fig


def lambda_min_figure(minima: pd.DataFrame, colours: dict[str, str], hess_tol: float) -> Figure:
    """λ_min of the Hessian of each distinct critical point vs k, per isotropy type (symlog, so saddles below
    zero show), with the certificate's band ``|λ| < τ_H`` (degenerate) shaded."""
    m = minima.assign(_type=types_of(minima)) if len(minima) else minima.assign(_type=[])
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN, 2.6), constrained_layout=True)
        for t in sorted(set(m["_type"]), key=_type_key):
            g = m[m["_type"] == t]
            ax.scatter(g[col.K], g[col.HESS_MIN], s=12, color=colours.get(t, "0.5"), label=_label(t))
        vals = m[col.HESS_MIN].dropna()
        top = float(vals.abs().max()) if len(vals) else 1.0
        if len(vals) and (vals > hess_tol).all():  # minima only: a log scale down to the threshold
            ax.axhline(hess_tol, color="black", ls="--", lw=0.7, label=rf"$\tau_H$ = {hess_tol:g} (minimum above)")
            ax.set_yscale("log")
            ax.set_ylim(min(hess_tol, float(vals.min())) / 3, 2 * top)
        else:  # saddles too: symmetric log scale, the degenerate band |λ| < τ_H shaded
            ax.axhspan(-hess_tol, hess_tol, color="0.8", lw=0, zorder=0,
                       label=rf"$|\lambda| < \tau_H$ = {hess_tol:g} (degenerate)")
            ax.axhline(0, color="0.5", lw=0.6)
            ax.set_yscale("symlog", linthresh=hess_tol)
            ax.set_ylim(min(-2 * hess_tol, 2 * float(vals.min()) if len(vals) else 0.0), 2 * max(top, hess_tol))
        _k_axis(ax)
        ax.set_ylabel(r"$\lambda_{\min}$ of the Hessian")
        _legend_below(fig, [ax], 2)
    return fig


def spectra_figure(minima: pd.DataFrame, colours: dict[str, str]) -> Figure:
    """The Hessian spectrum of each distinct critical point (eigenvalue vs multiplicity), a panel per isotropy
    type; the multiplicities symmetry predicts for that type (:func:`jaxsym.symmetry.spectra.predicted_multiplicities`:
    the dimensions of the irreducibles, at the largest k shown) as dashed lines. Colour: k, light to dark."""
    m = minima[minima[col.EIG_VALUES].notna()] if col.EIG_VALUES in minima else minima.iloc[:0]
    m = m.assign(_type=types_of(m)) if len(m) else m.assign(_type=[])
    kinds = sorted(set(m["_type"]), key=_type_key) or ["global"]
    with style():
        fig, axes = _grid(len(kinds), 1.9)
        for ax, kind in zip(axes, kinds):
            sel = m[m["_type"] == kind].sort_values([col.K, col.LOSS])
            ks = sorted(sel[col.K].unique())
            shades = plt.get_cmap("Greys")(np.linspace(0.45, 1.0, max(len(ks), 1)))
            for _, r in sel.iterrows():
                i = ks.index(r[col.K])
                ax.scatter(r[col.EIG_VALUES], r[col.EIG_MULTS], s=9, color=shades[i], zorder=3,
                           label=f"k = {r[col.K]}")
            if len(sel):
                top = sel[sel[col.K] == ks[-1]].iloc[0]
                blocks = sorted((int(s) for s in top[col.NEURON_ORBITS]), reverse=True)
                if sum(blocks) == int(top[col.K]) == int(top[col.D]):
                    for i, mult in enumerate(sorted(set(predicted_multiplicities(blocks)))):
                        ax.axhline(mult, color=colours.get(kind, "0.5"), lw=0.6, ls="--", zorder=1,
                                   label=None if i else "predicted multiplicities (largest k)")
            values = np.concatenate([np.asarray(v, float) for v in sel[col.EIG_VALUES]]) if len(sel) else np.ones(1)
            if (values > 0).all():
                ax.set_xscale("log")
            else:
                ax.set_xscale("symlog", linthresh=max(1e-6, float(np.min(np.abs(values[values != 0]), initial=1.0))))
            ax.set_yscale("log")
            ax.set_title(("global " + tex_label("ΔS_k")) if kind == "global" else tex_label(kind),
                         color=colours.get(kind, "black"))
            ax.set_xlabel("eigenvalue")
            ax.set_ylabel("multiplicity")
        _legend_below(fig, axes, 6)
    return fig


def loss_hist_figure(runs: pd.DataFrame) -> Figure:
    """Histogram of final losses (log scale), per status."""
    loss = runs[col.LOSS].to_numpy(dtype=float)
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN, 2.3), constrained_layout=True)
        finite = np.abs(loss[np.isfinite(loss)])
        top = float(finite.max()) if len(finite) else 1.0
        bins = np.logspace(-16, max(0.5, np.log10(max(top, 1e-15)) + 0.5), 50)
        for status in STATUSES:
            v = np.abs(loss[(runs[col.STATUS] == status).to_numpy()])
            v = v[np.isfinite(v)]
            if len(v):
                ax.hist(np.maximum(v, 1e-16), bins=bins, alpha=0.75, color=STATUS_COLOURS[status],
                        label=f"{status} ({len(v):,})")
        ax.set_xscale("log")
        ax.set_xlabel("final loss |F(W)| (floored at 1e-16)")
        ax.set_ylabel("runs")
        _legend_below(fig, [ax])
    return fig


def steps_figure(runs: pd.DataFrame) -> Figure:
    """Optimizer steps a run took, per status: median and the 10–90% range vs k."""
    with style():
        groups = panels(runs)
        fig, axes = _grid(len(groups))
        for ax, (title, g) in zip(axes, groups):
            for j, status in enumerate(STATUSES):
                s = g[g[col.STATUS] == status]
                if not len(s):
                    continue
                q = s.groupby(col.K)[col.STEPS].quantile([0.1, 0.5, 0.9]).unstack()
                x = q.index.to_numpy() + 0.08 * (j - 1)
                ax.errorbar(x, q[0.5], yerr=[q[0.5] - q[0.1], q[0.9] - q[0.5]], marker="o", capsize=2,
                            color=STATUS_COLOURS[status], ls="none", label=status)
            _k_axis(ax)
            ax.set_yscale("log")
            ax.set_ylabel("steps (median, 10–90%)")
            ax.set_title(title)
        _legend_below(fig, axes)
    return fig


def margins_figure(runs: pd.DataFrame, grad_tol: float) -> Figure | None:
    """The certificate's margins: ‖∇F‖ of the certified points against τ_g, and how far the float64 polish (or
    the hand-off) moved each run's end of descent. None for tables without these columns (sampled sweeps)."""
    if col.POLISH_SHIFT not in runs or col.GRAD_NORM not in runs:
        return None
    crit = runs[runs[col.STATUS].isin(["global", "spurious", "saddle", "degenerate"])]
    with style():
        fig, (a, b) = plt.subplots(1, 2, figsize=(PAGE, 2.2), constrained_layout=True)
        gn = crit[col.GRAD_NORM].to_numpy(dtype=float)
        gn = np.maximum(gn[np.isfinite(gn)], 1e-18)
        if len(gn):
            bins = np.logspace(np.log10(gn.min()) - 0.2, np.log10(max(gn.max(), grad_tol)) + 0.3, 40)
            a.hist(gn, bins=bins, color="0.45", label=f"certified runs ({len(gn):,})")
        a.axvline(grad_tol, color="black", ls="--", lw=0.8, label=rf"$\tau_g$ = {grad_tol:g}")
        a.set_xscale("log")
        a.set_xlabel(r"$\|\nabla F\|$ at the certified point")
        a.set_ylabel("runs")
        shift = runs[col.POLISH_SHIFT].to_numpy(dtype=float)
        handed = runs[col.HANDOFF].to_numpy(dtype=bool) if col.HANDOFF in runs else np.zeros(len(runs), bool)
        ok = np.isfinite(shift) & (shift > 0)
        if ok.any():
            bins = np.logspace(np.log10(shift[ok].min()) - 0.2, np.log10(shift[ok].max()) + 0.2, 40)
            for sel, name, colour in ((handed, "handed off", "#0072B2"), (~handed, "polished", "#D55E00")):
                if (sel & ok).any():
                    b.hist(shift[sel & ok], bins=bins, alpha=0.7, color=colour, label=f"{name} ({(sel & ok).sum():,})")
        b.set_xscale("log")
        b.set_xlabel(r"$\|W_{\rm certified} - W_{\rm descent}\|_F$")
        b.set_ylabel("runs")
        for ax in (a, b):
            ax.legend(loc="upper left", frameon=False)
    return fig


def discovery_figure(curve: pd.DataFrame) -> Figure:
    """Distinct orbits found against runs, one line per cell (:func:`jaxsym.report.coverage.discovery`): solid all
    critical points, dashed the minima; a curve still rising at the right says more runs will find more."""
    key = col.CELL if col.CELL in curve.columns else col.K
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN, 2.3), constrained_layout=True)
        for i, (name, g) in enumerate(curve.groupby(key, sort=False)):
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(g["n"], g["orbits"], color=colour, label=str(name), drawstyle="steps-post")
            ax.plot(g["n"], g["minima"], color=colour, ls="--", drawstyle="steps-post")
        ax.set_xscale("log")
        ax.set_xlabel("runs (in run order)")
        ax.set_ylabel("distinct orbits found")
        _legend_below(fig, [ax])
    return fig
