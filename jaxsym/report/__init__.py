"""Reading results: counts with intervals (:mod:`.stats`), summary tables (:mod:`.summary`), published data to
compare with (:mod:`.published`), the figures (:mod:`.figures`, :mod:`.families`) and the Markdown report of a
sweep (:mod:`.markdown`).

May import: :mod:`jaxsym.sweep` and the layers below it.
"""
