"""Keeping published output safe to share: small-cell suppression, identifier screening, escaping.

Published reports are read outside the team, so nothing in them may identify a patient, and no
name that comes from data may be able to inject markup or write outside the output folder.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError, QIError, format_rows

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(identifier: str) -> str:
    """Turn an identifier from data into a file name that stays inside its folder.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other run of characters becomes ``_``;
    leading dots are removed (no hidden files, no ``..``). When anything was changed, a short hash
    of the original is appended so two different ids never share a file.

    Parameters
    ----------
    identifier : str
        For example a microsystem id.

    Returns
    -------
    str
        A non-empty file-name-safe string.
    """
    text = str(identifier)
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    if cleaned != text or not cleaned:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned or 'id'}-{digest}"
    return cleaned[:120]


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


def escape(text: object) -> str:
    """HTML-escape any value for inclusion in a page (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


class PrivacyError(QIError):
    """A page would publish an identifier and the publishing policy is to refuse, not redact."""


# --- small-cell suppression -----------------------------------------------------------------


def small_cell_label(threshold: int = 11) -> str:
    """The text shown instead of a small count, e.g. ``"<11"``."""
    return f"<{int(threshold)}"


#: What a complementarily suppressed cell shows (a count hidden only to protect a small one).
COMPLEMENTARY_LABEL = "*"


def _check_counts(table: pd.DataFrame, count_columns: Sequence[str], threshold: int) -> None:
    missing = [c for c in count_columns if c not in table.columns]
    if missing:
        raise DataError(
            f"suppress_small_counts: column(s) {missing} not in the table; it has "
            f"{list(table.columns)}."
        )
    if int(threshold) < 1:
        raise ConfigError(f"small-cell threshold must be 1 or more, found {threshold!r}.")
    for column in count_columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna() | (values < 0)
        if bad.any():
            rows = format_rows(i + 1 for i in np.flatnonzero(bad.to_numpy()))
            raise DataError(
                f"suppress_small_counts: column `{column}` must hold counts (whole numbers >= 0); "
                f"{rows} do not."
            )


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
    body_rows = [i for i, label in enumerate(rows) if total_row is None or label != total_row]
    total_i = rows.index(total_row) if total_row is not None and total_row in rows else None
    n_inner = len(count_columns)
    total_j = n_inner if total_column else None
    primary = (values >= 1) & (values < threshold)
    hidden = primary.copy()

    Cell = tuple[int, int]

    def lines() -> list[tuple[list[Cell], Cell | None, bool]]:
        out = []  # (cells, the line's total cell, whether the line is a row)
        for i in body_rows:
            out.append(([(i, j) for j in range(n_inner)], (i, total_j) if total_j else None, True))
        for j in range(n_inner):
            cells = [(i, j) for i in body_rows]
            out.append((cells, (total_i, j) if total_i is not None else None, False))
        if total_i is not None and total_j is not None:  # the total row across, and down
            out.append(([(total_i, j) for j in range(n_inner)], (total_i, total_j), True))
            out.append(([(i, total_j) for i in body_rows], (total_i, total_j), False))
        return out

    all_lines = lines()

    def crossing_hidden(cell: Cell, along_row: bool) -> bool:
        i, j = cell
        if along_row:  # the crossing line is the cell's column
            return any(hidden[r, j] for r in body_rows if r != i)
        return any(hidden[i, k] for k in range(n_inner) if k != j)

    changed = True
    while changed:
        changed = False
        for cells, total, along_row in all_lines:
            shown_hidden = [c for c in cells if hidden[c]]
            if not shown_hidden:
                continue
            hidden_sum = sum(values[c] for c in shown_hidden if not np.isnan(values[c]))
            if len(shown_hidden) >= 2 and hidden_sum >= threshold:
                continue
            candidates = [c for c in cells if not hidden[c] and not np.isnan(values[c])]
            if candidates:
                # Prefer a cell whose crossing line already hides one (the hidden cells then
                # pair up in rectangles), then a non-zero one, then the smallest.
                pick = min(
                    candidates,
                    key=lambda c: (not crossing_hidden(c, along_row), values[c] == 0, values[c], c),
                )
                hidden[pick] = True
                changed = True
            elif total is not None and not hidden[total]:
                hidden[total] = True
                changed = True
    codes = np.where(primary, "primary", np.where(hidden, "complementary", ""))
    return pd.DataFrame(codes, index=table.index, columns=columns)


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
_TOKEN = re.compile(r"[A-Za-z0-9_./-]+")
_SPLIT = re.compile(r"[_./-]+")
_SHAPE = re.compile(r"^([A-Za-z]+)([0-9]+)$")


def _shape_pattern(values: pd.Series) -> str | None:
    """A regular expression for the common shape of a column of ids, e.g. ``P[0-9]{6}``."""
    if values.empty:
        return None
    parts = values.str.extract(r"^([A-Za-z]+)([0-9]+)$")
    shapes = (parts[0] + ":" + parts[1].str.len().astype("string")).value_counts()
    if shapes.empty or shapes.iloc[0] < 0.95 * len(values):
        return None
    prefix, digits = str(shapes.index[0]).split(":")
    if int(digits) < 4:
        return None
    return f"{re.escape(prefix)}[0-9]{{{int(digits)}}}"


@dataclass
class IdentifierScreen:
    """Finds and removes the identifiers of patients, encounters and staff from published text.

    Built from the actual identifier values of the configured input tables (not only a pattern),
    plus the common shape of each column of ids (such as ``P`` and six digits), so an id that is
    missing from the tables but looks like one is caught too.

    Attributes
    ----------
    values : frozenset of str
        Exact identifiers to remove (those of 4 or more characters; all-digit ones of 6 or more,
        since shorter numbers cannot be told apart from counts).
    patterns : list of str
        Regular expressions for id shapes.
    phrases : frozenset of str
        Identifiers with spaces (e.g. staff names), matched as whole phrases.
    """

    values: frozenset[str] = frozenset()
    patterns: list[str] = field(default_factory=list)
    phrases: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._shape = (
            re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(self.patterns) + r")(?![A-Za-z0-9])")
            if self.patterns
            else None
        )
        phrases = sorted(self.phrases, key=len, reverse=True)
        self._phrase = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)")
            if phrases
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
                ids = pd.Series(frame[column].dropna().astype(str).str.strip().unique())
                ids = ids[ids != ""].astype(str)
                pattern = _shape_pattern(ids)
                if pattern and pattern not in patterns:
                    patterns.append(pattern)
                spaced = ids.str.contains(" ", regex=False)
                length = ids.str.len()
                digits = ids.str.isdigit()
                phrases.update(ids[spaced & (length >= 4)])
                usable = ~spaced & (length >= 4) & ~(digits & (length < 6))
                values.update(ids[usable])
        return cls(frozenset(values), patterns, frozenset(phrases))

    def find(self, text: str) -> list[str]:
        """The identifiers in ``text``, in order of appearance (with repeats)."""
        return [m[0] for m in self._matches(text)]

    def _matches(self, text: str) -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        if self.values:
            for m in _TOKEN.finditer(text):
                token = m.group(0)
                if token in self.values:
                    found.append((token, m.start(), m.end()))
                    continue
                pos = m.start()
                for piece in _SPLIT.split(token):
                    at = text.find(piece, pos, m.end()) if piece else -1
                    if piece in self.values and at >= 0:
                        found.append((piece, at, at + len(piece)))
                    if at >= 0:
                        pos = at + len(piece)
        for rx in (self._shape, self._phrase):
            if rx is not None:
                found.extend((m.group(0), m.start(), m.end()) for m in rx.finditer(text))
        found.sort(key=lambda f: (f[1], -f[2]))
        merged: list[tuple[str, int, int]] = []
        for item in found:
            if merged and item[1] < merged[-1][2]:
                continue
            merged.append(item)
        return merged

    def redact(self, text: str, marker: str = REDACTED) -> tuple[str, int]:
        """Replace every identifier in ``text`` by ``marker``.

        Returns
        -------
        text : str
            The cleaned text.
        count : int
            How many identifiers were removed.
        """
        matches = self._matches(text)
        if not matches:
            return text, 0
        parts, last = [], 0
        for _, start, end in matches:
            parts.append(text[last:start])
            parts.append(marker)
            last = end
        parts.append(text[last:])
        return "".join(parts), len(matches)


# --- sanitising HTML that came from data ------------------------------------------------------

_ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s small span strong sub summary "
    "sup table tbody td tfoot th thead tr u ul".split()
)
_ALLOWED_ATTRIBUTES = (
    "class id title style colspan rowspan align valign border scope role aria-label lang dir"
).split()
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
_CSS_REMOTE = re.compile(
    r"@import[^;]*;?|url\(\s*(?![\"']?data:)[^)]*\)|expression\s*\(", re.IGNORECASE
)


def clean_css(css: str) -> str:
    """CSS with nothing that loads from elsewhere (``@import``, non-``data:`` ``url()``)."""
    return _CSS_REMOTE.sub("", css).replace("</", "<\\/")


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _ALLOWED_ATTRIBUTES:
        return True
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith(("javascript:", "data:", "vbscript:"))
    if tag == "img" and name in ("alt", "width", "height"):
        return True
    if tag == "img" and name == "src":  # inline images only: a page never loads from elsewhere
        return value.strip().lower().startswith("data:image/")
    return False


def clean_html(fragment: str) -> str:
    """Sanitise an HTML fragment that may carry text from data (a table, rendered Markdown).

    Tags outside a small allow-list (``script``, ``iframe``, ``object``, forms, event handler
    attributes, ...) are escaped, so they show as text and never run; images must be inline
    (``data:``); ``<style>`` blocks are kept with anything that would load from another host
    removed.
    """
    import bleach
    from bleach.css_sanitizer import CSSSanitizer

    styles: list[str] = []

    def keep(match: re.Match[str]) -> str:
        styles.append(clean_css(match.group(1)))
        return f"qi-style-block-{len(styles) - 1}-qi"

    text = _STYLE_BLOCK.sub(keep, fragment)
    text = bleach.clean(
        text,
        tags=_ALLOWED_TAGS,
        attributes=_allow_attribute,
        protocols={"http", "https", "mailto", "data"},
        css_sanitizer=CSSSanitizer(),
        strip=False,
        strip_comments=True,
    )
    for i, css in enumerate(styles):
        text = text.replace(f"qi-style-block-{i}-qi", f"<style>{css}</style>", 1)
    return text
