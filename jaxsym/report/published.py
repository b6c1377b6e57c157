"""Published gradient-descent statistics to compare a sweep with, and when a sweep's cell is comparable.

Safran, Yehudai & Shamir, *The Effects of Mild Over-parameterization on the Optimization Landscape of Shallow
ReLU Neural Networks* (COLT 2021), public repository ``ItaySafran/Overparameterization`` (README, and the archive
of the minima they found, "Processed minima.zip", commit d162690): target ``V = I``, ``k = d``, 500 runs per k of
full-batch gradient descent on the closed-form population loss from ``W_ij ~ N(0, 1/k)`` with step ``5/k`` until
``‖∇F‖ ≤ 1e-12`` (float64). The counts were recomputed from their stored minima (global: loss ≈ 0; their type
``(p, k−p)`` is the isotropy ``Δ(S_{k−p}×S_p)``). They are data to compare with, never expected values of a test.
"""

from __future__ import annotations

from jaxsym.config import Cell, SweepConfig

SOURCE = "Safran, Yehudai & Shamir (COLT 2021), ItaySafran/Overparameterization, Processed minima.zip (d162690)"
RUNS = 500
GLOBAL = {6: 500, 7: 473, 8: 443, 9: 389, 10: 340, 11: 263, 12: 231, 13: 165, 14: 148, 15: 110, 16: 64, 17: 49,
          18: 52, 19: 28, 20: 29, 25: 7, 30: 2}
# runs ending at the isotropy type Δ(S_{k−p}×S_p), p = 1, 2, 3 (k ≤ 20)
BY_TYPE = {
    "Δ(S_{k−1}×S_1)": {6: 0, 7: 27, 8: 57, 9: 111, 10: 150, 11: 204, 12: 209, 13: 195, 14: 185, 15: 158, 16: 141,
                       17: 139, 18: 119, 19: 86, 20: 73},
    "Δ(S_{k−2}×S_2)": {6: 0, 7: 0, 8: 0, 9: 0, 10: 10, 11: 31, 12: 55, 13: 117, 14: 118, 15: 146, 16: 160, 17: 145,
                       18: 132, 19: 147, 20: 140},
    "Δ(S_{k−3}×S_3)": {6: 0, 7: 0, 8: 0, 9: 0, 10: 0, 11: 1, 12: 3, 13: 20, 14: 37, 15: 67, 16: 93, 17: 106,
                       18: 103, 19: 114, 20: 90},
}


def comparable(cfg: SweepConfig, cell: Cell) -> bool:
    """The cell follows the published protocol up to the precision of descent: closed-form ReLU loss with
    Gaussian inputs, identity target, k = m = d, plain gradient descent with step 5/k from ``N(0, 1/d)``
    (float32 with the hand-off is compared with it in ``docs/benchmarks.md``: the same status run by run)."""
    t = cell.train
    return (cfg.sampled is None and cell.target == "identity" and cell.k == cell.d == cell.teacher_width
            and t.optimizer == "sgd" and abs(float(t.learning_rate) - 5 / cell.k) < 1e-12 and t.init_scale == 1.0
            and t.activation == "relu" and t.input_corr == 0.0 and cell.k in GLOBAL)
