"""Keeping published output safe to share: small-cell suppression, identifier screening, escaping.

Published reports are read outside the team, so nothing in them may identify a patient, and no
name that comes from data may be able to inject markup or write outside the output folder.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError, QIError, format_rows

if TYPE_CHECKING:
    from qi_helpers.project import Project

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: Longest name :func:`safe_filename` returns (room for a suffix such as ``.failed.html`` within
#: the 255 bytes most file systems allow).
MAX_FILENAME = 120

#: Hex digits of the hash :func:`safe_filename` appends (64 bits: no two ids share a name by
#: chance, and finding two that do is out of reach).
_DIGEST_CHARS = 16

# What a hashed name ends with. An id that already ends like this is hashed too, so a name kept
# as it is can never equal the hashed name of another id.
_HASHED_TAIL = re.compile(rf"-[0-9a-f]{{{_DIGEST_CHARS}}}\Z")


def safe_filename(identifier: str) -> str:
    """Turn an identifier from data into a file name that stays inside its folder.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other run of characters becomes ``_``;
    leading dots are removed (no hidden files, no ``..``). An id kept as it is must be at most
    :data:`MAX_FILENAME` characters long; any other id (changed, empty, too long, or ending like
    a hashed name) becomes its cleaned text cut short, then ``-`` and a hash of the original, so
    two different ids never share a file and no result is longer than :data:`MAX_FILENAME`.

    Parameters
    ----------
    identifier : str
        For example a microsystem id.

    Returns
    -------
    str
        A non-empty file-name-safe string of at most :data:`MAX_FILENAME` characters.
    """
    text = str(identifier)
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    if cleaned == text and cleaned and len(text) <= MAX_FILENAME and not _HASHED_TAIL.search(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    # The hash goes after the cut: it is what keeps two long ids that share a prefix apart.
    keep = MAX_FILENAME - len(digest) - 1
    return f"{(cleaned or 'id')[:keep]}-{digest}"


def inside(folder: Path, path: Path) -> Path:
    """Return ``path`` resolved, after checking that it lies inside ``folder``.

    Raises
    ------
    ConfigError
        When the path would escape the folder.
    """
    folder = folder.resolve()
    resolved = path.resolve()
    if folder != resolved and folder not in resolved.parents:
        raise ConfigError(f"{path}: refusing to write outside {folder}.")
    return resolved


class PrivacyError(QIError):
    """A page would publish an identifier and the publishing policy is to refuse, not redact."""


# --- small-cell suppression -----------------------------------------------------------------


def small_cell_label(threshold: int = 11) -> str:
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
    threshold: int = 11,
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
    threshold: int = 11,
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
    threshold: int = 11,
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
    threshold: int = 11,
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


# --- identifier screening -------------------------------------------------------------------

#: What replaces an identifier found in a page.
REDACTED = "[identifier removed]"

#: Columns that hold identifiers of people, per input table (patients always; staff unless the
#: project publishes staff).
PATIENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id",),
    "activities": ("patient_id", "encounter_id"),
    "measure_events": ("patient_id",),
}
STAFF_COLUMNS: dict[str, tuple[str, ...]] = {
    "staff": ("staff_id", "name", "staff_name", "full_name", "first_name", "last_name"),
    "activities": ("staff_id",),
    "measure_events": ("staff_id",),
    "readiness": ("staff_id",),
}
#: The input tables read to build a project's screen (:func:`read_screened_tables`).
SCREENED_TABLES = ("patients", "activities", "measure_events", "staff", "readiness")

# ASCII case folding that keeps every position (``str.lower`` may change a text's length).
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PIECES = re.compile(r"[0-9A-Za-z]+")
_DIGITS_SHAPE = re.compile(r"^(\D*?)(\d+)(\D*)$")


def _is_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _screenable(value: str) -> bool:
    """Long enough to tell apart from ordinary text: 4+ characters; 6+ when all digits."""
    return len(value) >= 4 and not (value.isdigit() and len(value) < 6)


def identifier_variants(value: str) -> set[str]:
    """The forms in which an identifier may be written in free text, folded to lower case.

    The value itself; its letters and digits run together (``MRN:000101`` as ``MRN000101``);
    and each of its parts that holds a digit (``000101``, ``s00140`` of
    ``s00140@trust.example``), so a person is found however the writer punctuated the id. Parts
    without a digit (``trust``, ``example``) are not screened on their own: they are words.
    Forms shorter than :func:`_screenable` allows are left out.
    """
    text = str(value).strip().translate(_FOLD)
    if text.isascii() and text.isalnum():  # the usual id (P000101): no other form to add
        return {text} if _screenable(text) else set()
    found = {text} if _screenable(text) else set()
    pieces = _PIECES.findall(text)
    joined = "".join(pieces)
    if len(pieces) > 1 and _screenable(joined) and any(c.isdigit() for c in joined):
        found.add(joined)
    for piece in pieces:
        if piece != text and any(c.isdigit() for c in piece) and _screenable(piece):
            found.add(piece)
    return found


def _variants_of_all(values: frozenset[str] | set[str]) -> set[str]:
    """:func:`identifier_variants` of many ids; plain ones (``P000101``) vectorised with Arrow."""
    ids = pd.Series(list(values), dtype="string[pyarrow]").str.strip()
    plain = ids.str.fullmatch(r"[0-9A-Za-z]+").fillna(False).astype(bool)
    folded = ids[plain].str.lower()
    length = folded.str.len()
    keep = (length >= 4) & ~(folded.str.isdigit() & (length < 6))
    words = set(folded[keep].tolist())
    for value in ids[~plain].dropna().tolist():
        words |= identifier_variants(value)
    return words


def _flexible(literal: str) -> str:
    """A regex for ``literal`` whose punctuation may be written differently or left out."""
    parts = []
    for piece in re.split(r"([0-9A-Za-z]+)", literal):
        if not piece:
            continue
        parts.append(re.escape(piece) if _is_alnum(piece[0]) else r"[\W_]{0,3}")
    return "".join(parts)


def _shape_pattern(values: pd.Series | Sequence[str]) -> str | None:
    """A regular expression for the common shape of a column of ids, or None.

    The shape is the text before the digits, the number of digits and the text after them
    (``P`` and six digits; ``MRN:`` and six digits; ``s``, five digits and ``@trust.example``),
    shared by at least 95% of the ids; the punctuation of the shape may be written differently
    or left out and the text after the digits may be missing. Ids of any other form (one
    ``ENC-77/1`` among ``E`` plus 8 digits) are simply outside the shape: this never fails.
    Shapes of all digits need 8 or more of them (shorter ones look like counts and dates).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(pd.Series(values, dtype=object).dropna().astype(str).tolist(), pa.string())
    if len(ids) == 0:
        return None
    # Arrow's regex kernel, vectorised (millions of encounter ids); an id of any other form
    # (``ENC-77/1`` among ``E`` and 8 digits) has no match and simply drops out.
    parts = pc.extract_regex(ids, r"^(?P<prefix>\D*?)(?P<digits>\d+)(?P<suffix>\D*)$")
    shapes_table = pa.table(
        {
            "prefix": parts.field("prefix"),
            "digits": pc.utf8_length(parts.field("digits")),
            "suffix": parts.field("suffix"),
        }
    ).filter(pc.is_valid(parts))
    if shapes_table.num_rows == 0:
        return None
    counted = shapes_table.group_by(["prefix", "digits", "suffix"]).aggregate([([], "count_all")])
    shapes = Counter(
        {(r["prefix"], r["digits"], r["suffix"]): r["count_all"] for r in counted.to_pylist()}
    )
    (prefix, digits, suffix), count = shapes.most_common(1)[0]
    if count < 0.95 * len(ids) or digits < 4:
        return None
    if not any(_is_alnum(c) for c in prefix) and digits < 8:
        return None
    after = f"(?:{_flexible(suffix)})?" if suffix else ""
    return rf"(?<![0-9A-Za-z]){_flexible(prefix)}[0-9]{{{digits}}}(?![0-9])" + after


def _in_number(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` (digits) is part of a longer number such as ``65.722952``."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before.isdigit() or after.isdigit():
        return True
    if before in ".," and start > 1 and text[start - 2].isdigit():
        return True
    return after in ".," and end + 1 < len(text) and text[end + 1].isdigit()


@dataclass
class IdentifierScreen:
    """Finds and removes the identifiers of patients, encounters and staff from published text.

    Screening is by value first: every identifier of the configured input tables, in whatever
    shape the organisation uses (``P000101``, ``MRN:000101``, ``s00140@trust.example``), is
    looked for as a substring of any text, with or without punctuation around it or inside it
    (:func:`identifier_variants`), in one pass (an Aho-Corasick automaton, so the cost does
    not grow with the number of ids). A match counts when it is not a piece of a longer word
    or number:

    - a form with letters and digits of 6 or more characters counts wherever it is found
      (``C7P000101`` holds ``P000101``);
    - a shorter one, or one of letters only, must stand as a word of its own;
    - a form of digits only must stand apart from letters and digits and not be part of a
      longer number (``65.722952``) or word (a hash such as ``ab031773cd``).

    The common shape of each column of ids (such as ``P`` and six digits) is a second net for
    ids missing from the tables; staff names with spaces are found as whole phrases.

    Attributes
    ----------
    values : frozenset of str
        Identifiers to remove (each is expanded to its variants).
    patterns : list of str
        Regular expressions for id shapes (matched ignoring case).
    phrases : frozenset of str
        Identifiers with spaces (e.g. staff names), matched as whole phrases ignoring case.
    """

    values: frozenset[str] = frozenset()
    patterns: list[str] = field(default_factory=list)
    phrases: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # pyahocorasick (C): one pass over a page whatever the number of ids; STORE_LENGTH keeps
        # only each word's length, so millions of encounter ids stay cheap in memory.
        import ahocorasick

        self._automaton = None
        words = _variants_of_all(self.values)
        for phrase in self.phrases:
            folded = " ".join(str(phrase).split()).translate(_FOLD)
            if len(folded) >= 4:
                words.add(folded)
        if words:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_LENGTH)
            for word in words:
                automaton.add_word(word)
            automaton.make_automaton()
            self._automaton = automaton
        self._shape = (
            re.compile("|".join(f"(?:{p})" for p in self.patterns), re.IGNORECASE)
            if self.patterns
            else None
        )

    @classmethod
    def from_tables(
        cls, tables: dict[str, pd.DataFrame | None], *, show_staff: bool = False
    ) -> IdentifierScreen:
        """Collect identifiers from input tables (:data:`PATIENT_COLUMNS`, :data:`STAFF_COLUMNS`).

        Parameters
        ----------
        tables : dict of DataFrame
            Input tables by contract name; missing or None tables are skipped.
        show_staff : bool
            When True (``publish.show_staff``), staff ids and names are not screened.
        """
        wanted: dict[str, set[str]] = {}
        for source in (PATIENT_COLUMNS,) + (() if show_staff else (STAFF_COLUMNS,)):
            for table, columns in source.items():
                wanted.setdefault(table, set()).update(columns)
        values: set[str] = set()
        phrases: set[str] = set()
        patterns: list[str] = []
        for name, columns in wanted.items():
            frame = tables.get(name)
            if frame is None:
                continue
            for column in sorted(columns & set(frame.columns)):
                ids = frame[column].dropna().astype("string[pyarrow]").str.strip()
                ids = pd.Series(ids[ids != ""].unique(), dtype="string[pyarrow]")
                pattern = _shape_pattern(ids)
                if pattern and pattern not in patterns:
                    patterns.append(pattern)
                spaced = ids.str.contains(r"\s", regex=True).astype(bool)
                phrases.update(ids[spaced].tolist())
                values.update(ids[~spaced].tolist())
        return cls(frozenset(values), patterns, frozenset(phrases))

    def find(self, text: str) -> list[str]:
        """The identifiers in ``text``, in order of appearance (with repeats)."""
        return [text[start:end] for start, end in self._spans(text)]

    def _accept(self, text: str, start: int, end: int) -> bool:
        form = text[start:end]
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        if form.isdigit():  # a part of a longer word or number (a hash, 65.000101) is not an id
            return not (_is_alnum(before) or _is_alnum(after) or _in_number(text, start, end))
        has_digit = any(c.isdigit() for c in form)
        if has_digit and len(form) >= 6:
            return True
        return not (_is_alnum(before) and _is_alnum(form[0])) and not (
            _is_alnum(after) and _is_alnum(form[-1])
        )

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        if self._automaton is not None and text:
            folded = text.translate(_FOLD)
            for last, length in self._automaton.iter(folded):
                start = last - length + 1
                if self._accept(text, start, last + 1):
                    spans.append((start, last + 1))
        if self._shape is not None and text:
            spans.extend(m.span() for m in self._shape.finditer(text) if m.end() > m.start())
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:  # overlapping finds become one span: no piece is left behind
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def redact_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """A copy of a table whose text cells, labels and headers hold no identifier.

        Used before a table is displayed, so that what the display shortens (pandas cuts long
        cells to ``...``) is already clean: a cut can leave a piece of an id that no screen of
        the finished page would recognise.

        Returns
        -------
        frame : DataFrame
        count : int
            How many identifiers were removed.
        """
        total = 0

        def clean(value: object) -> object:
            nonlocal total
            if not isinstance(value, str):
                return value
            cleaned, n = self.redact(value)
            total += n
            return cleaned

        out = frame.copy()
        for column in out.columns:
            if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
                out[column] = out[column].map(clean)
        out.index = out.index.map(clean)
        out.columns = out.columns.map(clean)
        return out, total

    def redact(self, text: str, marker: str = REDACTED) -> tuple[str, int]:
        """Replace every identifier in ``text`` by ``marker``.

        Returns
        -------
        text : str
            The cleaned text.
        count : int
            How many identifiers were removed.
        """
        spans = self._spans(text)
        if not spans:
            return text, 0
        parts, last = [], 0
        for start, end in spans:
            parts.append(text[last:start])
            parts.append(marker)
            last = end
        parts.append(text[last:])
        return "".join(parts), len(spans)


def read_screened_tables(
    project: Project, notes: list[str] | None = None
) -> dict[str, pd.DataFrame | None]:
    """Read the input tables whose identifiers are screened (:data:`SCREENED_TABLES`).

    A table that is not configured is None; one that cannot be read is None too, with a
    sentence in ``notes`` (publishing goes on with the shape net for it).
    """
    from qi_helpers.sources import read_table

    tables: dict[str, pd.DataFrame | None] = {}
    for name in SCREENED_TABLES:
        spec = project.table_spec(name)
        if spec is None:
            tables[name] = None
            continue
        try:
            tables[name], _ = read_table(spec, root=project.root, name=name)
        except QIError as exc:
            if notes is not None:
                notes.append(f"input table `{name}` could not be read for screening: {exc}")
            tables[name] = None
    return tables


def project_screen(project: Project) -> IdentifierScreen:
    """The identifier screen of a project's configured tables (``publish.show_staff`` applies).

    Cached per process while the tables' files are unchanged, so a warm kernel that runs many
    notebooks reads them once.
    """
    show_staff = bool(project.section("publish").get("show_staff", False))
    key = (str(project.root), show_staff, _sources_stamp(project))
    cached = _SCREENS.get(key)
    if cached is None:
        cached = IdentifierScreen.from_tables(read_screened_tables(project), show_staff=show_staff)
        _SCREENS.clear()
        _SCREENS[key] = cached
    return cached


_SCREENS: dict[tuple, IdentifierScreen] = {}


def _sources_stamp(project: Project) -> tuple:
    """The size and modification time of each screened table's file (None for a database)."""
    stamp = []
    for name in SCREENED_TABLES:
        spec = project.table_spec(name) or {}
        path = spec.get("path")
        if not path:
            stamp.append((name, spec.get("url")))
            continue
        full = Path(path) if Path(path).is_absolute() else project.root / path
        try:
            st = full.stat()
            stamp.append((name, str(full), st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append((name, str(full), None, None))
    return tuple(stamp)


# --- the screen of the running notebook ------------------------------------------------------

_ACTIVE_SCREEN: IdentifierScreen | Callable[[], IdentifierScreen | None] | None = None


def set_active_screen(
    screen: IdentifierScreen | Callable[[], IdentifierScreen | None] | None,
) -> None:
    """Make ``screen`` the one that figures and displays of this process screen their text with.

    :func:`qi_helpers.project.load_project` registers its project's screen (built lazily, on
    first use), so every figure a workbook draws is screened without being passed a screen.

    Parameters
    ----------
    screen : IdentifierScreen, callable returning one, or None
        None switches screening off (tests, a session without a project).
    """
    global _ACTIVE_SCREEN
    _ACTIVE_SCREEN = screen


def active_screen() -> IdentifierScreen | None:
    """The screen registered with :func:`set_active_screen` (built on first use), or None."""
    global _ACTIVE_SCREEN
    if callable(_ACTIVE_SCREEN) and not isinstance(_ACTIVE_SCREEN, IdentifierScreen):
        _ACTIVE_SCREEN = _ACTIVE_SCREEN()
    return _ACTIVE_SCREEN


# --- text from data on its way to a page --------------------------------------------------------

# Control characters and line breaks: a name from data is one line of plain text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Every ASCII punctuation character that means something to Markdown (CommonMark lets any of
# them be escaped with a backslash); `<`, `>` and `&` become entities instead.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$=:^'\"])")


def plain_text(value: object) -> str:
    """One line of text from any value: control characters and line breaks become spaces."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def escape(text: object) -> str:
    """HTML-escape any value for inclusion in a page (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def escape_markdown(value: object) -> str:
    """Text from data, made safe to put inside Markdown: it shows as itself, nothing more.

    The one function through which names from input tables (measures, changes, groups) enter
    Markdown that a workbook displays. The value becomes one line (:func:`plain_text`), every
    Markdown punctuation character is backslash-escaped (no emphasis, link, heading, table or
    maths: ``$`` pairs show as ``$``), and ``<``, ``>`` and ``&`` become HTML entities, so a tag
    written in the data shows as text and never becomes markup, in JupyterLab or in a report.

    Examples
    --------
    >>> print(escape_markdown('<img src=x onerror="alert(1)"> *$x$*'))
    &lt;img src\\=x onerror\\=\\"alert\\(1\\)\\"&gt; \\*\\$x\\$\\*
    """
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", plain_text(value)), quote=False)


# --- sanitising the HTML of notebook output -----------------------------------------------------

#: Elements a report page may carry from notebook output. No ``style``, ``script``, ``iframe``,
#: ``object``, ``svg``, form or ``link`` element: the page's look comes only from its template.
ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s small span strong sub summary "
    "sup table tbody td tfoot th thead tr u ul".split()
)
#: Attributes allowed on every element: no ``style`` and no event handler (``on...``).
ALLOWED_ATTRIBUTES = frozenset(
    "class id title colspan rowspan align valign scope role aria-label aria-hidden lang "
    "dir headers abbr".split()
)
_TAG_ATTRIBUTES = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "details": {"open"},
}
# Elements whose content goes with them (the text of a script or style block is not prose).
_DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "title", "textarea"})


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    """Keep only links that stay links and images that are inline (a page never fetches)."""
    url = value.strip().lower()
    if tag == "img" and name == "src":
        return value if url.startswith("data:image/") else None
    if tag == "a" and name == "href":
        return None if url.startswith(("javascript:", "data:", "vbscript:", "file:")) else value
    return value


def clean_html(fragment: str) -> str:
    """Sanitise HTML from a notebook's output (tables, rendered Markdown, cards) for a report.

    An allow-list sanitiser (nh3, the Python binding of the Rust library ammonia; maintained,
    where bleach is archived and nbconvert is moving off it): only the elements of
    :data:`ALLOWED_TAGS` and attributes of :data:`ALLOWED_ATTRIBUTES` survive; no ``<style>``
    element or ``style`` attribute, no script and no event handler; images only inline
    (``data:image/``); comments removed. Other tags are removed with their markup (their text
    stays, as text); ``script`` and ``style`` blocks with their content. The report's own CSS
    comes only from its template, so text from data can neither run nor restyle a page.
    """
    import nh3

    attributes = {tag: set(names) for tag, names in _TAG_ATTRIBUTES.items()}
    attributes["*"] = set(ALLOWED_ATTRIBUTES)
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=attributes,
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes={"http", "https", "mailto", "data"},
    )


def content_security_policy(*, styles: Sequence[str] = (), scripts: Sequence[str] = ()) -> str:
    """The Content-Security-Policy of a published page: nothing loads, only its own code runs.

    No request to any host (``default-src 'none'``; images only inline), and only the style and
    script blocks the template wrote, named by the SHA-256 of their exact text: a ``<style>`` or
    ``<script>`` that came from data anyway, or a ``style`` attribute, is ignored by the browser.
    A second line of defence behind :func:`clean_html`.

    Parameters
    ----------
    styles, scripts : sequence of str
        The exact text inside each ``<style>`` and ``<script>`` element of the template.

    Returns
    -------
    str
        The value of a ``<meta http-equiv="Content-Security-Policy">`` element.
    """

    def sources(blocks: Sequence[str]) -> str:
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() + "'"
            for b in blocks
        ]
        return " ".join(hashes) if hashes else "'none'"

    return (
        f"default-src 'none'; img-src data:; style-src {sources(styles)}; "
        f"script-src {sources(scripts)}; base-uri 'none'; form-action 'none'"
    )
