"""Certificates: what a run's end point is, within stated tolerances.

The exact float64 certificate of closed-form objectives — polish, the hand-off test, the one status rule and
its vocabulary (:mod:`.exact`); the empirical certificate of sampled objectives, with error bars
(:mod:`.empirical`).

May import: :mod:`jaxsym.engine` and the layers below it.
"""
