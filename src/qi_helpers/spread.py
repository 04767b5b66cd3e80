"""Plan the spread of changes that worked to other microsystems (workbook 04).

Spread follows the IHI Framework for Spread (Massoud et al. 2006): a change that improved results
in its pilots is offered to similar microsystems, readiest first (the early adopters of Rogers'
diffusion of innovations), in waves.
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.errors import ConfigError


def successful_changes(results: pd.DataFrame) -> pd.DataFrame:
    """The changes ready to spread: improved in at least one microsystem, worsened in none.

    A change that improved its outcome but worsened a balancing measure (or any other measure)
    where it was tested is held back: the team must first study that cost.

    Returns
    -------
    DataFrame
        ``change, pilots`` (``;``-joined microsystem ids where it improved), ``measures``
        (``;``-joined), one row per change, sorted.
    """
    tested = results[results["change"].notna()]
    harmful = set(tested.loc[tested["verdict"] == "worsened", "change"])
    won = tested[(tested["verdict"] == "improved") & ~tested["change"].isin(harmful)]
    grouped = won.groupby("change").agg(
        pilots=("microsystem_id", lambda s: ";".join(sorted(set(s)))),
        measures=("measure_id", lambda s: ";".join(sorted(set(s)))),
    )
    return grouped.reset_index()


def held_back(results: pd.DataFrame) -> pd.DataFrame:
    """Changes that improved somewhere but worsened a measure where they were tested.

    Returns
    -------
    DataFrame
        ``change, microsystem_id, measure_id, name, reason`` for each worsened measure.
    """
    tested = results[results["change"].notna()]
    improved = set(tested.loc[tested["verdict"] == "improved", "change"])
    worse = tested[(tested["verdict"] == "worsened") & tested["change"].isin(improved)]
    return worse[["change", "microsystem_id", "measure_id", "name", "reason"]].reset_index(
        drop=True
    )


def candidates(
    registry: pd.DataFrame, results: pd.DataFrame, readiness: pd.DataFrame, *, change: str
) -> pd.DataFrame:
    """Every other microsystem of the pilots' kind, as a candidate to adopt ``change``.

    Parameters
    ----------
    registry : DataFrame
        From workbook 01.
    results : DataFrame
        All workbook 03 verdicts (``microsystem_id, measure_id, change, verdict``...).
    readiness : DataFrame
        From :func:`qi_helpers.readiness.readiness_by_microsystem`.
    change : str

    Returns
    -------
    DataFrame
        ``change, microsystem_id, name, kind, site, readiness, respondents, reason``, readiest
        first; empty when the change improved nowhere.
    """
    won = successful_changes(results)
    row = won[won["change"] == change]
    if row.empty:
        return pd.DataFrame(
            columns=[
                "change",
                "microsystem_id",
                "name",
                "kind",
                "site",
                "readiness",
                "respondents",
                "reason",
            ]
        )
    pilots = row.iloc[0]["pilots"].split(";")
    kinds = set(registry.loc[registry["microsystem_id"].isin(pilots), "kind"])
    tested = set(results.loc[results["change"] == change, "microsystem_id"])
    pool = registry[registry["kind"].isin(kinds) & ~registry["microsystem_id"].isin(tested)]
    table = pool[["microsystem_id", "name", "kind", "site"]].merge(
        readiness[["microsystem_id", "readiness", "respondents"]], on="microsystem_id", how="left"
    )
    table.insert(0, "change", change)
    table = table.sort_values(
        ["readiness", "microsystem_id"], ascending=[False, True], na_position="last"
    )
    table["reason"] = [
        f"same kind as the pilot(s) {', '.join(pilots)}; readiness "
        + ("not surveyed" if pd.isna(r.readiness) else f"{r.readiness:.2f} of 3")
        for r in table.itertuples()
    ]
    return table.reset_index(drop=True)


def all_candidates(
    registry: pd.DataFrame, results: pd.DataFrame, readiness: pd.DataFrame
) -> pd.DataFrame:
    """:func:`candidates` for every change that improved somewhere, in one table."""
    frames = [
        candidates(registry, results, readiness, change=c)
        for c in successful_changes(results)["change"]
    ]
    if not frames:
        return candidates(registry, results, readiness, change="")
    return pd.concat(frames, ignore_index=True)


def default_start(results: pd.DataFrame) -> str:
    """The Monday after the last period with data in any workbook 03 result (ISO date)."""
    last = pd.to_datetime(results["last_period"]).max()
    return str((last + pd.Timedelta(weeks=1)).date())


def plan(
    candidate_table: pd.DataFrame, *, waves: int = 3, start: str, wave_length_weeks: int = 12
) -> pd.DataFrame:
    """Assign each change's candidates to waves, in their order (readiest first), with dates.

    Returns
    -------
    DataFrame
        The candidates plus ``wave`` (1..waves), ``wave_start`` and ``wave_end`` dates.
    """
    if waves < 1:
        raise ConfigError(f"spread.waves must be at least 1, found {waves}.")
    table = candidate_table.reset_index(drop=True).copy()
    position = table.groupby("change").cumcount()
    size = table.groupby("change")["change"].transform("size").map(lambda n: max(1, -(-n // waves)))
    table["wave"] = (position // size + 1).astype(int)
    begin = pd.Timestamp(start)
    table["wave_start"] = begin + pd.to_timedelta((table["wave"] - 1) * wave_length_weeks * 7, "D")
    table["wave_end"] = table["wave_start"] + pd.Timedelta(weeks=wave_length_weeks)
    return table
