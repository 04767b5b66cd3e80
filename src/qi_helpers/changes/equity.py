"""For all patients: did every group of patients share the improvement? (workbook 03)

Equity is one of the six aims of the Institute of Medicine (Crossing the Quality Chasm, 2001):
care that does not vary in quality because of personal characteristics. A change can improve a
measure on average while leaving a group of patients behind, so the outcome and process measures
of a microsystem are also compared before and after each change within patient subgroups (age
band, sex and the leading long-term conditions), and the groups that did not improve when the
whole did are flagged for the team to look at.

Subgroups can be small. Everything is computed, but published tables show counts from 1 to
``threshold - 1`` as ``"<threshold"`` (``publish.small_cell_threshold``, 11 by default, as the
NHS Digital and CMS small-cell rules), hide a second group (``"*"``) where the whole minus the
groups shown would give a small one away, and hide the estimates of every hidden group
(:func:`suppress_small`, :func:`subgroup_mask`, by the rule of
:func:`qi_helpers.privacy.small_cells.small_group_mask`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qi_helpers.changes.effects import (
    difference_in_means,
    difference_in_proportions,
    effect_direction,
    effect_kind,
    rate_ratio,
)
from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measures import Measure
from qi_helpers.privacy.small_cells import (
    COMPLEMENTARY_LABEL,
    SMALL_CELL_THRESHOLD,
    small_cell_label,
    small_group_mask,
)

if TYPE_CHECKING:
    from qi_helpers.changes.analysis import ChangeAnalysis
    from qi_helpers.changes.microsystem import MicrosystemAnalysis

__all__ = [
    "DIMENSIONS",
    "SUBGROUP_COLUMNS",
    "SUBGROUP_STATISTICS",
    "leading_conditions",
    "patient_subgroups",
    "subgroup_effects",
    "subgroup_mask",
    "suppress_small",
]

#: The subgroup dimensions, as columns of the ``patients`` table.
DIMENSIONS = ("age_band", "sex", "conditions")

SUBGROUP_COLUMNS = [
    "microsystem_id",
    "measure_id",
    "name",
    "change",
    "whole_verdict",
    "dimension",
    "subgroup",
    "n_baseline",
    "n_after",
    "baseline_mean",
    "after_mean",
    "effect",
    "effect_low",
    "effect_high",
    "effect_kind",
    "verdict",
    "flag",
    "reason",
]


def _isin(values: pd.Series, among: pd.Series) -> np.ndarray:
    """``values.isin(among)`` for identifiers, hashed by Arrow (fast on millions of rows)."""
    left = pa.array(values.astype(str).to_numpy(dtype=object, na_value=""), type=pa.string())
    right = pa.array(pd.unique(among.dropna().astype(str).to_numpy(dtype=object)), pa.string())
    return pc.is_in(left, value_set=right).to_numpy(zero_copy_only=False)


def patient_subgroups(
    patients: pd.DataFrame,
    *,
    dimensions: tuple[str, ...] = DIMENSIONS,
    conditions: list[str] | None = None,
) -> pd.DataFrame:
    """Each patient's subgroups, one row per patient and subgroup.

    Parameters
    ----------
    patients : DataFrame
        The ``patients`` table (``patient_id`` and the columns named in ``dimensions``).
    dimensions : tuple of str
        Columns to split by. ``conditions`` is ``;``-separated: a patient belongs to the group of
        each of their conditions (groups overlap), or to ``none``.
    conditions : list of str, optional
        The conditions to keep as groups (default: all).

    Returns
    -------
    DataFrame
        ``patient_id, dimension, subgroup`` (missing values are the subgroup ``unknown``).
    """
    if "patient_id" not in patients.columns:
        raise DataError("patients: column `patient_id` is missing; it links cases to patients.")
    frames = []
    for dim in dimensions:
        if dim not in patients.columns:
            continue
        values = patients[dim].astype("string").fillna("").str.strip()
        if dim == "conditions":
            split = values.str.split(";").explode().str.strip()
            split = split.where(split != "", "none")
            frame = pd.DataFrame({"patient_id": patients.loc[split.index, "patient_id"],
                                  "subgroup": split.to_numpy()})  # fmt: skip
            if conditions is not None:
                frame = frame[frame["subgroup"].isin([*conditions, "none"])]
            frame = frame.drop_duplicates()
        else:
            frame = pd.DataFrame(
                {"patient_id": patients["patient_id"], "subgroup": values.replace("", "unknown")}
            )
        frame.insert(1, "dimension", dim)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["patient_id", "dimension", "subgroup"])
    out = pd.concat(frames, ignore_index=True)
    out["patient_id"] = out["patient_id"].astype(str)
    out["subgroup"] = out["subgroup"].astype(str)
    return out


def leading_conditions(cases: pd.DataFrame, patients: pd.DataFrame, n: int = 3) -> list[str]:
    """The ``n`` conditions most common among the patients of ``cases`` (ties by name)."""
    if "conditions" not in patients.columns or n <= 0:
        return []
    who = patients[_isin(patients["patient_id"], cases["patient_id"])]
    split = who["conditions"].astype("string").fillna("").str.split(";").explode().str.strip()
    counts = split[split.fillna("") != ""].value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    return [str(c) for c in counts.index[:n]]


def _effect(kind: str, before: pd.DataFrame, after: pd.DataFrame, multiply: float):
    """The effect of ``kind`` from the cases before and after, and the two levels."""
    if kind == "difference in proportions":
        est = difference_in_proportions(
            before["value"].sum(), len(before), after["value"].sum(), len(after)
        )
        means = (before["value"].mean() * multiply, after["value"].mean() * multiply)
        return tuple(v * multiply for v in est), means
    if kind == "rate ratio":
        est = rate_ratio(
            before["value"].sum(), before["weight"].sum(), after["value"].sum(),
            after["weight"].sum(),
        )  # fmt: skip
        means = (
            before["value"].sum() / before["weight"].sum() * multiply if len(before) else np.nan,
            after["value"].sum() / after["weight"].sum() * multiply if len(after) else np.nan,
        )
        return est, means
    est = difference_in_means(before["value"], after["value"])
    means = (before["value"].mean() * multiply, after["value"].mean() * multiply)
    return tuple(v * multiply for v in est), means


def _between(frame: pd.DataFrame, span: tuple[Any, Any]) -> pd.DataFrame:
    """The rows of ``frame`` whose period lies in ``span`` (both ends included)."""
    lo, hi = span
    return frame[(frame["period"] >= lo) & (frame["period"] <= hi)]


def _parts(
    mine: pd.DataFrame, linked: pd.DataFrame, window: Any
) -> list[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """The whole, then each subgroup (sorted): ``dimension, subgroup, before, after`` cases.

    ``window`` is a row of :attr:`qi_helpers.changes.analysis.ChangeAnalysis.windows`.
    """
    before = (window.baseline_from, window.baseline_to)
    after = (window.after_from, window.after_to)
    parts = [("all", "all", _between(mine, before), _between(mine, after))]
    pairs = linked[["dimension", "subgroup"]].drop_duplicates()
    keys = sorted(zip(pairs["dimension"], pairs["subgroup"], strict=True))
    by_key = ["dimension", "subgroup"]
    gb = dict(iter(_between(linked, before).groupby(by_key, sort=False)))
    ga = dict(iter(_between(linked, after).groupby(by_key, sort=False)))
    empty = linked.iloc[0:0]
    for key in keys:
        parts.append((key[0], key[1], gb.get(key, empty), ga.get(key, empty)))
    return parts


def _subgroup_verdict(kind: str, good: int, est: tuple, n0: int, n1: int, min_cases: int) -> str:
    """``improved`` / ``worsened`` by the interval, ``no clear change``, or ``too little data``."""
    if n0 < min_cases or n1 < min_cases:
        return "too little data"
    d = effect_direction(*est, kind)
    return "improved" if d == good else "worsened" if d == -good else "no clear change"


def _flag(kind: str, good: int, est: tuple, whole_effect: float) -> tuple[bool, str]:
    """Whether a subgroup of a whole that improved is left behind, and the reason in words."""
    eff, lo, hi = est
    reason = f"effect {eff:.3g} (95% CI {lo:.3g} to {hi:.3g})"
    null = 1.0 if kind == "rate ratio" else 0.0
    gain = (eff - null) * good
    beyond = (whole_effect > hi) if good == 1 else (whole_effect < lo)
    if not gain > 0:
        return True, f"no improvement in this group: {reason}"
    if beyond:
        return True, f"improved clearly less than the whole ({whole_effect:.3g}): {reason}"
    return False, reason


def _window_rows(
    microsystem_id: str,
    item: ChangeAnalysis,
    mine: pd.DataFrame,
    linked: pd.DataFrame,
    window: Any,
    min_cases: int,
) -> list[dict[str, Any]]:
    """The rows of :func:`subgroup_effects` for one measure and one change (its ``window``)."""
    m = item.measure
    measure = Measure.from_row(m)
    kind = effect_kind(str(m["chart"]))
    good = 1 if measure.up else -1
    whole_rows = item.verdicts[item.verdicts["change"] == window.change]
    whole_verdict = str(whole_rows["verdict"].iloc[0]) if len(whole_rows) else ""
    parts = _parts(mine, linked, window)
    whole_est, whole_means = _effect(kind, parts[0][2], parts[0][3], measure.multiply)
    rows = []
    for dim, sub, before_g, after_g in parts:
        est, means = (
            (whole_est, whole_means)
            if dim == "all"
            else _effect(kind, before_g, after_g, measure.multiply)
        )
        n0, n1 = len(before_g), len(after_g)
        eff, lo, hi = est
        verdict = _subgroup_verdict(kind, good, est, n0, n1, min_cases)
        flag, reason = False, f"effect {eff:.3g} (95% CI {lo:.3g} to {hi:.3g})"
        if (
            dim != "all"
            and whole_verdict == "improved"
            and verdict != "too little data"
            and np.isfinite(eff)
        ):
            flag, reason = _flag(kind, good, est, whole_est[0])
        if verdict == "too little data":
            reason = f"fewer than {min_cases} cases before or after"
        rows.append(
            {
                "microsystem_id": microsystem_id,
                "measure_id": item.measure_id,
                "name": m.get("name", item.measure_id),
                "change": window.change,
                "whole_verdict": whole_verdict,
                "dimension": dim,
                "subgroup": sub,
                "n_baseline": n0,
                "n_after": n1,
                "baseline_mean": float(means[0]) if n0 else math.nan,
                "after_mean": float(means[1]) if n1 else math.nan,
                "effect": eff,
                "effect_low": lo,
                "effect_high": hi,
                "effect_kind": kind,
                "verdict": verdict,
                "flag": flag,
                "reason": reason,
            }
        )
    return rows


def subgroup_effects(
    analysis: MicrosystemAnalysis,
    cases: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    min_cases: int = 20,
    n_conditions: int = 3,
    families: tuple[str, ...] = ("outcome", "process"),
) -> pd.DataFrame:
    """Each change's effect within each patient subgroup, next to the effect on the whole.

    Parameters
    ----------
    analysis : MicrosystemAnalysis
        From :func:`qi_helpers.changes.microsystem.analyse_microsystem` (its phases and verdicts
        are used).
    cases : DataFrame
        The measured cases of the microsystem
        (:func:`qi_helpers.changes.series.assign_microsystems`), with ``patient_id``; cases
        without one are left out.
    patients : DataFrame
        The ``patients`` table.
    min_cases : int
        Cases needed before and after the change to judge a subgroup.
    n_conditions : int
        How many leading conditions become subgroups.
    families : tuple of str
        The measure families analysed (balancing measures are not, as the issue asks).

    Returns
    -------
    DataFrame
        One row per measure, change and subgroup (first the whole, ``dimension`` and
        ``subgroup`` ``all``), columns:

        - ``microsystem_id, measure_id, name, change``;
        - ``whole_verdict``: the verdict on the whole series
          (:func:`qi_helpers.changes.analysis.analyse`);
        - ``dimension`` (``all``, ``age_band``, ``sex``, ``conditions``), ``subgroup``;
        - ``n_baseline, n_after``: cases before and after (patient counts can be smaller);
        - ``baseline_mean, after_mean``: levels on the charted scale;
        - ``effect, effect_low, effect_high, effect_kind``: as in the verdict table, from the
          cases of the subgroup;
        - ``verdict``: ``improved`` / ``worsened`` when the 95% interval lies wholly on one side
          of no effect, ``no clear change`` when it spans it, ``too little data`` with fewer than
          ``min_cases`` cases before or after;
        - ``flag``: the whole improved but this subgroup did not: its effect is not on the
          improving side at all, or the whole's effect lies beyond its interval (it improved
          clearly less than the whole);
        - ``reason``: the verdict in words.

    Notes
    -----
    Only case-level measures with patients (proportions, measured values and rates with
    ``denominator_weight``) can be split; pre-aggregated observations cannot. The comparison is
    a before/after one over the same periods as the whole's verdict, with the interval of
    :mod:`qi_helpers.changes.effects`; with many subgroups about one in twenty would fall outside by
    chance, so a flag is a prompt to look, not a finding (Rothwell, Lancet 2005;365:176-186, on
    subgroup analyses). Groups overlap for conditions.
    """
    if min_cases < 1:
        raise ConfigError(f"min_cases must be at least 1, found {min_cases}.")
    if "patient_id" not in cases.columns:
        return pd.DataFrame(columns=SUBGROUP_COLUMNS)
    with_patient = cases[cases["patient_id"].notna()].copy()
    with_patient["patient_id"] = with_patient["patient_id"].astype(str)
    patients = patients[_isin(patients["patient_id"], with_patient["patient_id"])]
    leading = leading_conditions(with_patient, patients, n_conditions)
    groups = patient_subgroups(patients, conditions=leading)
    rows = []
    for item in analysis.analyses:
        if str(item.measure.get("family")) not in families:
            continue
        mine = with_patient[with_patient["measure_id"] == item.measure_id]
        if mine.empty or item.windows.empty:
            continue
        linked = mine.merge(groups, on="patient_id", how="inner")
        for window in item.windows.itertuples():
            rows += _window_rows(analysis.microsystem_id, item, mine, linked, window, min_cases)
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)


#: The columns of a subgroup row computed on its cases: hidden when its counts are.
SUBGROUP_STATISTICS = (
    "baseline_mean",
    "after_mean",
    "effect",
    "effect_low",
    "effect_high",
    "verdict",
    "flag",
)


def subgroup_mask(
    table: pd.DataFrame,
    *,
    threshold: int = SMALL_CELL_THRESHOLD,
    counts: tuple[str, ...] = ("n_baseline", "n_after"),
    estimates: tuple[str, ...] = SUBGROUP_STATISTICS,
) -> pd.DataFrame:
    """Which counts and estimates of a subgroup table may not be published.

    The rule of :func:`qi_helpers.privacy.small_cells.small_group_mask`: in each measure and
    change, the groups of a dimension (age band, sex, conditions) split the whole (``dimension``
    ``all``), so counts of cases from 1 to ``threshold - 1`` are hidden, with a second group
    wherever the whole minus the groups shown would give a hidden one away, and every estimate of
    a hidden group is hidden too (so the whole's mean times its cases minus the groups shown only
    gives the pooled mean of at least ``threshold`` cases).

    Parameters
    ----------
    table : DataFrame
        E.g. from :func:`subgroup_effects`; without a ``dimension`` column the rows are not
        taken as parts of a whole and only small counts are hidden.
    threshold : int
        ``publish.small_cell_threshold``.
    counts : tuple of str
        The count columns (each its own line).
    estimates : tuple of str
        The columns computed on a row's cases.

    Returns
    -------
    DataFrame
        ``"primary"``, ``"complementary"`` or ``""`` for each count and estimate column present.
    """
    within = [c for c in ("microsystem_id", "measure_id", "change") if c in table.columns]
    return small_group_mask(
        table,
        [c for c in counts if c in table.columns],
        threshold,
        dimension="dimension" if "dimension" in table.columns else None,
        totals="all",
        within=within,
        statistics=[c for c in estimates if c in table.columns],
    )


def suppress_small(
    table: pd.DataFrame,
    *,
    threshold: int = SMALL_CELL_THRESHOLD,
    counts: tuple[str, ...] = ("n_baseline", "n_after"),
    estimates: tuple[str, ...] = SUBGROUP_STATISTICS,
) -> pd.DataFrame:
    """A copy safe to publish: small counts shown as ``"<threshold"``, their estimates hidden.

    Parameters
    ----------
    table : DataFrame
        E.g. from :func:`subgroup_effects`.
    threshold : int
        ``publish.small_cell_threshold``: counts from 1 to ``threshold - 1`` are suppressed
        (0 is shown: it discloses nothing about a person).
    counts : tuple of str
        The count columns.
    estimates : tuple of str
        Columns hidden (empty) on a row with a hidden count, since a proportion and its count
        give the numerator away.

    Returns
    -------
    DataFrame
        The same rows and columns; count columns become text: the count, ``"<threshold"`` (a
        small count) or ``"*"`` (a group hidden so that the whole minus the groups shown does
        not give a small one away; :func:`subgroup_mask`). Nothing is dropped, so the reader
        sees that the group exists.
    """
    if int(threshold) < 1:
        raise ConfigError(f"publish.small_cell_threshold must be 1 or more, found {threshold!r}.")
    mask = subgroup_mask(table, threshold=threshold, counts=counts, estimates=estimates)
    out = table.copy()
    labels = {"primary": small_cell_label(threshold), "complementary": COMPLEMENTARY_LABEL}
    for col in [c for c in counts if c in mask.columns]:
        v = pd.to_numeric(out[col], errors="coerce")
        out[col] = [
            labels.get(code) or ("" if pd.isna(x) else f"{int(x)}")
            for code, x in zip(mask[col], v, strict=True)
        ]
    small = mask.eq("primary").any(axis=1)
    hidden = mask.ne("").any(axis=1)
    for col in estimates:
        if col in out.columns:
            out[col] = out[col].astype("object").where(~hidden, None)
    if "reason" in out.columns:
        out["reason"] = out["reason"].where(
            ~hidden, "not shown, so that a smaller group cannot be worked out"
        )
        out["reason"] = out["reason"].where(~small, f"fewer than {threshold} cases: not shown")
    return out
