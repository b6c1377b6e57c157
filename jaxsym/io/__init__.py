"""Files: the results directory and its tables, written atomically and verified on reading.

Atomic Parquet and text writes with metadata (:mod:`.results`); the one owner of a sweep directory's layout,
its verified chunks and its lock (:mod:`.rundir`); orbax in-flight checkpoints with a digest per step
(:mod:`.checkpoint`); the documented columns of the tables and the row builders (:mod:`.columns`).

May import: :mod:`jaxsym.config` and the layers below it.
"""
