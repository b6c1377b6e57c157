"""Figures of fixed-point families: one family followed in k (``jaxsym family``) and many families in continuous
k (``jaxsym atlas --k-max``). Drawn from the tables :mod:`jaxsym.fixedpoints` computes, never inside them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.families import Family, fit_power
from jaxsym.io import columns as col
from jaxsym.report.figures import save


def plot_family(table: pd.DataFrame, spectra: pd.DataFrame, title: str, path: str | Path) -> dict[str, float]:
    """Loss vs k (log–log, fitted rate on the upper half of k), λ_min vs k, and the spectrum vs k."""
    t = table
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    ax.loglog(t[col.K], t[col.LOSS], ".", ms=3, label=col.LOSS)
    tail = t[t[col.K] >= t[col.K].max() / 2]
    fit = {}
    if len(tail) >= 3:
        c, a = fit_power(tail[col.K].to_numpy(), tail[col.LOSS].to_numpy())
        fit = {"loss_c": c, "loss_rate": a}
        ax.loglog(t[col.K], c * t[col.K] ** a, "--", label=f"fit {c:.3g}·k^{a:.3f} (k ≥ {int(tail[col.K].min())})")
    ax.set_xlabel("k = d")
    ax.set_ylabel("loss F")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(spectra[col.K], spectra[col.HESS_MIN], "o-")  # signed: a family is a saddle before it is born
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("k = d")
    ax.set_ylabel(r"smallest Hessian eigenvalue $\lambda_{\min}$")
    ax = axes[2]
    for _, r in spectra.iterrows():
        ax.scatter([r[col.K]] * len(r[col.EIG_VALUES]), r[col.EIG_VALUES],
                   s=6 + 4 * np.log2(np.asarray(r[col.EIG_MULTS])),
                   color="tab:blue", alpha=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k = d")
    ax.set_ylabel("Hessian eigenvalues (size ~ log multiplicity)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, Path(path))
    return fit


LEGEND_MAX = 20  # families named one by one in a figure's legend


def plot_families(fams: list[Family], labels: list[str], path: str | Path) -> None:
    """Loss (log–log) and λ_min (symlog) against continuous k, one curve per family; births marked. Beyond
    :data:`LEGEND_MAX` families (a scan's), the curves are coloured by the limit of their loss and the legend
    names the limits, not the families."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    floor = 1e-7
    by_limit = len(fams) > LEGEND_MAX
    kinds = {"a/k": ("C0", "loss → a/k"), "constant": ("C1", "loss → a constant"), "zero": ("black", "global minimum")}
    named: set[str] = set()
    for i, (fam, label) in enumerate(zip(fams, labels, strict=True)):
        color = f"C{i % 10}"
        if by_limit:
            color, label = kinds.get(fam.limit[0], ("0.5", "other limits"))
            label = "_" + label if label in named else label  # each limit named once in the legend
            named.add(label)
        if not fam.curve:
            continue
        ks = np.array([c.k for c in fam.curve])
        loss = np.array([c.loss for c in fam.curve])
        if fam.limit[0] != "zero":  # the global minimum (loss 0 up to rounding) has λ_min only
            keep = loss > floor
            axes[0].loglog(ks[keep], loss[keep], lw=0.6 if by_limit else 1, color=color, label=label)
        axes[1].plot(ks, [c.hess_min for c in fam.curve], lw=0.6 if by_limit else 1, color=color, label=label)
        for kk, what, _ in fam.sign_changes:
            if what == "birth":
                axes[1].plot([kk], [0.0], "o", ms=4, color=color)
    axes[0].set_xlabel("k = d (continuous)")
    axes[0].set_ylabel("loss F of the spurious families")
    axes[1].legend(fontsize=6, ncol=2)
    axes[1].axhline(0, color="0.5", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_yscale("symlog", linthresh=1e-3)
    axes[1].set_xlabel("k = d (continuous)")
    axes[1].set_ylabel(r"$\lambda_{\min}$ (dots: births, saddle → minimum)")
    fig.tight_layout()
    save(fig, Path(path))
