"""Engines: how a chunk of runs descends, whatever the objective.

The :class:`~.interface.Engine` interface and the one save-or-stop chunk driver (:mod:`.interface`), the
closed-form gradient-descent engine with run keys and initialisation (:mod:`.descent`), the compacting engine
with its phases and hand-off points (:mod:`.compact`) and the sampled-SGD engine (:mod:`.sgd`).

May import: :mod:`jaxsym.io`, :mod:`jaxsym.config` and the layers below them.
"""
