"""Sweeps: a grid of cells, each run in chunks by its pipeline, merged into tables.

Chunk sizes, memory and time (:mod:`.plan`); the cell pipeline interface (:mod:`.pipeline`), its closed-form
and sampled implementations (:mod:`.closed_form`, :mod:`.sampled`) and the one place a cell's pipeline is chosen
(:mod:`.pipelines`); the driver — resume, workers, progress, merge (:mod:`.driver`, :mod:`.progress`); reading a
results directory back, merging what is newer (:mod:`.loading`).

May import: :mod:`jaxsym.fixedpoints` and the layers below it (the pipelines never import the driver).
"""
