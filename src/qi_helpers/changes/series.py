"""The measure series of workbook 03: each measured case in its microsystem and period, summed.

:func:`assign_microsystems` attaches each case of ``measure_events`` to the microsystem that owns
its work area, staff member or patient (workbook 01's membership tables) and to its period (the
week or month it falls in: :func:`period_start`); :func:`measure_series` sums the cases into one
point per microsystem, measure and period, the subgroups that run and control charts plot: a
proportion (numerator over cases), a rate (numerator over the denominator's weight) or a mean
(Provost & Murray, The Health Care Data Guide, 2011). :func:`series_for_microsystem` does both for
one microsystem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError

__all__ = [
    "assign_microsystems",
    "measure_series",
    "period_kind",
    "period_start",
    "series_for_microsystem",
]


def assign_microsystems(
    events: pd.DataFrame,
    membership: dict[str, pd.DataFrame],
    *,
    period: str = "week",
    microsystem_id: str | None = None,
) -> pd.DataFrame:
    """Attach each measured case to its microsystem and period.

    A case belongs to the microsystem that owns its ``location`` (work area); without a location,
    to the main microsystem of its ``staff_id``; without either, to the patient's main panel.
    Cases that belong to no microsystem are dropped.

    Parameters
    ----------
    events : DataFrame
        The ``measure_events`` table.
    membership : dict of DataFrame
        ``locations``, ``staff`` and ``patients`` membership tables from workbook 01 (each with
        its key, ``microsystem_id`` and ``share``).
    period : {"week", "month"}
        Cases are dated to the Monday of their week or the first day of their month.
    microsystem_id : str, optional
        Keep only the cases of this microsystem.

    Returns
    -------
    DataFrame
        The events (all their columns) plus ``microsystem_id``, ``period`` and ``weight``
        (``denominator_weight`` when present, else 1).
    """
    owner = pd.Series(pd.NA, index=events.index, dtype="string")
    keys = [
        ("location", "locations", "location"),
        ("staff_id", "staff", "staff_id"),
        ("patient_id", "patients", "patient_id"),
    ]
    for column, table, key in keys:
        if column in events.columns and table in membership:
            main = (
                membership[table]
                .sort_values("share", ascending=False, kind="stable")
                .drop_duplicates(key)
                .set_index(key)["microsystem_id"]
            )
            owner = owner.fillna(events[column].map(main).astype("string"))
    keep = owner.notna() if microsystem_id is None else (owner == microsystem_id).fillna(False)
    cases = events.assign(microsystem_id=owner)[keep.to_numpy()].copy()
    cases["period"] = period_start(cases["timestamp"], period)
    if "denominator_weight" in cases.columns:
        cases["weight"] = pd.to_numeric(cases["denominator_weight"]).fillna(1.0)
    else:
        cases["weight"] = 1.0
    return cases.reset_index(drop=True)


def period_start(timestamps: pd.Series, period: str) -> pd.Series:
    """The start of each timestamp's week (Monday) or month, as dates.

    Parameters
    ----------
    timestamps : Series
        Dates or timestamps.
    period : {"week", "month"}

    Returns
    -------
    Series
        The start of each one's period, at midnight.

    Raises
    ------
    ConfigError
        For any other ``period``.
    """
    ts = pd.to_datetime(timestamps)
    if period == "week":
        return (ts - pd.to_timedelta(ts.dt.day_of_week, unit="D")).dt.normalize()
    if period == "month":
        return ts.dt.to_period("M").dt.start_time
    raise ConfigError(f"analysis.period must be 'week' or 'month', found {period!r}.")


def measure_series(
    cases: pd.DataFrame,
    measures: pd.DataFrame,
    observations: pd.DataFrame | None = None,
    *,
    period: str = "week",
) -> pd.DataFrame:
    """The tidy series of every catalogue measure for every microsystem.

    Parameters
    ----------
    cases : DataFrame
        From :func:`assign_microsystems`.
    measures : DataFrame
        The measure catalogue.
    observations : DataFrame, optional
        Pre-aggregated points keyed by ``microsystem_id``; added as they are (dated to the start
        of their period).
    period : {"week", "month"}

    Returns
    -------
    DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, value, n_cases,
        sum_squares``: for proportions (p) the numerator counts the cases with value 1 and the
        denominator the cases; for rates (u) the numerator sums the values and the denominator
        the weights; for measured values (i, xbar) ``value`` is the mean. ``sum_squares`` sums
        the squared values (a pre-aggregated point: its value squared), for the within-unit
        spread of a funnel plot (:mod:`qi_helpers.spc.funnel`). One row per microsystem,
        measure and period, sorted.
    """
    keys = ["microsystem_id", "measure_id", "period"]
    squares = pd.to_numeric(cases["value"], errors="coerce") ** 2
    series = (
        cases.assign(_squares=squares)
        .groupby(keys)
        .agg(
            numerator=("value", "sum"),
            denominator=("weight", "sum"),
            n_cases=("value", "size"),
            sum_squares=("_squares", "sum"),
        )
        .reset_index()
    )
    series["value"] = series["numerator"] / series["denominator"]
    series = series[[*keys, "numerator", "denominator", "n_cases", "value", "sum_squares"]]
    if observations is not None and not observations.empty:
        obs = observations.copy()
        obs["period"] = period_start(obs["period"], period)
        if "value" not in obs.columns:
            obs["value"] = obs["numerator"] / obs["denominator"]
        for column in ("numerator", "denominator"):
            if column not in obs.columns:
                obs[column] = np.nan
        obs["n_cases"] = 1
        obs["sum_squares"] = pd.to_numeric(obs["value"], errors="coerce") ** 2
        series = pd.concat([series, obs[series.columns]], ignore_index=True)
    series = series[series["measure_id"].isin(measures["measure_id"])]
    return series.sort_values(keys).reset_index(drop=True)


def series_for_microsystem(
    events: pd.DataFrame | None,
    membership: dict[str, pd.DataFrame],
    measures: pd.DataFrame,
    observations: pd.DataFrame | None = None,
    *,
    microsystem_id: str,
    period: str = "week",
) -> pd.DataFrame:
    """:func:`assign_microsystems` then :func:`measure_series` for one microsystem, in one call.

    Parameters
    ----------
    events : DataFrame or None
        The ``measure_events`` table (None when every measure comes as observations).
    membership : dict of DataFrame
        Workbook 01's membership tables.
    measures : DataFrame
        The measure catalogue.
    observations : DataFrame, optional
        Pre-aggregated points; only this microsystem's are kept.
    microsystem_id : str
    period : {"week", "month"}

    Returns
    -------
    DataFrame
        As :func:`measure_series`, for ``microsystem_id`` only.
    """
    if events is None:
        cols = ["measure_id", "timestamp", "value", "patient_id"]
        events = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
        events["timestamp"] = pd.to_datetime(events["timestamp"])
    cases = assign_microsystems(events, membership, period=period, microsystem_id=microsystem_id)
    obs = None
    if observations is not None:
        obs = observations[observations["microsystem_id"] == microsystem_id]
    series = measure_series(cases, measures, obs, period=period)
    return series[series["microsystem_id"] == microsystem_id].reset_index(drop=True)


def period_kind(periods: np.ndarray) -> str:
    """Whether a series of period starts is monthly or weekly.

    Parameters
    ----------
    periods : ndarray of datetime64
        The sorted period starts of one series.

    Returns
    -------
    {"month", "week"}
        ``month`` when every period starts on the first of a month (and they are not weekly).
    """
    p = pd.DatetimeIndex(periods)
    if len(p) > 1 and (p.day == 1).all() and np.diff(p.asi8).min() > 7 * 86_400 * 10**9:
        return "month"
    return "week"
