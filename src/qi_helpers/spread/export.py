"""The spread plan as a file for managers: CSV or Excel, safe to open (workbook 04)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qi_helpers.data.formulas import neutralise_formulas
from qi_helpers.errors import ConfigError
from qi_helpers.io import atomic_write

#: Columns of the exported plan, in order (no patient data: teams, dates, scores, reasons).
EXPORT_COLUMNS = [
    "change",
    "wave",
    "adopter_category",
    "wave_start",
    "wave_end",
    "microsystem_id",
    "name",
    "site",
    "similarity",
    "readiness",
    "measure_id",
    "level",
    "projected_level",
    "projected_impact",
    "impact_unit",
    "reason",
    "support",
]


def export_plan(spread_plan: pd.DataFrame, path: str | Path) -> Path:
    """Write the plan for managers as CSV (``.csv``) or Excel (``.xlsx``), formula-injection safe.

    Parameters
    ----------
    spread_plan : DataFrame
        From :func:`qi_helpers.spread.waves.plan`.
    path : str or Path
        Where to write; the suffix picks the format.

    Returns
    -------
    Path
        The file written. Its columns are :data:`EXPORT_COLUMNS` (those present), dates as ISO
        dates, numbers rounded; text cells that start with ``= + - @`` are prefixed with ``'`` so
        that a spreadsheet shows them instead of running them
        (:func:`qi_helpers.data.formulas.neutralise_formulas`).
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(
            f"{path}: the plan can be exported as .csv or .xlsx, not {path.suffix!r}."
        )
    table = spread_plan[[c for c in EXPORT_COLUMNS if c in spread_plan.columns]].copy()
    for column in ("wave_start", "wave_end"):
        if column in table:
            table[column] = pd.to_datetime(table[column]).dt.strftime("%Y-%m-%d")
    for column in ("similarity", "readiness", "level", "projected_level", "projected_impact"):
        if column in table:
            table[column] = table[column].astype(float).round(2)
    table = neutralise_formulas(table)
    if path.suffix.lower() == ".csv":
        return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, lineterminator="\n"))
    return atomic_write(
        path,
        lambda tmp: table.to_excel(tmp, index=False, sheet_name="spread plan", engine="openpyxl"),
    )
