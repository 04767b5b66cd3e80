"""Put the candidates of each change into waves of adopters, with dates (workbook 04).

Spreading in waves lets each wave learn from the last (Massoud et al., *A Framework for Spread*,
IHI, 2006, set-up); the first wave is the most similar and readiest teams, who show the change
working in a setting like the others' (observability, Rogers, *Diffusion of Innovations*, 2003).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError

#: Rogers' adopter categories for the waves after the pilots (the innovators).
ADOPTER_CATEGORIES = ("early adopters", "early majority", "late majority")


def default_start(results: pd.DataFrame) -> str:
    """The Monday after the last period with data in any workbook 03 result (ISO date)."""
    last = pd.to_datetime(results["last_period"]).max()
    return str((last + pd.Timedelta(weeks=1)).date())


def plan(
    candidate_table: pd.DataFrame,
    *,
    waves: int | None = 3,
    wave_size: int | None = None,
    start: str,
    wave_length_weeks: int = 12,
) -> pd.DataFrame:
    """Put each change's candidates into waves, best first (the early adopters), with dates.

    Parameters
    ----------
    candidate_table : DataFrame
        From :func:`qi_helpers.spread.adopters.candidates` or
        :func:`qi_helpers.spread.adopters.all_candidates` (``change, microsystem_id``; ordered
        by ``score`` when present, else kept in its order).
    waves : int, optional
        Number of waves per change (the candidates split as evenly as possible, earlier waves
        the larger). Ignored when ``wave_size`` is given.
    wave_size : int, optional
        Adopters per wave; the number of waves follows from the number of candidates.
    start : str
        ISO date of the first wave's start.
    wave_length_weeks : int
        Weeks between the starts of two waves (each wave lasts this long).

    Returns
    -------
    DataFrame
        The candidates plus ``wave`` (1, 2, ...), ``adopter_category`` (Rogers' early adopters,
        early majority, late majority, by the wave's place in the plan), ``wave_start`` and
        ``wave_end`` (dates), one row per change and adopter, sorted by change, wave and rank.

    Notes
    -----
    Spreading in waves lets each wave learn from the last (Massoud et al. 2006, set-up); the
    first wave is the most similar and readiest teams, who show the change working in a setting
    like the others' (observability, Rogers 2003).
    """
    begin = _check_plan(waves, wave_size, start, wave_length_weeks)
    table = candidate_table.reset_index(drop=True).copy()
    if table.empty:
        for column in ("wave", "adopter_category", "wave_start", "wave_end"):
            table[column] = pd.Series(
                dtype="datetime64[ns]" if "start" in column or "end" in column else object
            )
        return table
    if "score" in table:
        table = table.sort_values(
            ["change", "score", "microsystem_id"], ascending=[True, False, True], kind="stable"
        ).reset_index(drop=True)
    position = table.groupby("change", sort=False).cumcount()
    count = table.groupby("change", sort=False)["change"].transform("size")
    if wave_size is not None:
        n_waves = np.ceil(count / int(wave_size)).astype(int)
        wave = position // int(wave_size) + 1
    else:
        n_waves = np.minimum(count, int(waves))
        # Even split, earlier waves the larger: position * waves // count.
        wave = (position * n_waves) // count + 1
    table["wave"] = wave.astype(int)
    place = (table["wave"] - 1) / n_waves
    table["adopter_category"] = np.select(
        [place < 1 / 3, place < 2 / 3], list(ADOPTER_CATEGORIES[:2]), ADOPTER_CATEGORIES[2]
    )
    table["wave_start"] = begin + pd.to_timedelta((table["wave"] - 1) * wave_length_weeks * 7, "D")
    table["wave_end"] = table["wave_start"] + pd.Timedelta(weeks=int(wave_length_weeks))
    return table.sort_values(["change", "wave"], kind="stable").reset_index(drop=True)


def _check_plan(
    waves: int | None, wave_size: int | None, start: str, wave_length_weeks: int
) -> pd.Timestamp:
    """Check the plan's settings; the first wave's start as a date."""
    if wave_size is not None:
        if int(wave_size) != wave_size or wave_size < 1:
            raise ConfigError(
                f"spread.wave_size must be a whole number of 1 or more, found {wave_size!r}."
            )
    elif waves is None or int(waves) != waves or waves < 1:
        raise ConfigError(f"spread.waves must be a whole number of 1 or more, found {waves!r}.")
    if int(wave_length_weeks) != wave_length_weeks or wave_length_weeks < 1:
        raise ConfigError(
            f"spread.wave_length_weeks must be a whole number of 1 or more, found "
            f"{wave_length_weeks!r}."
        )
    try:
        return pd.Timestamp(start)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"spread start must be an ISO date such as 2026-01-05, found {start!r}."
        ) from err
