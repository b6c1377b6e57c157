"""The compacting engine and the fast protocol: the work per run is what the run needs.

**Compaction.** A chunk's runs form a queue; ``B`` slots train ``B`` runs at once, ``R`` steps per round
(``jax.lax.fori_loop``), and at the end of every round each slot whose run has stopped writes it back to the
queue and takes the next pending run. The loop ends when the queue is empty and the slots are idle, so the cost
is the sum of the steps the runs need (plus at most ``R − 1`` idle steps per run), not ``B ×`` the longest
run. A run's trajectory depends only on its own state: a slot steps its run exactly as the run would step
alone (the same single-run :class:`~jaxsym.engine.descent.RunLoop`, frozen by a select once it stops), whichever slot,
round or batch it is in. When the queue is empty and at most a sixteenth of the slots are busy, ``advance``
returns and the host gathers the busy slots into a smaller program (``B → B/16``, at least 16 slots), so
stragglers do not keep ``B`` slots turning. The ladder is short on purpose: each of its sizes is one more
program to compile, and on a CPU a round of 16 slots costs about what one of 2 costs (a step's fixed costs
dominate at these sizes): with sizes 128 and 16 a first sweep of the published cells compiled 2 programs per
cell where 128, 32, 8 and 2 compiled 4, and warm sweeps were as fast; shrinking by 16 (at most 8 busy) rather
than by 8 compiled faster in four cold sweeps of four (``docs/benchmarks.md``, a fifth session).

**Phases and hand-off.** A run stops at a phase's threshold ``τ_j`` (``handoff_from``, then each tenth of it,
down to ``grad_tol``; the last phase is the plain rule ``‖∇F‖ ≤ grad_tol`` or the budget). Between phases, the
runs that stopped at ``τ_j`` are offered to a *hand-off test* (a callback: the pipeline's, per orbit,
:mod:`jaxsym.certify.basins`): those it certifies leave descent — the float64 critical point it names is where
continued descent would end —, the others go on descending from where they were, in the next phase. So a
hand-off never changes a run's outcome: it only skips descent steps whose end is known.

The chunk's state (:class:`CompactState`: queue, thresholds, hand-off marks, slots, clock) is a pytree; the
driver :func:`descend` saves it with orbax between rounds (always in the full slot shape) and resumes from it;
its loop body does not depend on the bound, so ``advance(advance(s, a), b) == advance(s, b)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.config import TrainConfig
from jaxsym.engine.descent import (
    RunLoop,
    RunResult,
    TrainState,
    bind_inputs,
    cell_inputs,
    generic,
    in_dtype,
    make_run_loop,
    starts,
)
from jaxsym.engine.interface import Engine, drive
from jaxsym.io import checkpoint
from jaxsym.numerics import optimizers
from jaxsym.numerics.parallel import invariant_jit

log = logging.getLogger("jaxsym")
Array = jax.Array

ROUND_STEPS = 16        # steps per round between harvests
HOST_STEPS = 512        # clock steps per host segment (shrink checks, checkpoints)
SHRINK = 16             # slots shrink by this factor when the queue is empty and few are busy
TAIL_SLOTS = 16         # ... but not below this many (nor below a smaller chunk's full size): the ladder's last size
MIN_SLOTS = 2           # never fewer slots (one is not faster than two)


class CompactState(NamedTuple):
    """In-flight state of a compacting chunk (N queue entries, B slots).

    Attributes:
      queue: (N, …) every run's state, in chunk order (up to date for runs not in a slot).
      tol: (N,) stopping threshold of the current phase.
      handed: (N,) bool, handed to the float64 certificate (never trained again).
      pending: (N,) int32 queue positions this phase still has to run, ``N``-padded.
      n_pending, next_pos: () int32 pending count and the next to load.
      n_valid: () int32 the chunk's real runs (the rest of the queue is padding).
      slot_pos: (B,) int32 queue position of each slot's run, ``N`` when idle.
      slot: (B, …) the slots' run states.
      clock: () int32 steps of the chunk clock (rounds × R).
      slot_rounds: () int32 Σ over rounds of B (slot-steps executed = R · slot_rounds).
      phase: () int32 index of the current threshold.
    """

    queue: TrainState
    tol: Array
    handed: Array
    pending: Array
    n_pending: Array
    next_pos: Array
    n_valid: Array
    slot_pos: Array
    slot: TrainState
    clock: Array
    slot_rounds: Array
    phase: Array


def thresholds(cfg: TrainConfig) -> list[float]:
    """The phases' stopping thresholds: ``handoff_from`` and each tenth of it above ``grad_tol``, then
    ``grad_tol``. One phase (no hand-off) for an optimizer without the contraction argument the hand-off test
    needs (:attr:`jaxsym.numerics.optimizers.Optimizer.contraction`; ``why_not`` says why)."""
    out: list[float] = []
    t = cfg.handoff_from
    handoff = optimizers.OPTIMIZERS[cfg.optimizer].contraction is not None
    while handoff and t > cfg.grad_tol * (1 + 1e-9):
        out.append(t)
        t /= 10
    return [*out, cfg.grad_tol]


def _where(mask: Array, a: Array, b: Array) -> Array:
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def _select(mask: Array, a: TrainState, b: TrainState) -> TrainState:
    return jax.tree.map(lambda x, y: _where(mask, x, y), a, b)


class CompactOps(NamedTuple):
    """What :func:`descend` needs beyond the :class:`~jaxsym.engine.interface.Engine`: phase changes and slot
    resizing."""

    engine: Engine[CompactState, RunResult]
    next_phase: Callable[[CompactState, Array, Array], CompactState]   # (state, tol (N,), handed (N,))
    resize: Callable[[CompactState, int], CompactState]
    slots: int
    round_steps: int = ROUND_STEPS


def make_compact_engine(cfg: TrainConfig, V: np.ndarray, k: int, seed: int, *, slots: int,
                        round_steps: int = ROUND_STEPS) -> CompactOps:
    """The compacting :class:`~jaxsym.engine.interface.Engine` of the closed-form descent (module docstring).

    ``init(runs)`` queues the chunk's runs (a padded chunk repeats its last run index: the repeats are not
    trained, and :func:`descend` copies the last run's result to them) with the first phase's threshold.
    """
    V = np.asarray(V)
    d = V.shape[1]
    first = thresholds(cfg)[0]
    base, lr = cell_inputs(cfg, seed, d, k)

    def build() -> CompactOps:
        def run_loop(lr: Array | None = None) -> RunLoop:
            return make_run_loop(cfg, np.asarray(V, cfg.dtype), lr)  # converted on the host: no program

        loop = run_loop()  # for what does not step (running, finish)
        dtype = jnp.dtype(cfg.dtype)

        def init(runs: Array, base: Array, lr: Array) -> CompactState:
            N = runs.shape[0]
            B = max(MIN_SLOTS, min(slots, N))
            queue = jax.vmap(run_loop(lr).init)(starts(runs, base, d, k, cfg))
            n = (jnp.argmax(runs == runs[-1]) + 1).astype(jnp.int32)
            pos = jnp.arange(N, dtype=jnp.int32)
            zero = jnp.int32(0)
            slot = jax.tree.map(lambda q: q[jnp.arange(B) % N], queue)
            return CompactState(queue, jnp.full(N, first, dtype), jnp.zeros(N, bool), jnp.where(pos < n, pos, N), n,
                                zero, n, jnp.full(B, N, jnp.int32), slot, zero, zero, zero)

        def n_running(s: CompactState) -> Array:
            N = s.tol.shape[0]
            return jnp.sum(s.slot_pos < N) + (s.n_pending - s.next_pos)

        def shrink_due(s: CompactState) -> Array:
            N, B = s.tol.shape[0], s.slot_pos.shape[0]
            floor = ladder_floor(max(MIN_SLOTS, min(slots, N)))
            return (B > floor) & (s.next_pos >= s.n_pending) & (jnp.sum(s.slot_pos < N) <= B // SHRINK)

        def round_(s: CompactState, lr: Array) -> CompactState:
            N, B = s.tol.shape[0], s.slot_pos.shape[0]
            step = run_loop(lr).step
            # refill idle slots from the queue, in slot order
            free = s.slot_pos >= N
            rank = jnp.cumsum(free) - 1
            take = free & (rank < s.n_pending - s.next_pos)
            new_pos = jnp.where(take, s.pending[jnp.clip(s.next_pos + rank, 0, N - 1)], N)
            loaded = jax.tree.map(lambda q: q[jnp.clip(new_pos, 0, N - 1)], s.queue)
            slot = _select(take, loaded, s.slot)
            slot_pos = jnp.where(take, new_pos, s.slot_pos)
            live = slot_pos < N
            tol = s.tol[jnp.minimum(slot_pos, N - 1)]

            def body(_: Array, sl: TrainState) -> TrainState:
                run = live & jax.vmap(loop.running)(sl, tol)
                return _select(run, jax.vmap(step)(sl), sl)

            slot = jax.lax.fori_loop(0, round_steps, body, slot)
            # harvest: stopped runs go back to the queue, their slots become idle
            stopped = live & ~jax.vmap(loop.running)(slot, tol)
            idx = jnp.where(stopped, slot_pos, N)
            queue = jax.tree.map(lambda q, x: q.at[idx].set(x, mode="drop"), s.queue, slot)
            return s._replace(queue=queue, slot=slot, slot_pos=jnp.where(stopped, N, slot_pos),
                              next_pos=s.next_pos + jnp.sum(take).astype(jnp.int32),
                              clock=s.clock + round_steps, slot_rounds=s.slot_rounds + B)

        def advance(s: CompactState, until: Array, lr: Array) -> CompactState:
            """Rounds until ``until`` on the clock, nothing left to run, or a shrink is due."""
            return jax.lax.while_loop(lambda s: (n_running(s) > 0) & (s.clock < until) & ~shrink_due(s),
                                      lambda s: round_(s, lr), s)

        def finish(s: CompactState) -> RunResult:
            return jax.vmap(loop.finish)(s.queue)

        def next_phase(s: CompactState, tol: Array, handed: Array) -> CompactState:
            N = s.tol.shape[0]
            pos = jnp.arange(N, dtype=jnp.int32)
            todo = (pos < s.n_valid) & ~handed & jax.vmap(loop.running)(s.queue, tol)
            pending = jnp.sort(jnp.where(todo, pos, N)).astype(jnp.int32)
            return s._replace(tol=tol, handed=handed, pending=pending, n_pending=jnp.sum(todo).astype(jnp.int32),
                              next_pos=jnp.int32(0), phase=s.phase + 1)

        key = (generic(cfg), V, k, slots, round_steps)  # the seed and the step size are arguments
        # a run's steps do not depend on the slot count or the chunk
        engine = Engine(invariant_jit(init, name="compact-init", key=key),
                        invariant_jit(advance, name="compact-advance", key=key),
                        invariant_jit(finish, name="compact-finish", key=key), host_n_running)
        return CompactOps(engine, invariant_jit(next_phase, name="compact-next-phase", key=key), resize, slots,
                          round_steps)

    ops = in_dtype(build, cfg.dtype)()
    return CompactOps(bind_inputs(ops.engine, base, lr, cfg.dtype), in_dtype(ops.next_phase, cfg.dtype),
                      in_dtype(ops.resize, cfg.dtype), slots, round_steps)


def _busy(s: CompactState) -> np.ndarray:
    """(B,) bool: the slots holding a run, read on the host."""
    return np.asarray(s.slot_pos) < s.tol.shape[0]


def host_n_running(s: CompactState) -> int:
    """Runs not yet stopped in this phase (busy slots and pending queue entries), read on the host."""
    return int(_busy(s).sum()) + int(s.n_pending) - int(s.next_pos)


def ladder_floor(full: int) -> int:
    """The smallest size of the slot ladder of a chunk of ``full`` slots: :data:`TAIL_SLOTS`, or ``full`` if
    fewer."""
    return min(full, TAIL_SLOTS)


def _target_slots(busy: int, B: int, floor: int) -> int:
    """Slots for ``busy`` runs once the queue is empty: the size ladder ``B, B/16, …`` (not below ``floor``)
    shrinks while a sixteenth of the slots would still hold every busy run."""
    while B > floor and busy <= B // SHRINK:
        B = max(floor, B // SHRINK)
    return B


def _phase_slots(pending: int, B: int, floor: int) -> int:
    """Slots at the start of a phase with ``pending`` runs: the largest size of the ladder ``B, B/16, …`` (not
    below ``floor``) that the runs fill (the queue refills them), so that a phase of few runs does not turn
    mostly idle slots."""
    while B > floor and pending < B:
        B = max(floor, B // SHRINK)
    return B


def resize(s: CompactState, B: int) -> CompactState:
    """The same state with ``B`` slots: busy slots first (in slot order), then idle ones. A larger ``B`` pads
    with idle slots; a smaller one needs at most ``B`` busy slots. Gathers on the host (the slots are small),
    so that no program is compiled per pair of sizes."""
    N = s.tol.shape[0]
    busy = _busy(s)
    if busy.sum() > B:
        raise ValueError(f"cannot resize {busy.sum()} busy slots to {B}")
    order = np.argsort(~busy, kind="stable")
    order = np.concatenate([order, np.full(max(0, B - len(order)), order[-1])])[:B]
    slot_pos = np.where(np.arange(B) < busy.sum(), np.asarray(s.slot_pos)[order], N).astype(np.int32)
    slot = jax.tree.map(lambda x: np.asarray(x)[order], jax.device_get(s.slot))
    return s._replace(slot=jax.device_put(slot), slot_pos=jax.device_put(slot_pos))


class DescentStats(NamedTuple):
    """How much work a chunk's descent did: steps the runs needed, slot-steps executed, phases, hand-offs."""

    needed: int
    executed: int
    phases: int
    handed: int

    @property
    def efficiency(self) -> float:
        return self.needed / max(self.executed, 1)


Handoff = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(positions (c,), W (c, k, d), ∇F(W) (c, k, d)) -> accepted (c,) bool``: the runs offered between phases."""


def descend(ops: CompactOps, runs: np.ndarray, cfg: TrainConfig, handoff: Handoff, *, inflight: Path | None = None,
            checkpoint_interval_s: float = 60.0, label: str = "") -> tuple[RunResult, np.ndarray, DescentStats]:
    """Train a (padded) chunk with the fast protocol; returns host results (N), the hand-off mask and stats.

    ``handoff(positions, W, g)`` decides for runs that stopped at a phase's threshold (their iterates and
    gradients) whether they leave descent.
    The chunk runs under the one save-or-stop driver (:func:`jaxsym.engine.interface.drive`), with the slots'
    resizing after each host segment and the hand-off between phases as its hooks: under a set
    :func:`~jaxsym.engine.interface.stop_on` event it saves and raises :class:`~jaxsym.engine.interface.StoppedError`
    after the current host segment.
    """
    eng = ops.engine
    taus = thresholds(cfg)
    template = eng.init(jax.device_put(runs.astype(np.uint32)))
    state = template
    full_b = template.slot_pos.shape[0]
    floor = ladder_floor(full_b)
    if inflight is not None and (got := checkpoint.restore(inflight, template)) is not None:
        state = jax.device_put(got[1])
        log.info("%s resumed in-flight chunk at clock %d (phase %d) from %s", label, int(state.clock),
                 int(state.phase), inflight)

    def resized(state: CompactState) -> CompactState:  # fewer slots once the queue is empty and few are busy
        B = state.slot_pos.shape[0]
        busy = int(_busy(state).sum())
        if int(state.next_pos) >= int(state.n_pending) and _target_slots(busy, B, floor) < B:
            state = ops.resize(state, _target_slots(busy, B, floor))
        return state

    def next_phase(state: CompactState) -> CompactState | None:  # the hand-off, then the next threshold
        phase = int(state.phase)
        if phase >= len(taus) - 1:
            return None
        q = jax.device_get(state.queue)
        pos = np.arange(len(runs))
        gnorm = np.linalg.norm(np.asarray(q.g, np.float64).reshape(len(runs), -1), axis=1)
        stopped = (pos < int(state.n_valid)) & ~np.asarray(state.handed) & np.asarray(q.finite) \
            & (np.asarray(q.step) < cfg.steps) & (gnorm <= taus[phase])
        cand = np.flatnonzero(stopped)
        handed = np.asarray(state.handed).copy()
        if len(cand):
            handed[cand] = handoff(cand, np.asarray(q.W)[cand], np.asarray(q.g)[cand])
        dtype = np.asarray(state.tol).dtype
        state = ops.next_phase(state, np.full(len(runs), taus[phase + 1], dtype), handed)
        return ops.resize(state, _phase_slots(int(state.n_pending), full_b, floor))

    state = drive(eng, state, until=lambda s: int(s.clock) + HOST_STEPS, step_of=lambda s: int(s.clock),
                  inflight=inflight, checkpoint_interval_s=checkpoint_interval_s, label=label,
                  after_segment=resized, saved=lambda s: ops.resize(s, full_b), next_phase=next_phase)
    res = jax.tree.map(np.asarray, jax.device_get(eng.finish(state)))
    n = int(state.n_valid)
    if n < len(runs):  # padding repeats the last run: copy its result
        res = jax.tree.map(lambda x: np.concatenate([x[:n], np.repeat(x[n - 1:n], len(runs) - n, axis=0)]), res)
    handed = np.asarray(state.handed)
    stats = DescentStats(int(np.sum(res.steps[:n])), ops.round_steps * int(state.slot_rounds), int(state.phase) + 1,
                         int(handed[:n].sum()))
    return res, handed, stats
