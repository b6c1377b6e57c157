"""Names of isotropy groups in the papers' notation, and their k-independent types.

- :func:`product_name`: the name of a product-type group from its orbit sizes on neurons, e.g. neuron orbits
  ``[5, 1]`` acting diagonally on neurons and coordinates → ``Δ(S5×S1)``; ``[6]`` → ``ΔS6``; identical input
  columns add a kernel factor ``×S2``; a group that only swaps identical columns is ``S2``; trivial → ``1``.
- :func:`isotropy_type`: the same group written relative to ``k`` (``[9, 1]`` at k = 10 → ``Δ(S_{k−1}×S_1)``),
  so that one family of critical points has one label across k (reports, families, atlas).
- :func:`ascii_name`: a plain-ASCII form of either (``D(S9xS1)``, ``D(S_{k-1}xS_1)``) for file names and shells.
- :func:`tex_label`: either as Matplotlib mathtext (``$\\Delta(S_{k-1}\\times S_1)$``) for figure labels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def product_name(sizes: Sequence[int], diagonal: bool, kernel: Sequence[int]) -> str:
    """``Δ(S_{p1}×…×S_{pr})`` (``diagonal``: rows and columns move together) with kernel factors ``×S_q``."""
    sizes = sorted(sizes, reverse=True)
    if all(s == 1 for s in sizes):  # only identical columns can be swapped: the kernel alone
        return "×".join(f"S{s}" for s in sorted(kernel, reverse=True) if s > 1) or "1"
    core = f"S{sizes[0]}" if len(sizes) == 1 else "(" + "×".join(f"S{s}" for s in sizes) + ")"
    extra = [s for s in sorted(kernel, reverse=True) if s > 1]
    return ("Δ" if diagonal else "") + core + "".join(f"×S{s}" for s in extra)


def isotropy_type(neuron_orbits: Sequence[int], k: int) -> str:
    """A ``k``-independent label of a product-type isotropy, e.g. ``[9, 1]`` at k = 10 → ``Δ(S_{k−1}×S_1)``.

    The largest orbit is written relative to ``k``; the trivial group of a generic point gives ``1``.
    """
    sizes = sorted((int(s) for s in neuron_orbits), reverse=True)
    if not sizes or sizes[0] == 1:
        return "1"
    if len(sizes) == 1:
        return "ΔS_k"
    rest = sum(sizes[1:])
    head = f"S_{{k−{rest}}}"
    return "Δ(" + "×".join([head, *(f"S_{s}" for s in sizes[1:])]) + ")"


def ascii_name(name: str) -> str:
    """``Δ(S9×S1)`` → ``D(S9xS1)``: the same name in plain ASCII."""
    return name.replace("Δ", "D").replace("×", "x").replace("−", "-")


def tex_label(name: str) -> str:
    """A group name as Matplotlib mathtext, so that figures show ``S_{k−1}`` as a subscript, not braces."""
    if name in ("1", ""):
        return name
    body = name.replace("Δ", r"\Delta ").replace("×", r"\times ").replace("−", "-")
    body = re.sub(r"S(\d+)", r"S_{\1}", body)  # S9 → S_{9}; S_{k-1} and S_1 are already subscripts
    return f"${body}$"
