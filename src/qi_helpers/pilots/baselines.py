"""The measure the pilots should improve and every candidate's baseline of it (workbook 02).

A candidate is judged on its own recent past: the last periods of its series up to the date of
the selection, the same calendar span for every candidate (:func:`baseline_window`).
:func:`baseline_charts` draws those baselines as control charts, best-ranked candidates first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measures import Measure, detection_chart
from qi_helpers.spc.qic import qic


def catalogue_row(measures: pd.DataFrame, measure_id: str) -> pd.Series:
    """The catalogue row of one measure.

    Raises
    ------
    ConfigError
        When the measure is not in the catalogue, listing the ones that are.
    """
    found = measures[measures["measure_id"] == measure_id]
    if found.empty:
        known = ", ".join(sorted(measures["measure_id"].astype(str)))
        raise ConfigError(
            f"pilots.measure_id: measure {measure_id!r} is not in the measure catalogue; "
            f"known: {known}."
        )
    return found.iloc[0]


def baseline_window(
    measure_series: pd.DataFrame,
    *,
    measure_id: str,
    baseline_periods: int = 26,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The baseline of every candidate: its last ``baseline_periods`` periods up to ``as_of``.

    Parameters
    ----------
    measure_series : DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, value, n_cases`` (from
        :func:`qi_helpers.changes.series.measure_series`).
    measure_id : str
        The measure.
    baseline_periods : int
        Length of the baseline, in periods of the series.
    as_of : date, optional
        The date of the selection: periods starting after it are not used (they are the future
        as far as the selection is concerned). ``None``: the latest data.

    Returns
    -------
    DataFrame
        The rows of ``measure_series`` for ``measure_id`` in the window, sorted by microsystem and
        period. The window is the same calendar span for every candidate.

    Raises
    ------
    ConfigError
        No data for the measure, or none before ``as_of``.
    """
    if not isinstance(baseline_periods, int | np.integer) or baseline_periods < 2:
        raise ConfigError(
            "pilots.baseline_periods must be a whole number of 2 or more; got "
            f"{baseline_periods!r}."
        )
    own = measure_series[measure_series["measure_id"] == measure_id]
    if own.empty:
        known = ", ".join(sorted(measure_series["measure_id"].astype(str).unique()))
        raise ConfigError(
            f"pilots.measure_id: no microsystem has data on measure {measure_id!r}; measures with "
            f"data: {known}."
        )
    periods = pd.to_datetime(own["period"])
    if as_of is not None and not (isinstance(as_of, str) and not as_of.strip()):
        cut = pd.Timestamp(as_of)
        own, periods = own[periods <= cut], periods[periods <= cut]
        if own.empty:
            raise ConfigError(
                f"pilots.as_of: no data on {measure_id!r} on or before {cut.date()}; the series "
                f"starts {pd.to_datetime(measure_series['period']).min().date()}."
            )
    window = np.sort(periods.unique())[-baseline_periods:]
    keep = periods.isin(window)
    return own[keep.to_numpy()].sort_values(["microsystem_id", "period"]).reset_index(drop=True)


def baseline_charts(
    measure_series: pd.DataFrame,
    ranked: pd.DataFrame,
    *,
    measure_id: str,
    measures: pd.DataFrame,
    top: int = 6,
    baseline_periods: int = 26,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The baseline control charts of the best-ranked candidates, one facet each.

    Parameters
    ----------
    measure_series : DataFrame
        Every microsystem's series (see :func:`baseline_window`).
    ranked : DataFrame
        From :func:`qi_helpers.pilots.ranking.rank` (``microsystem_id`` in rank order).
    measure_id : str
        The measure.
    measures : DataFrame
        The measure catalogue.
    top : int
        Chart this many of the best-ranked candidates.
    baseline_periods, as_of
        As :func:`baseline_window`.

    Returns
    -------
    DataFrame
        :func:`qi_helpers.spc.qic.qic`'s frame faceted by ``microsystem_id`` (``facet1``), in rank
        order, on the charted scale (the catalogue's ``multiply``); ``attrs["pilots"]`` holds the
        measure's name, unit and direction of improvement for drawing.
    """
    measure = Measure.from_row(catalogue_row(measures, measure_id))
    chart = detection_chart(measure.chart)
    window = baseline_window(
        measure_series, measure_id=measure_id, baseline_periods=baseline_periods, as_of=as_of
    )
    order = [m for m in ranked["microsystem_id"].head(top) if m in set(window["microsystem_id"])]
    if not order:
        raise DataError("pilots.baseline_charts: none of the ranked candidates has baseline data.")
    shown = window[window["microsystem_id"].isin(order)].copy()
    shown["microsystem_id"] = pd.Categorical(shown["microsystem_id"], categories=order)
    shown = shown.sort_values(["microsystem_id", "period"])
    if chart == "i":
        res = qic(shown, x="period", y="value", chart="i", facets="microsystem_id",
                  multiply=measure.multiply)  # fmt: skip
    else:
        res = qic(shown, x="period", y="numerator", n="denominator", chart=chart,
                  facets="microsystem_id", multiply=measure.multiply)  # fmt: skip
    res["facet1"] = res["facet1"].astype(str)
    res.attrs["pilots"] = {
        "measure_id": measure_id,
        "name": measure.name,
        "unit": measure.unit,
        "improvement": measure.improvement,
        "chart": chart,
    }
    return res
