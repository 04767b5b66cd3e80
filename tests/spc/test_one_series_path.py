"""The fast path for one series gives exactly what the general path gives.

:func:`qi_helpers.spc.qic.qic` reads a series without facets, notes or phase column straight
into arrays (:mod:`qi_helpers.spc.one_series`); the general path (checked against qicharts2 by
the parity tests) groups observations with pandas. Hypothesis generates series of every chart
type (missing values, zero denominators, unsorted or numbered x, parts, freeze, exclusions) and
each result is compared with the general path's, column by column and dtype by dtype.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qi_helpers.errors import SPCError
from qi_helpers.spc import one_series as one_series_module
from qi_helpers.spc.qic import qic
from qi_helpers.spc.runs import runs_analysis

# The module, not the function of the same name that qi_helpers.spc exports.
qic_module = importlib.import_module("qi_helpers.spc.qic")

CHARTS = ["run", "i", "ip", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g"]
WITH_N = {"p", "pp", "u", "up"}


def _general(*args, **kwargs) -> pd.DataFrame:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(qic_module, "one_series", lambda *a, **k: None)
        return qic(*args, **kwargs)


@st.composite
def series(draw: st.DrawFn) -> tuple[pd.DataFrame, dict]:
    chart = draw(st.sampled_from(CHARTS))
    k = draw(st.integers(2, 40))
    n = np.array(draw(st.lists(st.integers(0, 30), min_size=k, max_size=k)), dtype=float)
    if chart in {"p", "pp"}:
        y = np.array([draw(st.integers(0, int(v))) for v in n], dtype=float)
    elif chart == "t":
        y = np.array(draw(st.lists(st.floats(0.1, 50), min_size=k, max_size=k)))
    else:
        y = np.array(draw(st.lists(st.integers(0, 40), min_size=k, max_size=k)), dtype=float)
    for i in draw(st.lists(st.integers(0, k - 1), max_size=3)):
        y[i] = np.nan
    x_kind = draw(st.sampled_from(["dates", "numbers", "none"]))
    data = {"y": y}
    if x_kind == "dates":
        data["x"] = pd.date_range("2024-01-01", periods=k, freq="W-MON")
    elif x_kind == "numbers":
        data["x"] = np.arange(k) * 1.5 + 3
    frame = pd.DataFrame(data)
    if chart in WITH_N or (chart == "ip" and draw(st.booleans())):
        frame["n"] = n
    if x_kind != "none" and draw(st.booleans()):
        frame = frame.sample(frac=1, random_state=draw(st.integers(0, 99)))
    kwargs = {
        "chart": chart,
        "multiply": draw(st.sampled_from([1, 100])),
        "y_neg": draw(st.booleans()),
        "method": draw(st.sampled_from(["anhoej", "bestbox"])),
    }
    option = draw(st.sampled_from(["none", "part", "freeze", "exclude"]))
    if option == "part" and k > 4:
        kwargs["part"] = [k // 2]
    elif option == "freeze":
        kwargs["freeze"] = draw(st.integers(1, k))
    elif option == "exclude":
        kwargs["exclude"] = [draw(st.integers(1, k))]
    args = (frame, "x" if x_kind != "none" else None, "y", "n" if "n" in frame else None)
    return args, kwargs


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=series())
def test_one_series_path_equals_general_path(case) -> None:
    args, kwargs = case
    try:
        general = _general(*args, **kwargs)
    except SPCError as err:
        with pytest.raises(SPCError, match=str(err)[:40].replace("(", r"\(").replace(")", r"\)")):
            qic(*args, **kwargs)
        return
    pts = one_series_module.one_series(
        args[0], args[1], args[2], args[3], chart=kwargs["chart"], needs_n=False, fixed=None,
        agg_fun="mean",
    )  # fmt: skip
    assert pts is not None, "the fast path must take a sorted or sortable series"
    fast = qic(*args, **kwargs)
    pd.testing.assert_frame_equal(fast, general, check_exact=True)
    assert fast.attrs == general.attrs


def test_duplicate_x_takes_the_general_path() -> None:
    d = pd.DataFrame({"x": [1, 1, 2, 3], "y": [1.0, 2.0, 3.0, 4.0]})
    assert one_series_module.one_series(
        d, "x", "y", None, chart="i", needs_n=False, fixed=None, agg_fun="mean"
    ) is None  # fmt: skip
    res = qic(d, "x", "y", chart="i")
    assert res["y"].tolist() == [1.5, 3.0, 4.0]


@pytest.mark.parametrize(
    "x",
    [
        pd.Series(["a", "b", "c"]),
        pd.Series([1.0, np.nan, 3.0]),
        pd.Series(pd.date_range("2024-01-01", periods=3, tz="Europe/Oslo")),
        pd.Series([1, 2, 3], dtype="Int64"),
    ],
    ids=["categorical", "missing-x", "tz-aware", "nullable"],
)
def test_other_x_take_the_general_path(x: pd.Series) -> None:
    d = pd.DataFrame({"x": x, "y": [1.0, 2.0, 3.0]})
    assert one_series_module.one_series(
        d, "x", "y", None, chart="i", needs_n=False, fixed=None, agg_fun="mean"
    ) is None  # fmt: skip


def test_result_does_not_share_memory_with_the_input() -> None:
    d = pd.DataFrame({"x": pd.date_range("2024-01-01", periods=5), "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    res = qic(d, "x", "y", chart="i")
    d.loc[0, "y"] = 100.0
    d.loc[0, "x"] = pd.Timestamp("2000-01-01")
    assert res["y_sum"].iloc[0] == 1.0 and res["y"].iloc[0] == 1.0
    assert res["x"].iloc[0] == pd.Timestamp("2024-01-01")


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.sampled_from([-2.0, -1.0, 0.0, 1.0, 3.0, np.nan]), min_size=1, max_size=60),
    drop=st.lists(st.integers(0, 59), max_size=5),
    method=st.sampled_from(["anhoej", "bestbox", "cutbox"]),
)
def test_runs_analysis_of_one_group_equals_the_grouped_analysis(values, drop, method) -> None:
    y = np.array(values)
    k = len(y)
    include = np.ones(k, dtype=bool)
    include[[i for i in drop if i < k]] = False
    cl = np.zeros(k)
    one = runs_analysis(np.zeros(k, dtype=np.int64), 1, y, cl, include, method)
    # The same series twice, as two groups, goes through the grouped analysis.
    gid = np.repeat([0, 1], k)
    two = runs_analysis(gid, 2, np.tile(y, 2), np.tile(cl, 2), np.tile(include, 2), method)
    for key, value in one.items():
        np.testing.assert_array_equal(value, two[key][:1], err_msg=key)
        assert value.dtype.kind == two[key].dtype.kind, key
