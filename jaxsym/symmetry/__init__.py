"""Symmetry: the permutation groups of layered networks and what they explain.

The one symmetry core — group elements, colour refinement, exact isotropy groups, equivalence of points
(:mod:`.group`); the group seam, what the sweeps ask of a group and its instances (:mod:`.groups`); names of
groups in the papers' notation (:mod:`.naming`); the one clusterer of points into orbits (:mod:`.orbits`);
Hessian spectra grouped with multiplicities and the multiplicities symmetry predicts (:mod:`.spectra`).

May import: :mod:`jaxsym.landscape`, :mod:`jaxsym.numerics`.
"""
