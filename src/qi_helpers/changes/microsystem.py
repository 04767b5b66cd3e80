"""Analyse tests of change in one microsystem (workbook 03), and write the verdict table.

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009).
Its effect is judged on run and control charts: the periods before the change form the baseline
(frozen centre line and limits), and a special cause after it, in the direction of improvement,
is the evidence that the change made a difference (Provost & Murray, The Health Care Data Guide,
2011). The size of the effect comes with a confidence interval (:mod:`qi_helpers.changes.effects`),
and the patients' subgroups are compared with the whole (:mod:`qi_helpers.changes.equity`).

This module holds the analysis of one microsystem: :func:`analyse_microsystem` analyses each of
its measures (:func:`order_measures` order) with :func:`qi_helpers.changes.analysis.analyse` into
a :class:`MicrosystemAnalysis`, whose verdict table :func:`write_results` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from qi_helpers.changes.analysis import ChangeAnalysis, analyse
from qi_helpers.changes.effects import effect_direction
from qi_helpers.changes.equity import SUBGROUP_COLUMNS, subgroup_effects
from qi_helpers.changes.pdsa import changes_tested
from qi_helpers.changes.verdicts import RESULT_COLUMNS
from qi_helpers.errors import ConfigError
from qi_helpers.io import write_parquet
from qi_helpers.privacy.names import inside, safe_filename

__all__ = [
    "AIM_ORDER",
    "FAMILY_ORDER",
    "MicrosystemAnalysis",
    "analyse_microsystem",
    "order_measures",
    "write_results",
]

#: The order of the aims (Institute of Medicine, Crossing the Quality Chasm, 2001) in the report.
AIM_ORDER = ["effective", "timely", "efficient", "patient-centred", "safe", "equitable"]
#: The order of the measure families within an aim.
FAMILY_ORDER = ["outcome", "process", "balancing"]


def order_measures(measures: pd.DataFrame) -> pd.DataFrame:
    """The catalogue grouped by aim then family (outcome, process, balancing), each balancing
    measure placed right after the outcome it balances (the catalogue's ``balances``)."""
    aim = measures.get("aim", pd.Series("", index=measures.index)).astype("string")
    table = measures.assign(
        _aim=aim.map({a: i for i, a in enumerate(AIM_ORDER)}).astype("Float64").fillna(99),
        _family=measures["family"].map({f: i for i, f in enumerate(FAMILY_ORDER)}).fillna(99),
    ).sort_values(["_aim", "_family", "measure_id"], kind="stable")
    table = table.drop(columns=["_aim", "_family"]).reset_index(drop=True)
    if "balances" not in table.columns:
        return table
    ids = list(table["measure_id"])
    balances = table["balances"].fillna("").astype(str).str.strip()
    for i in table.index[(table["family"] == "balancing") & (balances != "")]:
        mid, outcome = table.at[i, "measure_id"], balances[i]
        if outcome in ids and mid in ids:
            ids.remove(mid)
            ids.insert(ids.index(outcome) + 1, mid)
    return table.set_index("measure_id").loc[ids].reset_index()


@dataclass
class MicrosystemAnalysis:
    """Every measure of one microsystem, analysed.

    Attributes
    ----------
    microsystem_id : str
    measures : DataFrame
        The catalogue rows of the measures with data here, in :func:`order_measures` order.
    analyses : list of ChangeAnalysis
        In the order of ``measures``.
    pdsa : DataFrame
        This microsystem's PDSA cycles.
    subgroups : DataFrame or None
        From :func:`qi_helpers.changes.equity.subgroup_effects` (empty without the patients table).
    """

    microsystem_id: str
    measures: pd.DataFrame
    analyses: list[ChangeAnalysis]
    pdsa: pd.DataFrame
    subgroups: pd.DataFrame | None = None

    @property
    def tests(self) -> pd.DataFrame:
        """This microsystem's changes (:func:`qi_helpers.changes.pdsa.changes_tested`)."""
        return changes_tested(self.pdsa)

    @property
    def verdicts(self) -> pd.DataFrame:
        """The verdict table: one row per measure and change judged.

        Columns (:data:`RESULT_COLUMNS`):

        - ``microsystem_id, measure_id, name, family, aim``: the measure (catalogue);
        - ``change, start, decision``: the change judged, the start of its adopting (or
          abandoning, or first) cycle and the decision of its last cycle; empty for a
          ``baseline only`` row;
        - ``verdict``: one of :data:`qi_helpers.changes.verdicts.VERDICTS` (see
          :func:`qi_helpers.changes.analysis.analyse`);
        - ``baseline_mean, after_mean``: the level before and after, on the charted scale;
        - ``n_baseline, n_after``: the periods compared;
        - ``last_period, last_value``: the last period with data and its charted value;
        - ``effect, effect_low, effect_high, effect_kind``: the effect and its 95% interval
          (``difference in proportions`` and ``difference in means`` on the charted scale,
          ``rate ratio`` without a scale; intervals ignore serial correlation);
        - ``periods_needed``: for ``no signal yet``, about how many more periods a chart needs
          to show the change (NaN otherwise or when it would not show);
        - ``verdict_since``: for ``improved`` and ``worsened``, the first period from which the
          change, judged on the data up to each period, has had this verdict
          (:func:`qi_helpers.changes.judging.verdict_since`); NaT otherwise;
        - ``balances``: for a balancing measure, the outcome it balances;
        - ``balancing_flag``: a balancing measure that worsened (verdict ``worsened`` or an
          effect interval wholly on the worse side);
        - ``baseline_stable``: the baseline, charted by itself, shows no sustained special
          cause (a shift, trend or runs signal; an isolated point beyond the limits does not
          count); NA when it is shorter than ``min_points``;
        - ``variation_icon, assurance_icon``: NHS Making Data Count icons of the measure's last
          point (:func:`qi_helpers.spc.rules.signals` with ``rules="mdc"``);
        - ``subgroups_flagged``: ``;``-joined patient subgroups that did not improve when the
          whole did (:mod:`qi_helpers.changes.equity`);
        - ``reason``: the verdict in words.
        """
        frames = [a.verdicts for a in self.analyses]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in RESULT_COLUMNS})
        table = pd.concat(frames, ignore_index=True)
        cols = ["measure_id", "name", "family", "aim", "improvement", "balances"]
        info = self.measures.reindex(columns=cols)
        table = info.merge(table, on="measure_id", how="right")
        table.insert(0, "microsystem_id", self.microsystem_id)
        table["balances"] = table["balances"].where(
            (table["family"] == "balancing") & table["balances"].fillna("").astype(str).ne(""),
            None,
        )
        worse_ci = [
            effect_direction(e, lo, hi, k) == (-1 if imp == "up" else 1)
            for e, lo, hi, k, imp in zip(
                table["effect"], table["effect_low"], table["effect_high"],
                table["effect_kind"], table["improvement"], strict=True,
            )
        ]  # fmt: skip
        table["balancing_flag"] = (table["family"] == "balancing") & (
            (table["verdict"] == "worsened") | pd.Series(worse_ci, index=table.index)
        )
        flagged = pd.Series("", index=table.index, dtype="object")
        if self.subgroups is not None and not self.subgroups.empty:
            hits = self.subgroups[self.subgroups["flag"]]
            for i, r in table.iterrows():
                mine = hits[
                    (hits["measure_id"] == r["measure_id"]) & (hits["change"] == r["change"])
                ]
                flagged[i] = ";".join(mine["dimension"] + " " + mine["subgroup"].astype(str))
        table["subgroups_flagged"] = flagged
        table["change"] = table["change"].astype("string")
        table["decision"] = table["decision"].astype("string")
        table["start"] = pd.to_datetime(table["start"])
        table["last_period"] = pd.to_datetime(table["last_period"])
        table["verdict_since"] = pd.to_datetime(table["verdict_since"])
        table["baseline_stable"] = table["baseline_stable"].astype("boolean")
        for c in ("n_baseline", "n_after"):
            table[c] = table[c].astype("int64")
        for c in ("variation_icon", "assurance_icon", "balances", "effect_kind"):
            table[c] = table[c].astype("string")
        return table[RESULT_COLUMNS]


def analyse_microsystem(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measures: pd.DataFrame,
    pdsa: pd.DataFrame,
    *,
    microsystem_id: str,
    min_points: int = 10,
    rules: str = "anhoej",
    baseline_periods: int | None = None,
    patients: pd.DataFrame | None = None,
    min_cases: int = 20,
    registry: pd.DataFrame | None = None,
) -> MicrosystemAnalysis:
    """Analyse every measure with data in one microsystem.

    Each measure is analysed by :func:`qi_helpers.changes.analysis.analyse`.

    Parameters
    ----------
    cases : DataFrame
        From :func:`qi_helpers.changes.series.assign_microsystems` (any microsystems; this
        one's are used).
    series : DataFrame
        From :func:`qi_helpers.changes.series.measure_series`.
    measures : DataFrame
        The measure catalogue.
    pdsa : DataFrame
        The PDSA log.
    microsystem_id : str
    min_points, rules, baseline_periods
        As :func:`qi_helpers.changes.analysis.analyse`.
    patients : DataFrame, optional
        The ``patients`` table: when given, outcome and process measures whose cases carry a
        ``patient_id`` are also analysed per subgroup
        (:func:`qi_helpers.changes.equity.subgroup_effects`).
    min_cases : int
        Cases needed in each period of a subgroup before it is judged.
    registry : DataFrame, optional
        Workbook 01's registry (``microsystem_id``): a microsystem it lists that has no measured
        data and no PDSA cycle yet (a service team just found) gets an empty analysis, which
        says so, instead of an error.

    Returns
    -------
    MicrosystemAnalysis

    Raises
    ------
    ConfigError
        When ``microsystem_id`` is not in the series, naming those that are (unless
        ``registry`` lists it).
    """
    own_series = series[(series["microsystem_id"] == microsystem_id).to_numpy()]
    own_series = own_series.astype({"microsystem_id": object, "measure_id": object})
    listed = registry is not None and microsystem_id in set(registry["microsystem_id"].astype(str))
    if own_series.empty and microsystem_id not in set(pdsa["microsystem_id"]) and not listed:
        known = ", ".join(sorted(series["microsystem_id"].dropna().astype(str).unique())[:20])
        raise ConfigError(
            f"microsystem_id {microsystem_id!r}: no measured data and no PDSA cycles. "
            f"Microsystems with data: {known}."
        )
    keep = [c for c in ("measure_id", "period", "value", "weight", "patient_id") if c in cases]
    own_cases = cases.loc[(cases["microsystem_id"] == microsystem_id).to_numpy(), keep]
    own_cases = own_cases.assign(microsystem_id=microsystem_id).reset_index(drop=True)
    own_cases["measure_id"] = own_cases["measure_id"].astype("category")
    with_data = order_measures(measures[measures["measure_id"].isin(own_series["measure_id"])])
    analyses = [
        analyse(
            own_series,
            row,
            pdsa,
            rules=rules,
            baseline_periods=baseline_periods,
            cases=own_cases,
            min_points=min_points,
            microsystem_id=microsystem_id,
        )
        for _, row in with_data.iterrows()
    ]
    mine = pdsa[pdsa["microsystem_id"] == microsystem_id].sort_values(["start", "cycle_id"])
    result = MicrosystemAnalysis(
        microsystem_id,
        with_data,
        analyses,
        mine.reset_index(drop=True),
        pd.DataFrame(columns=SUBGROUP_COLUMNS),
    )
    if patients is not None and "patient_id" in own_cases.columns:
        result.subgroups = subgroup_effects(result, own_cases, patients, min_cases=min_cases)
    return result


def write_results(analysis: MicrosystemAnalysis, folder: str | Path) -> Path:
    """Write the verdict table to ``<folder>/<microsystem_id>.parquet`` (safe file name, atomic).

    The table is :attr:`MicrosystemAnalysis.verdicts` (every column of :data:`RESULT_COLUMNS`);
    it holds no patient-level data.
    """
    folder = Path(folder)
    path = inside(folder, folder / f"{safe_filename(analysis.microsystem_id)}.parquet")
    return write_parquet(path, analysis.verdicts)
