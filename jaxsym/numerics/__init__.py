"""Numerical machinery shared by every layer above: the one Levenberg–Marquardt solver (:mod:`.solvers`), jitted
programs stored across processes (:mod:`.programs`), devices, meshes and batch-invariant compilation
(:mod:`.parallel`) and the registry of optax optimizers a sweep can name (:mod:`.optimizers`).

May import: nothing of jaxsym outside this package.
"""
