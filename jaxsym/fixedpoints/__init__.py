"""Critical points found by symmetry rather than by descent: fixed-point spaces of isotropy groups.

Restricted problems on Fix(Δ(Π S_p)) and continuation in k (:mod:`.families`), families in continuous k with
births, folds and limits (:mod:`.continuum`), the atlas of every fixed-point space at one k and the scan over k
(:mod:`.atlas`), students wider than the teacher (:mod:`.wide`).

May import: :mod:`jaxsym.certify` and the layers below it.
"""
