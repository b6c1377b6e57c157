"""Critical points found by symmetry rather than by descent: fixed-point spaces of isotropy groups.

One core, used three ways. The core: the restricted problem on ``Fix(Δ(S_{p_1}×…×S_{p_r}) [× S_n])`` with real
block sizes and extra neurons (:mod:`.space`: the space, its loss in float64 or many digits), its one solve
(:mod:`.solve`), its block spectrum and the one rule for the index and kind (:mod:`.spectrum`), one continuation
along k, d or n (:mod:`.continuation`) and one search from many starts (:mod:`.search`). The uses: families in k
with births, folds and limits (:mod:`.families`), the atlas at one k and the scan over k (:mod:`.atlas`),
students wider than the teacher (:mod:`.wide`), families far out in k in many digits with closed forms for their
limits (:mod:`.precise`). Figures and Markdown live in :mod:`jaxsym.report`.

May import: :mod:`jaxsym.certify` and the layers below it.
"""
