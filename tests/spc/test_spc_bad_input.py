"""Bad input to :func:`qi_helpers.spc.qic.qic` raises a clear ``QIError``; awkward but valid input
(zero denominators, missing values, constant or short series) behaves as qicharts2 does.

Expected behaviours of valid input are those of the qicharts2 reference (see
``fixtures/qicharts2_synthetic``); the numbers here are worked by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import DataError, QIError, SPCError
from qi_helpers.spc.qic import qic, summary


@pytest.fixture
def counts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "week": pd.date_range("2024-01-01", periods=6, freq="W-MON"),
            "events": [3, 5, 2, 4, 6, 3],
            "patients": [50, 55, 48, 52, 60, 50],
        }
    )


def test_error_family() -> None:
    assert issubclass(SPCError, DataError)
    assert issubclass(SPCError, QIError)


def test_unknown_chart_type(counts: pd.DataFrame) -> None:
    with pytest.raises(SPCError, match=r"Unknown chart type 'pareto'.*run, i, ip, mr"):
        qic(counts, "week", "events", chart="pareto")


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [
        ({"x": "when", "y": "events"}, "when"),
        ({"x": "week", "y": "evnts"}, "evnts"),
        ({"x": "week", "y": "events", "n": "pts"}, "pts"),
        ({"x": "week", "y": "events", "facets": "ward"}, "ward"),
        ({"x": "week", "y": "events", "notes": "memo"}, "memo"),
        ({"x": "week", "y": "events", "part": "phase"}, "phase"),
    ],
)
def test_missing_column_is_named(counts: pd.DataFrame, kwargs: dict, column: str) -> None:
    with pytest.raises(SPCError, match=rf"column '{column}' not found.*week, events, patients"):
        qic(counts, **kwargs)


def test_negative_counts_name_column_and_rows(counts: pd.DataFrame) -> None:
    counts.loc[[1, 4], "events"] = [-1, -2]
    with pytest.raises(SPCError, match=r"Negative counts in y column 'events'.*rows 2, 5"):
        qic(counts, "week", "events", "patients", chart="p")
    with pytest.raises(SPCError, match=r"'events'.*rows 2, 5"):
        qic(counts, "week", "events", chart="c")


def test_negative_denominator(counts: pd.DataFrame) -> None:
    counts.loc[2, "patients"] = -48
    with pytest.raises(SPCError, match=r"Negative denominators in n column 'patients'.*row 3"):
        qic(counts, "week", "events", "patients", chart="u")


def test_numerator_above_denominator_in_p_chart(counts: pd.DataFrame) -> None:
    counts.loc[3, "events"] = 70
    with pytest.raises(SPCError, match=r"Numerator 'events' above denominator 'patients'.*row 4"):
        qic(counts, "week", "events", "patients", chart="p")
    qic(counts, "week", "events", "patients", chart="u")  # a rate may exceed 1


def test_zero_time_between_events_in_t_chart() -> None:
    d = pd.DataFrame({"event": range(1, 6), "days": [5.0, 12, 0, 7, 3]})
    with pytest.raises(SPCError, match=r"Time between events must be greater than zero.*'days'"):
        qic(d, "event", "days", chart="t")


def test_non_numeric_y_names_rows(counts: pd.DataFrame) -> None:
    counts["events"] = counts["events"].astype(object)
    counts.loc[[0, 3], "events"] = ["three", "n/a"]
    with pytest.raises(SPCError, match=r"y column 'events' must be numeric.*'three'.*rows 1, 4"):
        qic(counts, "week", "events", chart="c")


def test_non_numeric_n(counts: pd.DataFrame) -> None:
    counts["patients"] = ["50", "55", "x", "52", "60", "50"]
    with pytest.raises(SPCError, match=r"n column 'patients' must be numeric.*row 3"):
        qic(counts, "week", "events", "patients", chart="p")


def test_denominator_required_for_ratio_charts(counts: pd.DataFrame) -> None:
    with pytest.raises(SPCError, match="needs a denominator"):
        qic(counts, "week", "events", chart="u")


@pytest.mark.parametrize(
    "kwargs",
    [{"part": [0]}, {"exclude": [1.5]}, {"freeze": 0}, {"method": "nelson"}, {"agg_fun": "max"}],
)
def test_bad_arguments(counts: pd.DataFrame, kwargs: dict) -> None:
    with pytest.raises(SPCError):
        qic(counts, "week", "events", **kwargs)


def test_data_must_be_a_frame() -> None:
    with pytest.raises(SPCError, match="DataFrame"):
        qic([1, 2, 3], y="y")  # type: ignore[arg-type]


# ---- not errors: behave as qicharts2 ---------------------------------------------------------


def test_zero_denominator_gives_nan_or_inf_and_no_limits() -> None:
    # As qicharts2 (reference cases p_syn_zero_den, p_syn_zero_den_pos): 0/0 -> NaN, 2/0 -> Inf,
    # no limits for that subgroup; the NaN point is left out of the runs analysis.
    d = pd.DataFrame({"x": range(1, 6), "y": [3, 0, 2, 4, 2], "n": [50, 0, 48, 52, 0]})
    res = qic(d, "x", "y", "n", chart="p")
    assert np.isnan(res["y"].iloc[1]) and np.isinf(res["y"].iloc[4])
    assert res[["ucl", "lcl"]].iloc[[1, 4]].isna().all().all()
    assert res["cl"].iloc[0] == pytest.approx((3 + 2 + 4 + 2) / 150)  # sum(y) / sum(n)
    assert res["n_useful"].iloc[0] == 4


def test_missing_values_are_skipped() -> None:
    d = pd.DataFrame({"x": range(1, 7), "y": [14, np.nan, 15, 19, 13, 16]})
    res = qic(d, "x", "y", chart="i")
    assert np.isnan(res["y"].iloc[1])
    assert res["cl"].iloc[0] == pytest.approx(np.mean([14, 15, 19, 13, 16]))
    # moving ranges next to the missing value are missing, not bridged: |15-19|, |19-13|, |13-16|
    assert res["ucl"].iloc[0] - res["cl"].iloc[0] == pytest.approx(3 * (4 + 6 + 3) / 3 / 1.128)
    assert res["n_obs"].iloc[0] == 6 and res["n_useful"].iloc[0] == 5


def test_constant_series_has_no_useful_observations() -> None:
    res = qic(pd.DataFrame({"y": [5.0] * 12}), y="y", chart="i")
    assert (res["n_useful"] == 0).all()
    assert not res["runs_signal"].any()
    assert res["longest_run"].isna().all() and res["n_crossings"].isna().all()
    assert res["ucl"].isna().all()  # all moving ranges 0: screening leaves none (qicharts2)
    res = qic(pd.DataFrame({"y": [5.0] * 12}), y="y", chart="i", screened_mr=False)
    assert (res["ucl"] == 5).all()


def test_short_series_still_analysed() -> None:
    res = qic(pd.DataFrame({"y": [12, 15, 11, 14, 13, 16, 10]}), y="y")
    assert len(res) == 7
    assert res["longest_run_max"].iloc[0] == round(np.log2(7) + 3)
    assert len(summary(res)) == 1


def test_part_freeze_exclude_count_points_on_the_chart() -> None:
    # Rows are aggregated per x first: the 6 rows are 3 points, so part=[2] splits after the 2nd
    # point, freeze and exclude count points, and exclude counts over the facet, not the part.
    d = pd.DataFrame({"x": [1, 1, 2, 2, 3, 3], "y": [1.0, 3, 2, 4, 10, 12]})
    res = qic(d, "x", "y", part=[2])
    assert res["part"].tolist() == [1, 1, 2]
    assert res["y"].tolist() == [2, 3, 11]
    res = qic(d, "x", "y", freeze=2, exclude=[1])
    assert res["baseline"].tolist() == [True, True, False]
    assert res["include"].tolist() == [False, True, True]
    assert (res["cl"] == 3).all()  # median of the included baseline point(s): point 2 only
    phases = d.assign(phase=["pre", "pre", "pre", "pre", "post", "post"])
    assert qic(phases, "x", "y", part="phase")["part"].tolist() == [1, 1, 2]


def test_empty_data_is_an_error() -> None:
    with pytest.raises(SPCError, match="No rows"):
        qic(pd.DataFrame({"y": pd.Series([], dtype=float)}), y="y")
    with pytest.raises(SPCError, match="No rows"):
        qic(pd.DataFrame({"x": [None, None], "y": [1.0, 2.0]}), "x", "y")
