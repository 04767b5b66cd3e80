"""Funnel plots: the microsystems of one kind compared on one measure over the latest periods.

A funnel plot (Spiegelhalter, "Funnel plots for comparing institutional performance", Stat Med
2005;24:1185-1202) puts each unit's value over the latest period against its denominator (its
cases, or its exposure), around the organisation's value, with control limits that narrow as the
denominator grows: ``target +- z * s(n)``, where ``s(n)`` is the standard error of a unit of
denominator ``n`` if it were no different from the organisation. A unit outside the 99.8%
limits (``z`` = 3.09) is very unlikely to differ by chance alone; outside the 95% limits
(``z`` = 1.96) is a question to ask.

Three kinds of measure (:data:`FUNNEL_FAMILIES`, from the chart in the measure catalogue):

- **proportion** (p, p' charts): ``target`` = p0 = sum of numerators / sum of denominators,
  ``s(n) = sqrt(p0 (1 - p0) / n)`` (binomial, normal approximation, Spiegelhalter 2005 Stat Med
  Table I);
- **rate** (u, u' charts): ``target`` = l0 = sum of events / sum of exposure,
  ``s(n) = sqrt(l0 / n)`` (Poisson, same table);
- **mean** (I, Xbar, S, run and MR charts): ``target`` = the mean of every case of the kind,
  ``s(n) = sigma / sqrt(n)`` with ``sigma`` the pooled within-unit standard deviation
  ``sqrt(sum_i (n_i - 1) s_i^2 / sum_i (n_i - 1))`` (normal).

Limits are cut at 0 (and at 1 for a proportion), as the control charts' limits are.

**Overdispersion** (Spiegelhalter, "Handling over-dispersion of performance indicators", Qual Saf
Health Care 2005;14:347-351). Real units differ for many reasons the model leaves out, so far
more of them fall outside limits built on chance alone than 5% or 0.2%. Each judged unit's
z-score ``z_i = (y_i - target) / s(n_i)`` is *winsorised* (values below the 10th percentile set
to it, above the 90th to it; percentiles by linear interpolation, R's type 7) and the dispersion
ratio is ``phi = mean(z_w^2)``. The default, **multiplicative**, adjustment inflates every limit
by ``sqrt(phi)`` when ``phi > 1`` (and leaves them as they are otherwise): it keeps the funnel's
shape, is the adjustment of the QSHC paper's main example and is easy to explain ("the units
vary phi times more than chance"). The **additive** random-effects version of the same paper
(``overdispersion="additive"``) is implemented too: when ``I phi > I - 1``,
``tau^2 = (I phi - (I - 1)) / (sum w_i - sum w_i^2 / sum w_i)`` with ``w_i = 1 / s(n_i)^2``
(DerSimonian-Laird), and the limits are ``target +- z sqrt(s(n)^2 + tau^2)``; it widens the
funnel most for large units, which suits an indicator whose units differ by a real amount
whatever their size (FunnelPlotR's default). ``overdispersion=None`` draws the limits of chance
alone. The z-score reported is the one that matches the limits drawn:
``(y_i - target) / sqrt(phi s(n_i)^2 + tau^2)`` (``phi`` taken as 1 when not inflating).
With fewer than five judged units the limits are not widened (``min_units``): a dispersion
ratio of two or three units says nothing.

**Small counts are withheld.** A unit whose denominator is below the project's small-cell
threshold (``publish.small_cell_threshold``, :mod:`qi_helpers.privacy.small_cells`), or whose
value and denominator would give away a count from 1 to ``threshold - 1`` (the events of a
proportion or a rate, or the cases without the event of a proportion: value times denominator
is that count), is ``withheld``: it is never judged (its ``z`` is empty, it is never outside the
limits, it does not count towards ``phi``), it is not drawn and not listed, and the
organisation's value (the target) is computed from the other units, so that no withheld count
can be worked out by subtraction from the target. The caption says how many were withheld.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measures import PROPORTION_CHARTS, RATE_CHARTS, Measure
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD

__all__ = [
    "FUNNEL_COLUMNS",
    "FUNNEL_FAMILIES",
    "OVERDISPERSION_METHODS",
    "Z_95",
    "Z_998",
    "dispersion",
    "funnel",
    "funnel_family",
    "funnel_limits",
    "funnel_table",
    "limits_curve",
    "window_totals",
]

#: The two-sided 95% and 99.8% points of the standard normal distribution.
Z_95 = 1.959963984540054
Z_998 = 3.090232306167813

#: The family of funnel of each chart of the catalogue (charts not listed get no funnel: counts
#: and times between events have no denominator to compare on).
FUNNEL_FAMILIES: dict[str, str] = {
    **{c: "proportion" for c in PROPORTION_CHARTS},
    **{c: "rate" for c in RATE_CHARTS},
    **{c: "mean" for c in ("i", "ip", "xbar", "s", "run", "mr")},
}

#: How the limits are widened for overdispersion.
OVERDISPERSION_METHODS = ("multiplicative", "additive", None)

#: The columns of :func:`funnel_table`, in order.
FUNNEL_COLUMNS = [
    "measure_id",
    "kind",
    "microsystem_id",
    "value",
    "denominator",
    "target",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "z",
    "outside_95",
    "outside_998",
    "direction",
    "improvement",
    "small_denominator",
    "withheld",
    "family",
    "multiply",
    "unit_sd",
    "phi",
    "tau2",
    "overdispersion",
    "first_period",
    "last_period",
]


def funnel_family(chart: str) -> str | None:
    """``"proportion"``, ``"rate"``, ``"mean"`` or None (no funnel) for a catalogue chart."""
    return FUNNEL_FAMILIES.get(str(chart).strip().lower())


def funnel_limits(
    target: float,
    unit_sd: float,
    denominator: np.ndarray | float,
    *,
    z: float = Z_95,
    phi: float = 1.0,
    tau2: float = 0.0,
    family: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """The funnel's lower and upper limits at the given denominators.

    ``target +- z * sqrt(phi * unit_sd^2 / n + tau2)``, cut at 0 for proportions and rates and
    at 1 for proportions (Spiegelhalter 2005, Stat Med, section 3; QSHC, equations 1-3).

    Parameters
    ----------
    target : float
        The organisation's value (p0, l0 or the mean).
    unit_sd : float
        The standard deviation of one case: ``sqrt(p0 (1 - p0))``, ``sqrt(l0)`` or ``sigma``.
    denominator : float or array
        Cases (or exposure) of a unit.
    z : float
        :data:`Z_95` or :data:`Z_998`.
    phi, tau2 : float
        The multiplicative and additive overdispersion (1 and 0: none).
    family : {"proportion", "rate", "mean"}

    Returns
    -------
    (lower, upper) : arrays
    """
    n = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(phi * unit_sd**2 / n + tau2)
    lower, upper = target - half, target + half
    if family in ("proportion", "rate"):
        lower = np.maximum(lower, 0.0)
    if family == "proportion":
        upper = np.minimum(upper, 1.0)
    return lower, upper


def dispersion(
    z: np.ndarray, *, winsor: float = 0.1, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """The overdispersion of a set of z-scores: ``(phi, tau2)`` (Spiegelhalter 2005, QSHC).

    Parameters
    ----------
    z : array
        The units' z-scores against the target, before any adjustment.
    winsor : float
        The share winsorised at each end (0.1: z below the 10th percentile set to it, above the
        90th to it; percentiles by linear interpolation).
    weights : array, optional
        ``1 / s_i^2`` of each unit, for the additive ``tau2`` (0 when not given).

    Returns
    -------
    phi : float
        ``mean(z_w^2)``: 1 is what chance alone gives; ``nan`` with no z-score.
    tau2 : float
        ``(I phi - (I - 1)) / (sum w - sum w^2 / sum w)`` when ``I phi > I - 1``, else 0.
    """
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    if not 0 <= winsor < 0.5:
        raise ConfigError(f"funnel winsor must be from 0 to below 0.5, found {winsor!r}.")
    if z.size == 0:
        return math.nan, 0.0
    lo, hi = np.percentile(z, [100 * winsor, 100 * (1 - winsor)])
    phi = float(np.mean(np.clip(z, lo, hi) ** 2))
    tau2 = 0.0
    if weights is not None and z.size > 1:
        w = np.asarray(weights, dtype=float)
        w = w[np.isfinite(w)]
        spread = w.sum() - (w**2).sum() / w.sum()
        excess = z.size * phi - (z.size - 1)
        if excess > 0 and spread > 0:
            tau2 = float(excess / spread)
    return phi, tau2


def _target_and_sd(units: pd.DataFrame, family: str) -> tuple[float, float]:
    """The organisation's value and the standard deviation of one case."""
    total_n = units["denominator"].sum()
    target = units["numerator"].sum() / total_n if total_n > 0 else math.nan
    if family == "proportion":
        return target, math.sqrt(max(target * (1 - target), 0.0))
    if family == "rate":
        return target, math.sqrt(max(target, 0.0))
    dof = (units["denominator"] - 1).clip(lower=0)
    within = units["sum_squares"] - units["numerator"] ** 2 / units["denominator"]
    pooled = within.clip(lower=0).sum() / dof.sum() if dof.sum() > 0 else math.nan
    return target, math.sqrt(pooled)


def _small_counts(numerator: np.ndarray, n: np.ndarray, family: str, threshold: int) -> np.ndarray:
    """Units whose value and denominator would give away a count from 1 to ``threshold - 1``:
    the events of a proportion or a rate, or the cases without the event of a proportion."""
    small = np.zeros(len(n), dtype=bool)
    if family in ("proportion", "rate"):
        small |= (numerator >= 1) & (numerator < threshold)
    if family == "proportion":
        rest = n - numerator
        small |= (rest >= 1) & (rest < threshold)
    return small


def funnel(
    units: pd.DataFrame,
    *,
    family: str,
    improvement: str = "up",
    overdispersion: str | None = "multiplicative",
    winsor: float = 0.1,
    threshold: int = SMALL_CELL_THRESHOLD,
    min_units: int = 5,
) -> pd.DataFrame:
    """One funnel: the units of one kind on one measure, against the organisation's value.

    Parameters
    ----------
    units : DataFrame
        One row per unit: ``microsystem_id``, ``numerator`` (events, or the sum of the values
        for a mean), ``denominator`` (cases or exposure) and, for a mean, ``sum_squares`` (the
        sum of the squared values).
    family : {"proportion", "rate", "mean"}
    improvement : {"up", "down"}
        The direction in which the measure gets better.
    overdispersion : {"multiplicative", "additive", None}
        How limits are widened when the units vary more than chance (see the module notes).
    winsor : float
        Share of z-scores winsorised at each end before ``phi`` is estimated.
    threshold : int
        Units with a denominator from 1 to ``threshold - 1`` are shown but not judged.
    min_units : int
        Fewer judged units than this: ``phi`` is reported but the limits are not widened (a
        dispersion ratio of two or three units says nothing).

    Returns
    -------
    DataFrame
        The units' rows with ``value`` (numerator / denominator), ``target``, ``lower_95``,
        ``upper_95``, ``lower_998``, ``upper_998`` (at the unit's denominator), ``z``,
        ``outside_95``, ``outside_998``, ``direction`` (``better``, ``worse`` or ``""`` on the
        target or not judged), ``small_denominator``, ``withheld`` (not shown: see the module
        notes), ``family``, ``unit_sd``, ``phi`` (the dispersion ratio, whether or not it
        was used), ``tau2``, on the charted scale (not multiplied).
    """
    if family not in ("proportion", "rate", "mean"):
        raise ConfigError(f"funnel family must be proportion, rate or mean, found {family!r}.")
    if overdispersion not in OVERDISPERSION_METHODS:
        raise ConfigError(
            f"funnel overdispersion must be one of {OVERDISPERSION_METHODS}, "
            f"found {overdispersion!r}."
        )
    out = units.reset_index(drop=True).copy()
    n = out["denominator"].astype(float).to_numpy()
    out["value"] = out["numerator"].astype(float) / np.where(n > 0, n, np.nan)
    small = (n < threshold) | ~np.isfinite(n)
    withheld = small | _small_counts(out["numerator"].astype(float).to_numpy(), n, family,
                                     threshold)  # fmt: skip
    # The organisation's value from the units shown only: with the withheld units in it, the
    # shown values and denominators and the target would let a reader subtract their counts.
    target, unit_sd = _target_and_sd(out[~withheld], family)
    judged = ~withheld & (n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = unit_sd / np.sqrt(n)
        raw = np.where(judged & (s > 0), (out["value"].to_numpy() - target) / s, np.nan)
    phi, tau2 = dispersion(raw[judged], winsor=winsor, weights=1 / s[judged] ** 2)
    enough = int(judged.sum()) >= min_units
    use_phi = phi if enough and overdispersion == "multiplicative" and phi > 1 else 1.0
    use_tau2 = tau2 if enough and overdispersion == "additive" else 0.0
    for z, label in ((Z_95, "95"), (Z_998, "998")):
        lo, hi = funnel_limits(target, unit_sd, n, z=z, phi=use_phi, tau2=use_tau2, family=family)
        out[f"lower_{label}"], out[f"upper_{label}"] = lo, hi
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = (out["value"].to_numpy() - target) / np.sqrt(use_phi * s**2 + use_tau2)
    z = np.where(np.isfinite(raw), adjusted, np.nan)
    value = out["value"].to_numpy()
    out["target"] = target
    out["z"] = z
    out["outside_95"] = judged & ((value < out["lower_95"]) | (value > out["upper_95"]))
    out["outside_998"] = judged & ((value < out["lower_998"]) | (value > out["upper_998"]))
    better = z > 0 if improvement == "up" else z < 0
    worse = z < 0 if improvement == "up" else z > 0
    out["direction"] = np.where(better, "better", np.where(worse, "worse", ""))
    out["improvement"] = improvement
    out["small_denominator"] = small
    out["withheld"] = withheld
    out["family"] = family
    out["unit_sd"] = unit_sd
    out["phi"] = phi
    out["tau2"] = tau2
    out["overdispersion"] = (overdispersion or "") if enough else ""
    return out


def window_totals(series: pd.DataFrame, *, periods: int = 13, as_of: object = None) -> pd.DataFrame:
    """Each microsystem's totals of each measure over the measure's last ``periods`` periods.

    Parameters
    ----------
    series : DataFrame
        :func:`qi_helpers.changes.series.measure_series` (``microsystem_id, measure_id, period,
        numerator, denominator, value, n_cases`` and, when there, ``sum_squares``).
    periods : int
        How many of the measure's latest periods (organisation-wide) make the window.
    as_of : date, optional
        Ignore periods after this date.

    Returns
    -------
    DataFrame
        ``measure_id, microsystem_id, numerator, denominator, sum_squares, n_cases,
        first_period, last_period``. For a mean, ``numerator`` sums the values and
        ``denominator`` counts them; a pre-aggregated point without a numerator counts as one
        value (its own).
    """
    need = {"microsystem_id", "measure_id", "period", "value"}
    missing = sorted(need - set(series.columns))
    if missing:
        raise DataError(f"funnel: the series has no column(s) {missing}; it has {list(series)}.")
    if int(periods) < 1:
        raise ConfigError(f"funnel periods must be 1 or more, found {periods!r}.")
    frame = series.copy()
    frame["period"] = pd.to_datetime(frame["period"])
    if as_of is not None and str(as_of) != "":
        frame = frame[frame["period"] <= pd.Timestamp(str(as_of))]
    latest = frame.groupby("measure_id")["period"].transform(
        lambda p: p >= np.sort(p.unique())[-int(periods) :][0]
    )
    frame = frame[latest.astype(bool)]

    def column(name: str) -> pd.Series:
        if name not in frame.columns:
            return pd.Series(np.nan, index=frame.index)
        return pd.to_numeric(frame[name], errors="coerce")

    n_cases = column("n_cases").fillna(1)
    value = column("value")
    numerator, denominator = column("numerator"), column("denominator")
    squares = column("sum_squares").fillna(value**2 * n_cases)
    frame = frame.assign(
        numerator=numerator.fillna(0),
        denominator=denominator.fillna(0),
        sum_squares=squares,
        n_cases=n_cases,
        _sum=numerator.fillna(value * n_cases),
        _ratio=(numerator.notna() & denominator.notna()).astype(int),
    )
    totals = frame.groupby(["measure_id", "microsystem_id"], sort=True).agg(
        numerator=("numerator", "sum"),
        denominator=("denominator", "sum"),
        value_sum=("_sum", "sum"),
        sum_squares=("sum_squares", "sum"),
        n_cases=("n_cases", "sum"),
        ratios=("_ratio", "sum"),
        first_period=("period", "min"),
        last_period=("period", "max"),
    )
    no_ratio = totals.pop("ratios") == 0
    totals.loc[no_ratio, ["numerator", "denominator"]] = np.nan
    return totals.reset_index()


def _kinds(registry: pd.DataFrame) -> pd.Series:
    """Each microsystem's kind, from the registry (``""`` when it has none)."""
    if "microsystem_id" in registry.columns:
        registry = registry.set_index("microsystem_id")
    kind = registry["kind"] if "kind" in registry.columns else pd.Series("", registry.index)
    return kind.fillna("").astype(str).rename(index=str)


def _measure_units(totals: pd.DataFrame, family: str) -> pd.DataFrame:
    """A measure's totals as the units of :func:`funnel` (sum and count for a mean)."""
    if family == "mean":
        return totals.assign(numerator=totals["value_sum"], denominator=totals["n_cases"])
    return totals[totals["denominator"].notna() & totals["numerator"].notna()]


def funnel_table(
    series: pd.DataFrame,
    measures: pd.DataFrame,
    registry: pd.DataFrame,
    *,
    periods: int = 13,
    as_of: object = None,
    overdispersion: str | None = "multiplicative",
    winsor: float = 0.1,
    threshold: int = SMALL_CELL_THRESHOLD,
    measure_ids: list[str] | None = None,
    min_units: int = 5,
) -> pd.DataFrame:
    """Every measure's funnel: the microsystems of each kind over the latest periods.

    For each measure of the catalogue with a funnel family (:data:`FUNNEL_FAMILIES`) and each
    kind of microsystem (the registry's ``kind``; only the measure's own ``kind`` when the
    catalogue names one), the microsystems' totals over the measure's last ``periods`` periods
    are compared by :func:`funnel`.

    Parameters
    ----------
    series : DataFrame
        The organisation's measure series (:func:`qi_helpers.changes.series.measure_series`).
    measures : DataFrame
        The measure catalogue (its ``chart``, ``improvement``, ``multiply`` and ``kind``).
    registry : DataFrame
        Workbook 01's registry (``microsystem_id`` or index, ``kind``).
    periods : int
        The window: the last 13 periods (a quarter of weeks) by default.
    as_of : date, optional
        Ignore periods after this date.
    overdispersion, winsor, threshold, min_units
        See :func:`funnel`; ``threshold`` is the project's ``publish.small_cell_threshold``.
    measure_ids : list of str, optional
        Only these measures.

    Returns
    -------
    DataFrame
        :data:`FUNNEL_COLUMNS`: one row per measure, kind and microsystem. ``value``,
        ``target`` and the limits on the shown scale (times the catalogue's ``multiply``: a
        percentage for a proportion with ``multiply`` 100); ``denominator`` the cases (or
        exposure, or values for a mean) in the window; ``z`` as drawn (empty when not judged);
        ``direction`` by the measure's direction of improvement; ``unit_sd``, ``phi`` and
        ``tau2`` draw the limits at any denominator (:func:`funnel_limits`) with the
        ``overdispersion`` used (``""``: none, or too few units); the window's
        ``first_period`` and ``last_period``.
    """
    totals = window_totals(series, periods=periods, as_of=as_of)
    kinds = _kinds(registry)
    totals["kind"] = totals["microsystem_id"].astype(str).map(kinds).fillna("")
    frames = []
    for _, row in measures.iterrows():
        measure = Measure.from_row(row)
        family = funnel_family(measure.chart)
        if family is None or (measure_ids is not None and measure.measure_id not in measure_ids):
            continue
        own_kind = str(row.get("kind", "") or "")
        if own_kind in ("nan", "None"):
            own_kind = ""
        rows = totals[totals["measure_id"] == measure.measure_id]
        if own_kind:
            rows = rows[rows["kind"] == own_kind]
        for _, units in rows.groupby("kind", sort=True):
            units = _measure_units(units, family)
            if units.empty:
                continue
            result = funnel(
                units,
                family=family,
                improvement=measure.improvement,
                overdispersion=overdispersion,
                winsor=winsor,
                threshold=threshold,
                min_units=min_units,
            )
            frames.append(_shown_scale(result, measure.multiply))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FUNNEL_COLUMNS})
    table = pd.concat(frames, ignore_index=True)
    return table[FUNNEL_COLUMNS].reset_index(drop=True)


def _shown_scale(result: pd.DataFrame, multiply: float) -> pd.DataFrame:
    """Values, target, limits and the unit SD times the catalogue's ``multiply``."""
    out = result.copy()
    for column in ("value", "target", "lower_95", "upper_95", "lower_998", "upper_998"):
        out[column] = out[column] * multiply
    out["unit_sd"] = out["unit_sd"] * multiply
    out["multiply"] = multiply
    return out


def limits_curve(
    row: Mapping[str, object], denominators: np.ndarray, *, z: float = Z_95
) -> tuple[np.ndarray, np.ndarray]:
    """The limits of a :func:`funnel_table` row's funnel at other denominators (for drawing)."""
    family = str(row["family"])
    multiply = float(row["multiply"])  # type: ignore[arg-type]
    method = str(row.get("overdispersion", "") or "")
    phi = float(row["phi"])  # type: ignore[arg-type]
    use_phi = phi if method == "multiplicative" and phi > 1 else 1.0
    tau2 = float(row["tau2"]) if method == "additive" else 0.0  # type: ignore[arg-type]
    lo, hi = funnel_limits(
        float(row["target"]) / multiply,  # type: ignore[arg-type]
        float(row["unit_sd"]) / multiply,  # type: ignore[arg-type]
        denominators,
        z=z,
        phi=use_phi,
        tau2=tau2,
        family=family,
    )
    return lo * multiply, hi * multiply
