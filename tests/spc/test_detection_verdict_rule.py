"""Time to detect is simulated with the verdict's own rule (issue 18, point 7).

Workbook 03 judges a change by the periods after it alone, against the baseline's frozen centre
line and limits (:func:`qi_helpers.changes.verdicts.signals_after_baseline`): a run that began
in the baseline does not count for the change. :func:`qi_helpers.spc.detect.detection_curve`
must time a change with that rule. The brute force here is written out independently, with
numpy, for a p chart and Anhøj's rules (Anhøj & Olesen 2014): after tau periods the change is
seen when, among those tau periods alone,

- a point lies beyond the frozen 3-sigma limit on the side of the change, or
- the longest run on the side of the change exceeds ``round(log2(n_useful) + 3)``, or
- the number of crossings of the centre line is below ``qbinom(0.05, n_useful - 1, 0.5)``,

with ``n_useful`` the points not on the centre line; series whose baseline, charted alone,
signals on its own are left out (as the simulation does).

The setting is the issue's: p 0.20 -> 0.14 with 50 cases a period. Judged over baseline plus
changed points the simulation needed 21 periods for 80% detection; the verdict's rule needs
about 15 (20 baseline periods).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from qi_helpers.spc.detect import detection_curve

BASE, HORIZON, N, P0, P1 = 20, 30, 50, 0.20, 0.14


def _runs(side: np.ndarray) -> tuple[int, int, int, int]:
    """n_useful, crossings, longest run below and longest run above of a sequence of signs."""
    s = side[side != 0]
    if s.size == 0:
        return 0, 0, 0, 0
    cuts = np.flatnonzero(np.diff(s)) + 1
    runs = np.split(s, cuts)
    below = max((r.size for r in runs if r[0] < 0), default=0)
    above = max((r.size for r in runs if r[0] > 0), default=0)
    return s.size, len(runs) - 1, below, above


def _anhoej_limits(n_useful: int) -> tuple[float, float]:
    return round(np.log2(n_useful) + 3), stats.binom.ppf(0.05, n_useful - 1, 0.5)


def _brute_force(sims: int, seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    first = []
    while len(first) < sims:
        counts = rng.binomial(N, np.r_[np.full(BASE, P0), np.full(HORIZON, P1)])
        p = counts / N
        cl = counts[:BASE].sum() / (N * BASE)
        sd = np.sqrt(cl * (1 - cl) / N)
        ucl, lcl = cl + 3 * sd, max(cl - 3 * sd, 0.0)
        base = p[:BASE]
        nu, cr, lo, hi = _runs(np.sign(base - cl))
        lr_max, cr_min = _anhoej_limits(nu)
        if ((base > ucl) | (base < lcl)).any() or max(lo, hi) > lr_max or cr < cr_min:
            continue  # the baseline signals on its own
        seen = 0
        for tau in range(1, HORIZON + 1):
            tail = p[BASE : BASE + tau]
            nu, cr, lo, _ = _runs(np.sign(tail - cl))
            lr_max, cr_min = _anhoej_limits(nu) if nu else (np.inf, -np.inf)
            if (tail < lcl).any() or lo > lr_max or cr < cr_min:
                seen = tau
                break
        first.append(seen)
    first = np.asarray(first)
    prob = np.array([np.mean((first > 0) & (first <= t)) for t in range(1, HORIZON + 1)])
    return prob, first.size


def test_detection_curve_matches_a_brute_force_of_the_verdict_rule() -> None:
    bf, kept = _brute_force(400, seed=18)
    curve = detection_curve(
        P0, [N] * BASE, P1 - P0, "p", "anhoej", sims=2000, seed=3, horizon=HORIZON,
        relative=False,
    )  # fmt: skip
    prob = curve["probability"].to_numpy()
    tol = 4 * np.sqrt(prob * (1 - prob) / kept + curve["se"].to_numpy() ** 2) + 1e-9
    assert np.all(np.abs(prob - bf) <= tol), list(zip(prob.round(3), bf.round(3), strict=True))
    # 80% detection: the brute force and the simulation agree within a period
    at_bf = 1 + int(np.argmax(bf >= 0.8))
    at_sim = 1 + int(np.argmax(prob >= 0.8))
    assert abs(at_bf - at_sim) <= 1
    assert at_sim <= 17
