"""Floors and ceilings of the control limits, worked by hand from qicharts2's rules.

qicharts2 0.8.1 (``qic.charts.R``) caps the upper limits of the p and p' charts at 1 (a
proportion cannot exceed 100%) and cuts the lower limits of the p, p', c, u, u' and g charts at
0 (the t chart's before it is back-transformed). The shared reference cases reach every floor
(their lower limits are 0 in 48 cases) but no ceiling, so each bound is worked here on a small
series where the unbounded limit crosses it; the expected limits come from the textbook
formulas in plain Python, not from :mod:`qi_helpers.spc`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qi_helpers.spc.qic import qic


def _p_frame() -> pd.DataFrame:
    # 3 of 10 events in all, one patient per week for most weeks: sigma with n = 1 is
    # sqrt(0.3 * 0.7) = 0.458, so cl + 3 sigma = 1.675 (ucl) and cl + 2 sigma = 1.217 (ucl_95)
    # are capped at 1, while with n = 10 they are 0.735 and 0.590.
    return pd.DataFrame(
        {
            "week": pd.date_range("2024-01-01", periods=8, freq="W-MON"),
            "events": [1, 0, 0, 1, 0, 0, 1, 0],
            "patients": [1, 1, 1, 1, 1, 1, 1, 3],
        }
    )


def _p_limits(events: list[int], n: list[int], k: float, cap: bool) -> list[float]:
    cl = sum(events) / sum(n)
    out = []
    for ni in n:
        upper = cl + k * math.sqrt(cl * (1 - cl) / ni)
        out.append(min(upper, 1.0) if cap else upper)
    return out


def test_p_chart_upper_limits_are_capped_at_one() -> None:
    d = _p_frame()
    res = qic(d, "week", "events", "patients", chart="p")
    events, n = d["events"].tolist(), d["patients"].tolist()
    assert res["cl"].iloc[0] == pytest.approx(0.3, abs=1e-15)
    np.testing.assert_allclose(res["ucl"], _p_limits(events, n, 3, cap=True), rtol=1e-12)
    np.testing.assert_allclose(res["ucl_95"], _p_limits(events, n, 2, cap=True), rtol=1e-12)
    # n = 1: both capped; n = 3: 0.3 + 3 * sqrt(0.07) = 1.094 capped, 0.3 + 2 * 0.2646 = 0.829
    assert res["ucl"].tolist()[:7] == [1.0] * 7
    assert res["ucl"].iloc[7] == 1.0
    assert res["ucl_95"].iloc[7] == pytest.approx(0.3 + 2 * math.sqrt(0.21 / 3), rel=1e-12)
    assert (res["lcl"] == 0).all() and (res["lcl_95"] == 0).all()


def test_p_chart_cap_applies_before_multiply() -> None:
    res = qic(_p_frame(), "week", "events", "patients", chart="p", multiply=100)
    assert res["ucl"].max() == 100.0
    assert res["y"].max() == 100.0
    assert not res["sigma_signal"].any()  # a point at 100% is not above a limit of 100%


def test_p_prime_chart_upper_limits_are_capped_at_one() -> None:
    d = _p_frame()
    d["patients"] = [1, 2, 1, 2, 1, 2, 1, 2]
    d["events"] = [1, 0, 1, 2, 0, 0, 1, 2]
    res = qic(d, "week", "events", "patients", chart="pp")
    cl = 7 / 12
    sd = [math.sqrt(cl * (1 - cl) / ni) for ni in d["patients"]]
    z = [(e / ni - cl) / s for e, ni, s in zip(d["events"], d["patients"], sd, strict=True)]
    mr = [abs(b - a) for a, b in zip(z, z[1:], strict=False)]
    amr = sum(mr) / len(mr)
    kept = [m for m in mr if m < 3.267 * amr]  # screened moving ranges, as qicharts2
    sigma_z = sum(kept) / len(kept) / 1.128
    upper = [min(cl + 3 * s * sigma_z, 1.0) for s in sd]
    upper95 = [min(cl + 2 * s * sigma_z, 1.0) for s in sd]
    np.testing.assert_allclose(res["ucl"], upper, rtol=1e-12)
    np.testing.assert_allclose(res["ucl_95"], upper95, rtol=1e-12)
    assert (res["ucl"] == 1.0).any(), "the case must reach the ceiling"


@pytest.mark.parametrize("chart", ["u", "c", "up", "i", "run", "g"])
def test_no_ceiling_on_charts_of_counts_rates_or_measurements(chart: str) -> None:
    d = _p_frame()
    d["events"] = [3, 9, 0, 7, 1, 12, 2, 8]
    res = qic(d, "week", "events", "patients" if chart in {"u", "up"} else None, chart=chart)
    if chart != "run":
        assert res["ucl"].max() > 1.0


def test_u_and_c_lower_limits_are_cut_at_zero() -> None:
    d = pd.DataFrame({"x": range(1, 7), "y": [1, 0, 2, 1, 0, 2], "n": [2, 1, 3, 2, 1, 3]})
    u = qic(d, "x", "y", "n", chart="u")
    cl = 6 / 12
    expected = [max(cl - 3 * math.sqrt(cl / ni), 0.0) for ni in d["n"]]
    np.testing.assert_allclose(u["lcl"], expected, rtol=1e-12)
    assert (u["lcl"] == 0).all()
    c = qic(d, "x", "y", chart="c")
    assert c["cl"].iloc[0] == pytest.approx(1.0)
    assert (c["lcl"] == 0).all()  # 1 - 3 * 1 < 0
    assert c["ucl"].iloc[0] == pytest.approx(4.0)


def test_g_chart_lower_limit_is_cut_at_zero() -> None:
    d = pd.DataFrame({"x": range(1, 9), "y": [3, 10, 1, 7, 0, 4, 12, 3]})
    res = qic(d, "x", "y", chart="g")
    m = sum(d["y"]) / len(d)
    assert (res["lcl"] == 0).all()  # m - 3 sqrt(m (m + 1)) < 0
    assert res["ucl"].iloc[0] == pytest.approx(m + 3 * math.sqrt(m * (m + 1)), rel=1e-12)
