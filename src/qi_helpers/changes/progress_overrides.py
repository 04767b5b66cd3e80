"""A coach's progress scores: ``parameters/progress_scores.csv``, checked, and shown beside ours.

A progress score computed from the data (:func:`qi_helpers.changes.progress.progress_scores`)
sees only what the data hold; a coach who knows more (an audit not yet in the data, a change the
log does not show) may record a different score, with a reason. The file has one row per score
recorded: ``microsystem_id, month, score, reason`` and optionally ``coach``. A coach's score
holds from its month until the coach records the next one for the same microsystem; both scores
are always shown ("computed 3.0, coach 3.5: 'aim reached in the last audit, not in our data
yet'"). :func:`read_progress_overrides` checks the file and names file, column and rows of every
problem; :func:`with_overrides` puts the coach's score beside each computed one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from qi_helpers.changes.progress import PROGRESS_SCALE
from qi_helpers.data.scaffold import PROGRESS_SCORES_TEMPLATE
from qi_helpers.errors import ConfigError
from qi_helpers.project import PROGRESS_SCORES_FILE

__all__ = [
    "OVERRIDES_FILE",
    "OVERRIDES_TEMPLATE",
    "OVERRIDE_COLUMNS",
    "progress_text",
    "read_progress_overrides",
    "with_overrides",
]

#: Where a project keeps its coaches' scores (``qi init`` writes it).
OVERRIDES_FILE = PROGRESS_SCORES_FILE
#: The columns of the file (``coach`` may be left empty).
OVERRIDE_COLUMNS = ["microsystem_id", "month", "score", "reason", "coach"]
#: The file ``qi init`` writes: the header and a commented example.
OVERRIDES_TEMPLATE = PROGRESS_SCORES_TEMPLATE


def _rows(mask: pd.Series) -> str:
    """Data rows as a spreadsheet shows them (the header is row 1), the first ten."""
    rows = [int(i) + 2 for i in mask.index[mask.to_numpy(dtype=bool)]]
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return ", ".join(map(str, rows[:10])) + more


def read_progress_overrides(path: str | Path, microsystems: Iterable[str]) -> pd.DataFrame:
    """Read and check a coach's scores file.

    Parameters
    ----------
    path : str or Path
        The CSV file (``parameters/progress_scores.csv``); lines starting with ``#`` are
        comments. A missing file means no coach's score.
    microsystems : iterable of str
        The known microsystems (workbook 01's registry).

    Returns
    -------
    DataFrame
        ``microsystem_id, month`` (the month's first day), ``score`` (float), ``reason``,
        ``coach``, sorted by microsystem and month.

    Raises
    ------
    ConfigError
        Naming the file, the column and the rows (as a spreadsheet numbers them) of every
        problem: a missing column, a score not on the scale (1 to 5 by halves), an unknown
        microsystem, a month that is not a month (``2025-06``), an empty reason, two scores for
        one microsystem and month.
    """
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype="object") for c in OVERRIDE_COLUMNS})
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as CSV ({exc}).") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in OVERRIDE_COLUMNS[:4] if c not in raw.columns]
    if missing:
        raise ConfigError(
            f"{path}: missing column(s) {', '.join(missing)}; the file needs the columns "
            f"{', '.join(OVERRIDE_COLUMNS)} (coach may be empty)."
        )
    table = raw.apply(lambda c: c.str.strip()).reindex(columns=OVERRIDE_COLUMNS, fill_value="")
    table = table[~table["microsystem_id"].str.startswith("#")]  # comments keep their row numbers
    problems = _problems(table, set(map(str, microsystems)))
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems) + ".")
    out = table.assign(
        month=pd.to_datetime(table["month"].str[:7], format="%Y-%m"),
        score=pd.to_numeric(table["score"]).astype(float),
    )
    return out.sort_values(["microsystem_id", "month"], kind="stable").reset_index(drop=True)


def _problems(table: pd.DataFrame, known: set[str]) -> list[str]:
    """Every problem of the file, one sentence each naming the column and rows."""
    out = []
    score = pd.to_numeric(table["score"], errors="coerce")
    bad = ~score.isin(list(PROGRESS_SCALE))
    if bad.any():
        out.append(
            f"column score, row(s) {_rows(bad)}: not on the progress scale "
            "(1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5 or 5)"
        )
    unknown = ~table["microsystem_id"].isin(known)
    if unknown.any():
        out.append(f"column microsystem_id, row(s) {_rows(unknown)}: not a known microsystem")
    month = pd.to_datetime(table["month"].str[:7], format="%Y-%m", errors="coerce")
    wrong = month.isna() | ~table["month"].str.fullmatch(r"\d{4}-\d{2}(-\d{2})?")
    if wrong.any():
        out.append(f"column month, row(s) {_rows(wrong)}: not a month such as 2025-06")
    empty = table["reason"] == ""
    if empty.any():
        out.append(f"column reason, row(s) {_rows(empty)}: empty (a coach's score needs a reason)")
    twice = pd.DataFrame({"m": table["microsystem_id"], "d": month}).duplicated(keep=False)
    twice &= ~wrong
    if twice.any():
        out.append(f"columns microsystem_id and month, row(s) {_rows(twice)}: scored twice")
    return out


def with_overrides(scores: pd.DataFrame, overrides: pd.DataFrame) -> pd.DataFrame:
    """The computed scores with the coach's score that holds in each month beside them.

    Parameters
    ----------
    scores : DataFrame
        From :func:`qi_helpers.changes.progress.progress_scores`.
    overrides : DataFrame
        From :func:`read_progress_overrides`.

    Returns
    -------
    DataFrame
        ``scores`` with ``coach_score`` (NaN where no coach's score holds), ``coach_reason``
        and ``coach``: the latest coach's score recorded for the microsystem in or before the
        month.
    """
    out = scores.copy()
    out["coach_score"] = np.nan
    out["coach_reason"] = ""
    out["coach"] = ""
    if overrides.empty or out.empty:
        return out
    for ms, mine in overrides.groupby("microsystem_id", sort=False):
        rows = out.index[out["microsystem_id"] == ms]
        for r in mine.sort_values("month").itertuples():
            held = rows[(out.loc[rows, "month"] >= r.month).to_numpy(dtype=bool)]
            held = held[out.loc[held, "month"].notna().to_numpy(dtype=bool)]
            out.loc[held, ["coach_score", "coach_reason", "coach"]] = [r.score, r.reason, r.coach]
    return out


def progress_text(score: float, coach_score: float = np.nan, reason: str = "") -> str:
    """Both scores in words: ``"3.0"``, or ``"computed 3.0, coach 3.5: 'reason'"``."""
    if coach_score is None or pd.isna(coach_score):
        return f"{score:.1f}"
    return f"computed {score:.1f}, coach {float(coach_score):.1f}: '{reason}'"
