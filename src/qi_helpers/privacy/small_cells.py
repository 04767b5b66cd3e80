"""Small-cell suppression: no published count of patients may identify one.

Counts from 1 to ``threshold - 1`` are hidden (primary suppression), and so are further counts
from which a hidden one could be worked out through the totals (complementary suppression):
:func:`small_cell_mask` for a cross-table of counts, :func:`small_group_mask` for tables of
groups (subgroups, age bands, panels) and the statistics computed on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError, format_rows

#: The default smallest count published (``publish.small_cell_threshold`` in project.yaml):
#: counts from 1 to 10 show as ``<11``, as in the CMS cell-size suppression policy.
SMALL_CELL_THRESHOLD = 11


def small_cell_label(threshold: int = SMALL_CELL_THRESHOLD) -> str:
    """The text shown instead of a small count, e.g. ``"<11"``."""
    return f"<{int(threshold)}"


#: What a complementarily suppressed cell shows (a count hidden only to protect a small one).
COMPLEMENTARY_LABEL = "*"


def _check_counts(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int,
    who: str = "suppress_small_counts",
) -> None:
    missing = [c for c in count_columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{who}: column(s) {missing} not in the table; it has {list(table.columns)}."
        )
    if int(threshold) < 1:
        raise ConfigError(f"small-cell threshold must be 1 or more, found {threshold!r}.")
    for column in count_columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna() | (values < 0)
        if bad.any():
            rows = format_rows(i + 1 for i in np.flatnonzero(bad.to_numpy()))
            raise DataError(
                f"{who}: column `{column}` must hold counts (whole numbers >= 0); {rows} do not."
            )


#: A line of cells: the numbers of its parts, and of its total (None: not in the table).
Line = tuple[Sequence[int], int | None]


def _complement(
    values: np.ndarray,
    lines: Sequence[Line],
    primary: np.ndarray,
    threshold: int,
    *,
    free: np.ndarray | None = None,
    spare: np.ndarray | None = None,
) -> np.ndarray:
    """Complementary suppression over cells linked by lines (the rule of :func:`small_cell_mask`).

    Parameters
    ----------
    values : numpy.ndarray
        One count per cell (NaN: not a count, never hidden to protect another).
    lines : sequence of (parts, total)
        Cell numbers of a line's parts, and of its total (None when the table shows none: the
        total is then taken as known to the reader).
    primary : numpy.ndarray of bool
        The cells hidden because they are small.
    threshold : int
        The smallest count that may be shown.
    free : numpy.ndarray of bool, optional
        Cells that are never published (hiding them costs nothing): chosen first.
    spare : numpy.ndarray of bool, optional
        Cells kept shown while a line has another choice (totals of other groups, for nested
        totals such as patients seen > panel > age bands): the line's own total is hidden before
        them.

    Returns
    -------
    numpy.ndarray of bool
        The hidden cells: ``primary`` and the complementary ones.
    """
    hidden = primary.copy()
    counted = ~np.isnan(values)
    touching: dict[int, list[int]] = {}
    for k, (parts, total) in enumerate(lines):
        for c in parts:
            touching.setdefault(c, []).append(k)
        if total is not None:
            touching.setdefault(total, []).append(k)

    def crossing_hidden(c: int, k: int) -> bool:
        """Another line through ``c`` already hides a cell (hidden cells then pair up)."""
        return any(hidden[x] for j in touching.get(c, ()) if j != k for x in lines[j][0] if x != c)

    def best(candidates: list[int], k: int) -> int:
        # Prefer a cell that is never published, then one whose crossing line already hides
        # one (the hidden cells then pair up in rectangles), then a non-zero one, then the
        # smallest; ties in cell order.
        return min(
            candidates,
            key=lambda c: (
                free is not None and not free[c],
                not crossing_hidden(c, k),
                values[c] == 0,
                values[c],
                c,
            ),
        )

    changed = True
    while changed:
        changed = False
        for k, (parts, total) in enumerate(lines):
            shown_hidden = [c for c in parts if hidden[c]]
            if not shown_hidden:
                continue
            hidden_sum = sum(values[c] for c in shown_hidden if counted[c])
            if len(shown_hidden) >= 2 and hidden_sum >= threshold:
                continue
            candidates = [c for c in parts if not hidden[c] and counted[c]]
            spared: list[int] = []
            if spare is not None:
                spared = [c for c in candidates if spare[c]]
                candidates = [c for c in candidates if not spare[c]]
            if candidates:
                pick = best(candidates, k)
            elif total is not None:
                if hidden[total]:
                    continue
                pick = total
            elif spared:
                pick = best(spared, k)
            else:
                continue
            hidden[pick] = True
            changed = True
    return hidden


def small_cell_mask(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = SMALL_CELL_THRESHOLD,
    *,
    total_row: object | None = None,
    total_column: str | None = None,
) -> pd.DataFrame:
    """Which cells of a table of counts must be hidden, and why.

    Primary suppression hides every count from 1 to ``threshold - 1`` (zero is shown: it
    identifies nobody). Complementary suppression then hides further cells so that no hidden
    count can be worked out from the totals: in every row (across ``count_columns``) and every
    column (down the rows) the hidden cells must be either none, or at least two whose sum is at
    least ``threshold``; otherwise the smallest shown cell of that line is hidden too (a non-zero
    one first), and when the line has none left, its total. Rows and columns are assumed to have
    totals that a reader knows (published here or elsewhere), so this holds whether or not the
    table shows them.

    Parameters
    ----------
    table : DataFrame
        One row per group; ``count_columns`` hold whole counts.
    count_columns : sequence of str
        The columns of counts (the "inner" cells, without a total column).
    threshold : int, default 11
        The smallest count that may be shown (CMS cell-size policy: 11).
    total_row : index label, optional
        The label of a row of column totals, if the table has one; its cells are the totals of
        the columns and are hidden only as a last resort (or when small themselves).
    total_column : str, optional
        A column of row totals, if the table has one (not in ``count_columns``).

    Returns
    -------
    DataFrame
        Same index as ``table``, columns ``count_columns`` (plus ``total_column``): ``"primary"``
        (a small count), ``"complementary"`` (hidden to protect a small count) or ``""``.

    Notes
    -----
    The CMS cell-size suppression policy (2020) forbids publishing counts from 1 to 10 or any
    value from which such a count can be derived; complementary ("secondary") suppression is the
    usual way to meet the second condition (Cox 1980, *Suppression methodology and statistical
    disclosure control*). The heuristic here (hide a further cell that pairs with one already
    hidden, else the smallest) keeps the loss of information low; it is not guaranteed optimal.
    """
    count_columns = list(count_columns)
    columns = count_columns + ([total_column] if total_column else [])
    _check_counts(table, columns, threshold)
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    rows = list(table.index)
    n_columns = len(columns)
    body_rows = [i for i, label in enumerate(rows) if total_row is None or label != total_row]
    total_i = rows.index(total_row) if total_row is not None and total_row in rows else None
    n_inner = len(count_columns)
    total_j = n_inner if total_column else None

    def cell(i: int, j: int) -> int:  # in reading order, so that ties go to the first cell
        return i * n_columns + j

    lines: list[Line] = []
    for i in body_rows:  # each row across, then each column down
        lines.append(([cell(i, j) for j in range(n_inner)], cell(i, total_j) if total_j else None))
    for j in range(n_inner):
        total = cell(total_i, j) if total_i is not None else None
        lines.append(([cell(i, j) for i in body_rows], total))
    if total_i is not None and total_j is not None:  # the total row across, and down
        lines.append(([cell(total_i, j) for j in range(n_inner)], cell(total_i, total_j)))
        lines.append(([cell(i, total_j) for i in body_rows], cell(total_i, total_j)))
    flat = values.ravel()
    primary = (flat >= 1) & (flat < threshold)
    hidden = _complement(flat, lines, primary, threshold)
    codes = np.where(primary, "primary", np.where(hidden, "complementary", ""))
    return pd.DataFrame(codes.reshape(values.shape), index=table.index, columns=columns)


def suppress_small_counts(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = SMALL_CELL_THRESHOLD,
    *,
    total_row: object | None = None,
    total_column: str | None = None,
) -> pd.DataFrame:
    """A copy of a table of counts that is safe to publish: small counts shown as ``"<11"``.

    Counts from 1 to ``threshold - 1`` become ``"<11"`` (for the default threshold), and further
    cells are hidden as ``"*"`` where needed so that no small count can be recovered from row or
    column totals (complementary suppression; see :func:`small_cell_mask` for the rule).

    Parameters
    ----------
    table : DataFrame
        One row per group; ``count_columns`` hold whole counts (other columns are copied).
    count_columns : sequence of str
        The columns of counts.
    threshold : int, default 11
        The smallest count shown; the project's ``publish.small_cell_threshold``.
    total_row : index label, optional
        The label of a row of totals, if any.
    total_column : str, optional
        A column of row totals, if any.

    Returns
    -------
    DataFrame
        The same rows and columns; the count columns (and ``total_column``) as text: the count,
        ``"<11"`` or ``"*"``.

    Examples
    --------
    >>> t = pd.DataFrame({"a": [3, 25, 40], "b": [12, 30, 18], "c": [20, 22, 35]})
    >>> suppress_small_counts(t, ["a", "b", "c"])
         a   b   c
    0  <11   *  20
    1    *   *  22
    2   40  18  35
    """
    mask = small_cell_mask(
        table, count_columns, threshold, total_row=total_row, total_column=total_column
    )
    out = table.copy()
    small = small_cell_label(threshold)
    for column in mask.columns:
        numbers = pd.to_numeric(table[column], errors="coerce")
        text = numbers.map(lambda v: "" if pd.isna(v) else f"{int(v)}" if v == int(v) else f"{v}")
        text = text.where(mask[column] != "primary", small)
        text = text.where(mask[column] != "complementary", COMPLEMENTARY_LABEL)
        out[column] = text.astype(object)
    return out


def small_group_mask(
    table: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = SMALL_CELL_THRESHOLD,
    *,
    dimension: str | None = None,
    totals: str | Mapping[str, str] | None = None,
    within: Sequence[str] = (),
    published: str | None = None,
    statistics: Sequence[str] = (),
) -> pd.DataFrame:
    """Which counts of a table of groups, and which statistics of them, may not be published.

    The one small-cell rule behind every published table, card and chart of patient numbers
    (subgroup tables, the registry, the 5 Ps summary and cards). A *table of groups* has one row
    per group (a subgroup of patients, an age band of a panel, a microsystem's panel) and one or
    more columns of counts, each column on its own (e.g. cases before and after a change). In
    each table (the rows sharing the values of ``within``) the groups of one ``dimension`` split
    that dimension's total, the row whose dimension ``totals`` names (e.g. ``"all"``), so a
    reader can subtract: the total minus the groups shown is the sum of the others. The rule:

    1. **Primary**: every count from 1 to ``threshold - 1`` is hidden (0 identifies nobody and
       is shown). That includes the counts a table never shows (``published`` False, e.g. the
       ``unknown`` age band a card leaves out) and the *remainder* of each dimension, its total
       minus the sum of its groups (patients in no group, e.g. patients seen minus the panel).
    2. **Complementary**: in every dimension of every table, for every count column, the hidden
       counts (the remainder included) must be none, or at least two whose sum is at least
       ``threshold``; otherwise one more count is hidden: one never published first, then one
       whose other dimension already hides one, then a non-zero one, then the smallest. A count
       of a dimension that ``totals`` names as the total of others (a panel, for its age bands)
       is hidden only when the dimension's own total cannot be instead (so of a pair ``b <= a``
       whose difference is small, ``a`` is hidden and ``b`` kept), and the total when no group
       is left. So the total
       minus the groups shown is 0 or at least ``threshold``: it never isolates a small group.
    3. **Statistics**: a statistic of a row (``statistics``: a mean, a rate, an effect, a share
       or percentage of the total) is hidden whenever a count of that row is, primary or
       complementary: a share times its known total gives the count, and the total's mean
       times its count minus the groups shown then only gives the pooled value of hidden groups
       holding at least ``threshold`` together. A share of a sum of groups (e.g. the share aged
       65 or over) may be shown only when no count of its dimension is hidden.

    Parameters
    ----------
    table : DataFrame
        One row per group.
    count_columns : sequence of str
        Columns of whole counts; each forms its own lines.
    threshold : int, default 11
        The smallest count that may be shown: the project's ``publish.small_cell_threshold``.
    dimension : str, optional
        The column naming the dimension of each row (``age_band``, ``sex`` ...). Without it,
        rows are not parts of a total (e.g. overlapping shared-patient counts) and only the
        primary rule applies.
    totals : str or mapping, optional
        The dimension of the total row: one name for all dimensions (``"all"``), or a mapping
        from a dimension to the dimension of its total, for nested totals (``{"panel": "seen",
        "age_band": "panel"}``). A table has at most one row of each total dimension. A
        dimension without a total row in its table is taken to have a total the reader knows
        (as :func:`small_cell_mask` assumes).
    within : sequence of str
        Columns naming independent tables in ``table`` (e.g. ``microsystem_id, measure_id,
        change``).
    published : str, optional
        A boolean column: False for a row whose counts are never shown (hiding them costs
        nothing, so they are chosen first for complementary suppression).
    statistics : sequence of str
        Columns of statistics computed on a row's group (means, rates, shares, effects).

    Returns
    -------
    DataFrame
        Same index as ``table``, columns ``count_columns`` then ``statistics``: ``"primary"``
        (a small count, shown as ``"<threshold"``), ``"complementary"`` (hidden to protect one,
        shown as ``"*"``) or ``""``; a statistic takes the strongest code of its row's counts.

    Raises
    ------
    DataError
        A column is missing, a count is not a whole number >= 0, or a table has two total rows
        of one dimension.
    ConfigError
        ``threshold`` below 1.

    Notes
    -----
    The CMS cell-size suppression policy (2020) forbids publishing counts from 1 to 10 or any
    value from which such a count can be derived; complementary ("secondary") suppression is the
    usual way to meet the second condition (Cox 1980, *Suppression methodology and statistical
    disclosure control*). The lines, their choice of cells and the loop are those of
    :func:`small_cell_mask` (a heuristic that keeps the loss of information low; it is not
    guaranteed optimal). Groups that overlap (a patient with two conditions) are treated as if
    they split the total, which hides more than needed, never less; groups of different
    dimensions or tables are not combined (no cross-tabulation of them is published).

    Examples
    --------
    >>> t = pd.DataFrame({"dimension": ["all", "sex", "sex", "sex"],
    ...                   "group": ["all", "F", "M", "unknown"], "n": [61, 40, 20, 1],
    ...                   "mean": [5.0, 4.0, 6.0, 9.0]})
    >>> mask = small_group_mask(t, ["n"], dimension="dimension", totals="all",
    ...                         statistics=["mean"])
    >>> mask["n"].tolist()  # 61 - 40 - 20 = 1: the 20 is hidden too
    ['', '', 'complementary', 'primary']
    >>> mask["mean"].tolist()
    ['', '', 'complementary', 'primary']
    """
    count_columns = list(count_columns)
    statistics = list(statistics)
    _check_counts(table, count_columns, threshold, "small_group_mask")
    named = [c for c in (dimension, published, *within, *statistics) if c is not None]
    missing = [c for c in named if c not in table.columns]
    if missing:
        raise DataError(
            f"small_group_mask: column(s) {missing} not in the table; it has {list(table.columns)}."
        )
    n_rows, n_counts = len(table), len(count_columns)
    counts = table[count_columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    values = list(counts.ravel())  # cell r * n_counts + j: row r, count column j
    shown = (
        np.ones(n_rows, dtype=bool)
        if published is None
        else table[published].fillna(False).astype(bool).to_numpy()
    )
    free = list(np.repeat(~shown, n_counts))
    spare = [False] * len(values)
    lines: list[Line] = []
    if dimension is not None:
        keys = pd.DataFrame({f"w{i}": table[c].to_numpy() for i, c in enumerate(within)})
        keys["dimension"] = table[dimension].astype("string").fillna("").to_numpy(dtype=object)
        if isinstance(totals, str):  # every other dimension adds up to the one total
            parent = {d: totals for d in keys["dimension"].unique() if d != totals}
        else:
            parent = {str(d): str(t) for d, t in (totals or {}).items()}
        total_dims = set(parent.values())
        spare = list(np.repeat(keys["dimension"].isin(total_dims).to_numpy(), n_counts))
        groups = keys.groupby(list(keys.columns), sort=False, dropna=False).indices
        groups = {(k if isinstance(k, tuple) else (k,)): list(v) for k, v in groups.items()}
        total_row: dict[tuple, int] = {}
        for key, rows in groups.items():
            if key[-1] in total_dims:
                if len(rows) > 1:
                    raise DataError(
                        f"small_group_mask: {len(rows)} rows of the total `{key[-1]}` in one "
                        f"table ({dict(zip(within, key[:-1], strict=True))}); expected one."
                    )
                total_row[key] = rows[0]
        for key, rows in groups.items():
            if key[-1] in total_dims and key[-1] not in parent:
                continue  # only a total
            total_dim = parent.get(key[-1])
            t = total_row.get((*key[:-1], total_dim)) if total_dim is not None else None
            for j in range(n_counts):
                parts = [r * n_counts + j for r in rows]
                total = t * n_counts + j if t is not None else None
                if total is not None and not np.isnan(values[total]):
                    rest = values[total] - np.nansum([values[c] for c in parts])
                    if rest > 0:  # the remainder: never shown, but the reader can work it out
                        parts.append(len(values))
                        values.append(float(rest))
                        free.append(True)
                        spare.append(False)
                lines.append((parts, total))
    flat = np.asarray(values, dtype=float)
    primary = (flat >= 1) & (flat < threshold)
    hidden = _complement(
        flat, lines, primary, threshold, free=np.asarray(free), spare=np.asarray(spare)
    )
    size = n_rows * n_counts
    primary_cells = primary[:size].reshape(n_rows, n_counts)
    hidden_cells = hidden[:size].reshape(n_rows, n_counts)
    codes = np.where(primary_cells, "primary", np.where(hidden_cells, "complementary", ""))
    row_code = np.where(
        primary_cells.any(axis=1),
        "primary",
        np.where(hidden_cells.any(axis=1), "complementary", ""),
    )
    out = pd.DataFrame(codes, index=table.index, columns=count_columns)
    for column in statistics:
        out[column] = row_code
    return out


def flag_small_denominators(
    table: pd.DataFrame,
    denominator_column: str,
    threshold: int = SMALL_CELL_THRESHOLD,
    *,
    flag_column: str = "small_denominator",
) -> pd.DataFrame:
    """Flag the rows whose rate rests on fewer than ``threshold`` cases.

    A rate on a small denominator is unstable and can disclose a small count (1 of 4 is one
    person); readers should see the flag next to it.

    Parameters
    ----------
    table : DataFrame
    denominator_column : str
        The column of denominators (cases, patient-days, ...).
    threshold : int, default 11
    flag_column : str
        Name of the boolean column added.

    Returns
    -------
    DataFrame
        A copy with ``flag_column``: True when ``0 < denominator < threshold``.
    """
    if denominator_column not in table.columns:
        raise DataError(
            f"flag_small_denominators: column `{denominator_column}` not in the table; it has "
            f"{list(table.columns)}."
        )
    d = pd.to_numeric(table[denominator_column], errors="coerce")
    out = table.copy()
    out[flag_column] = ((d > 0) & (d < threshold)).fillna(False).astype(bool)
    return out
