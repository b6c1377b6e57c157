"""jaxsym: map the critical points of shallow ReLU networks by brute force, explain them by symmetry.

Public interface (single example, any float dtype, jit/vmap-safe where it is JAX):

- :func:`loss`, :func:`grad`, :func:`hessian` — closed-form population loss of the ReLU teacher–student
  problem with Gaussian inputs, its gradient and Hessian (``(k·d, k·d)``, row-major in ``W``).
- :func:`isotropy` — the exact isotropy group of a point (order, name, orbits, generators).
- :func:`spectrum` — Hessian eigenvalues grouped with multiplicities, ascending.
- :func:`run`, :func:`load` — run (or resume) a sweep (``student=``/``teacher=``: your own flax networks), read a
  results directory, as :class:`Results`.
"""

__version__ = "0.1.0"

from jaxsym.api import Results, load, run
from jaxsym.landscape.model import grad, hessian, hvp, identity_target, kernel, loss, loss_and_grad, make_target
from jaxsym.symmetry.group import Isotropy, isotropy
from jaxsym.symmetry.spectra import spectrum

__all__ = ["Isotropy", "Results", "__version__", "grad", "hessian", "hvp", "identity_target", "isotropy", "kernel",
           "load", "loss", "loss_and_grad", "make_target", "run", "spectrum"]
