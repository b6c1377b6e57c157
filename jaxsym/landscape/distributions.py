"""Input distributions for sampled objectives: pure samplers ``sample(key, n, d, dtype) -> (n, d)``.

Every built-in law is **exchangeable** (invariant under all coordinate permutations), so with the identity
teacher the loss keeps the whole group ``S_k × S_d`` and the symmetry question stays the papers' one:

==============  ========================================================================  ==========  =========
name            law                                                                       product?    E x xᵀ
==============  ========================================================================  ==========  =========
``gaussian``    ``N(0, I)``                                                               yes         I
``sphere``      uniform on the sphere of radius ``√d``                                    no          I
``cube``        uniform on ``[−√3, √3]^d``                                                yes         I
``laplace``     i.i.d. Laplace with unit variance                                         yes         I
``student_t``   multivariate t, ``ν = 5`` dof, scaled to unit covariance (elliptical)     no          I
``mixture``     ``½ N(μ, (1−s²) I) + ½ N(−μ, (1−s²) I)``, ``μ = s·𝟙`` (``s = shift``)     no          I + s²(𝟙𝟙ᵀ − I)
==============  ========================================================================  ==========  =========

**Closed forms.** For a positively homogeneous activation (ReLU, leaky ReLU) ``σ(c z) = c σ(z)`` for ``c > 0``, so for
any *rotation-invariant* law ``x = r·u`` (``u`` uniform on the unit sphere, independent of ``r``)
``E[σ(w·x)σ(v·x)] = E[r²]/d · E_{N(0,I)}[σ(w·z)σ(v·z)]``: the population loss is the Gaussian closed form
times ``E‖x‖²/d`` (= 1 for ``gaussian``, ``sphere`` and ``student_t`` as normalised here), with the same
critical points. :func:`closed_form_scale` returns that factor (``None`` where no closed form is known).

A **user sampler** is any importable function with the sampler signature, named ``"package.module:function"``.
It is traced under ``jit``/``vmap`` (called once per SGD step with that step's key), so write it with
``jax.random`` and ``jax.numpy``; its law should be exchangeable for the symmetry analysis to apply.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsym.landscape.activations import ACTIVATIONS

Array = jax.Array
Sampler = Callable[[Array, int, int, jnp.dtype], Array]

STUDENT_DOF = 5.0


def gaussian(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32) -> Array:
    """``N(0, I_d)``; (n, d)."""
    return jax.random.normal(key, (n, d), dtype)


def sphere(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32) -> Array:
    """Uniform on the sphere of radius ``√d`` (so ``E x xᵀ = I``); (n, d)."""
    z = jax.random.normal(key, (n, d), dtype)
    return jnp.sqrt(jnp.asarray(d, dtype)) * z / jnp.linalg.norm(z, axis=1, keepdims=True)


def cube(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32) -> Array:
    """Uniform on ``[−√3, √3]^d`` (unit variance per coordinate); (n, d)."""
    s = jnp.sqrt(jnp.asarray(3.0, dtype))
    return jax.random.uniform(key, (n, d), dtype, minval=-s, maxval=s)


def laplace(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32) -> Array:
    """I.i.d. Laplace coordinates scaled to unit variance; (n, d)."""
    return jax.random.laplace(key, (n, d), dtype) / jnp.sqrt(jnp.asarray(2.0, dtype))


def student_t(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32) -> Array:
    """Multivariate t with ``ν = 5``: ``z / √(g/ν)``, one chi-square ``g`` per sample (not a product law),
    scaled by ``√((ν−2)/ν)`` to unit covariance; (n, d)."""
    kz, kg = jax.random.split(key)
    z = jax.random.normal(kz, (n, d), dtype)
    g = 2.0 * jax.random.gamma(kg, STUDENT_DOF / 2, (n, 1), dtype)  # chi-square(ν)
    return z * jnp.sqrt((STUDENT_DOF - 2) / g).astype(dtype)


def mixture(key: Array, n: int, d: int, dtype: jnp.dtype = jnp.float32, *, shift: float = 0.5) -> Array:
    """Two Gaussians at ``±shift·𝟙`` with covariance ``(1 − shift²) I`` (unit variance per coordinate,
    correlation ``shift²`` between coordinates, bimodal along 𝟙); needs ``|shift| < 1``; (n, d)."""
    ks, kz = jax.random.split(key)
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n, 1)), 1.0, -1.0).astype(dtype)
    z = jax.random.normal(kz, (n, d), dtype)
    return sign * shift + jnp.sqrt(jnp.asarray(1 - shift**2, dtype)) * z


def load_user_sampler(path: str) -> Sampler:
    """Import ``"package.module:function"``; raises ``ValueError`` with the reason when that fails."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"a user sampler is named 'package.module:function', got {path!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load user sampler {path!r}: {e}") from None
    if not callable(fn):
        raise ValueError(f"user sampler {path!r} is not callable")
    where = getattr(importlib.import_module(module), "__file__", None) or "a built-in module"
    logging.getLogger("jaxsym").info("imported the user sampler %s named by the config (module file: %s)", path,
                                     where)
    return fn


class Law(NamedTuple):
    """An input law and what jaxsym knows of it, registered once in :data:`LAWS`.

    Attributes:
      name: the name sweeps use (``[sampled] distribution``).
      sample: ``(key, n, d, dtype) -> (n, d)``; with ``shifted``, it also takes ``shift=``.
      rotation_invariant: ``x = r·u`` with ``u`` uniform on the sphere independent of ``r``: with a positively
        homogeneous activation the population loss is the Gaussian one times ``second_moment`` (module
        docstring).
      product: independent coordinates.
      second_moment: ``E‖x‖²/d``.
    """

    name: str
    sample: Callable[..., Array]
    rotation_invariant: bool
    product: bool
    second_moment: float = 1.0
    shifted: bool = False


LAWS: dict[str, Law] = {law.name: law for law in (
    Law("gaussian", gaussian, rotation_invariant=True, product=True),
    Law("sphere", sphere, rotation_invariant=True, product=False),
    Law("cube", cube, rotation_invariant=False, product=True),
    Law("laplace", laplace, rotation_invariant=False, product=True),
    Law("student_t", student_t, rotation_invariant=True, product=False),
    Law("mixture", mixture, rotation_invariant=False, product=False, shifted=True),
)}
DISTRIBUTION_NAMES = (*LAWS, "user")  # "user": a sampler named by the config


def make_sampler(name: str, *, shift: float = 0.5, sampler: str | None = None) -> Sampler:
    """The sampler of a distribution name (see the module table); ``sampler`` names a user function."""
    if name == "user":
        if sampler is None:
            raise ValueError("distribution 'user' needs sampler = 'package.module:function'")
        return load_user_sampler(sampler)
    if name not in LAWS:
        raise ValueError(f"unknown distribution {name!r}; known: {DISTRIBUTION_NAMES}")
    law = LAWS[name]
    if law.shifted:
        return lambda key, n, d, dtype=jnp.float32: law.sample(key, n, d, dtype, shift=shift)
    return law.sample


def closed_form_scale(name: str, activation: str) -> float | None:
    """``c`` with ``F_law = c · F_Gaussian`` for every weight matrix, or ``None`` if no closed form is known.

    Exact for a positively homogeneous activation (ReLU, leaky ReLU) and a rotation-invariant law: ``c = E‖x‖²/d``
    (module docstring).
    """
    law = LAWS.get(name)
    if law is not None and law.rotation_invariant and ACTIVATIONS[activation].homogeneous:
        return law.second_moment
    return None
