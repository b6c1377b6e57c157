"""jaxsym: map the critical points of shallow ReLU networks by brute force, explain them by symmetry.

Public interface (single example, any float dtype, jit/vmap-safe where it is JAX):

- :func:`loss`, :func:`grad`, :func:`hessian` — closed-form population loss of the ReLU teacher–student
  problem with Gaussian inputs, its gradient and Hessian (``(k·d, k·d)``, row-major in ``W``).
- :func:`isotropy` — the exact isotropy group of a point (order, name, orbits, generators).
- :func:`spectrum` — Hessian eigenvalues grouped with multiplicities, ascending.
"""

__version__ = "0.1.0"

from jaxsym.model import grad, hessian, hvp, identity_target, kernel, loss, loss_and_grad, make_target
from jaxsym.spectra import spectrum
from jaxsym.symmetry import Isotropy, isotropy

__all__ = ["Isotropy", "__version__", "grad", "hessian", "hvp", "identity_target", "isotropy", "kernel", "loss",
           "loss_and_grad", "make_target", "spectrum"]
