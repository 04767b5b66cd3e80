"""Identifier screening: no identifier of a patient, an encounter or staff in published text.

An :class:`IdentifierScreen` holds the identifiers of a project's input tables
(:func:`project_screen`) and removes them from pages, tables and every text a figure draws; the
screen of the running notebook is registered with :func:`set_active_screen`.
"""

from __future__ import annotations

import hashlib
import json
import pickle  # noqa: S403 - only for the screen this project's own code saved (see save_screen)
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ahocorasick
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qi_helpers.data.sources import read_table
from qi_helpers.errors import QIError
from qi_helpers.io import atomic_write, write_json

if TYPE_CHECKING:
    from qi_helpers.project import Project


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
    #: A finished automaton of every form (loaded from a saved screen): ``values`` and
    #: ``phrases`` are then not needed and not expanded again.
    automaton: Any = field(default=None, repr=False, compare=False)
    #: Sentences on tables that could not be read when the screen was built (shown on the site).
    notes: list[str] = field(default_factory=list, compare=False)
    #: A digest of what the screen finds (its saved automaton and patterns), when it was saved:
    #: pages screened with an equal digest are screened alike (:mod:`qi_helpers.publish`).
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self._automaton = self.automaton
        self._forms = ""  # the digest of the forms, when built here (:func:`_forms_digest`)
        if self._automaton is None:
            self._build_automaton()
        self._shape = (
            re.compile("|".join(f"(?:{p})" for p in self.patterns), re.IGNORECASE)
            if self.patterns
            else None
        )

    def _build_automaton(self) -> None:
        words = _variants_of_all(self.values)
        for phrase in self.phrases:
            folded = " ".join(str(phrase).split()).translate(_FOLD)
            if len(folded) >= 4:
                words.add(folded)
        ordered = sorted(words)
        self._forms = _forms_digest(ordered)
        if ordered:
            # pyahocorasick (C): one pass over a page whatever the number of ids; STORE_LENGTH
            # keeps only each word's length, so millions of encounter ids stay cheap in memory.
            automaton = ahocorasick.Automaton(ahocorasick.STORE_LENGTH)
            for word in ordered:
                automaton.add_word(word)
            automaton.make_automaton()
            self._automaton = automaton

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
                # Arrow's regex kernel: pandas falls back to Python per value here (3 s a million).
                spaced = pd.Series(
                    pc.match_substring_regex(pa.array(ids), r"\s").to_numpy(zero_copy_only=False),
                    index=ids.index,
                ).astype(bool)
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
    tables: dict[str, pd.DataFrame | None] = {}
    for name in SCREENED_TABLES:
        spec = project.table_spec(name)
        if spec is None:
            tables[name] = None
            continue
        # Only the columns that hold identifiers: a tenth of the memory on a large activity log.
        wanted = frozenset(PATIENT_COLUMNS.get(name, ()) + STAFF_COLUMNS.get(name, ()))
        try:
            tables[name], _ = read_table(spec, root=project.root, name=name, columns=wanted)
        except QIError as exc:
            if notes is not None:
                notes.append(f"input table `{name}` could not be read for screening: {exc}")
            tables[name] = None
    return tables


def project_screen(project: Project) -> IdentifierScreen:
    """The identifier screen of a project's configured tables (``publish.show_staff`` applies).

    Built once per change of the screened tables and kept in ``outputs/data/identifier_screen/``
    (:func:`save_screen`), so each notebook kernel and the publisher load it in well under a
    second instead of reading every input table again (about 40 s for 6 million activities);
    also cached per process while the tables' files are unchanged.
    """
    show_staff = bool(project.section("publish").get("show_staff", False))
    stamp = _sources_stamp(project)
    key = (str(project.root), show_staff, stamp)
    cached = _SCREENS.get(key)
    if cached is None:
        folder = project.data_dir / SCREEN_FOLDER
        cached = load_screen(folder, show_staff, stamp)
        if cached is None:
            notes: list[str] = []
            tables = read_screened_tables(project, notes)
            cached = IdentifierScreen.from_tables(tables, show_staff=show_staff)
            cached.notes = notes
            del tables
            save_screen(cached, folder, show_staff, stamp)
        _SCREENS.clear()
        _SCREENS[key] = cached
    return cached


#: Where a project's built screen is kept, under ``outputs/data/`` (never published: it holds
#: the identifiers themselves, like the membership tables beside it).
SCREEN_FOLDER = "identifier_screen"
#: Version of the saved form; a saved screen of another version is built again.
SCREEN_FORMAT = 2


def _forms_digest(ordered: list[str]) -> str:
    """A digest of the sorted forms an automaton holds: equal forms, equal digest, in any
    process (hashed in blocks, so millions of forms cost one pass and little memory)."""
    found = hashlib.sha256()
    for start in range(0, len(ordered), 100_000):
        found.update("\n".join(ordered[start : start + 100_000]).encode())
        found.update(b"\n")
    return found.hexdigest()


def _stamp_key(show_staff: bool, stamp: tuple) -> str:
    text = json.dumps([SCREEN_FORMAT, show_staff, stamp], default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def save_screen(screen: IdentifierScreen, folder: Path, show_staff: bool, stamp: tuple) -> None:
    """Keep a built screen on disk for other processes (:func:`load_screen`).

    The automaton is pickled (pyahocorasick's own pickle support copies its node array: loading
    takes 0.4 s for 4.4 million forms where its ``load`` takes 10 s). The file is written and
    read only by ``qi_helpers`` inside ``outputs/data/``, which holds the same trust as the
    project's notebooks. ``screen.json`` is written last and names it, so a reader never sees
    half a screen. A screen that cannot be saved (a read-only project) is simply built again.
    """
    key = _stamp_key(show_staff, stamp)
    name = f"automaton-{key}.bin"
    try:
        data = b""
        if screen._automaton is not None:
            data = pickle.dumps(screen._automaton, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write(folder / name, lambda tmp: tmp.write_bytes(data))
        # What the screen finds, not the pickle's bytes: pyahocorasick's pickle of the same
        # words differs from one process to the next, and every page would be made again.
        found = hashlib.sha256((screen._forms or hashlib.sha256(data).hexdigest()).encode())
        found.update(json.dumps(list(screen.patterns)).encode())
        screen.digest = found.hexdigest()
        write_json(
            folder / "screen.json",
            {
                "format": SCREEN_FORMAT,
                "key": key,
                "automaton": name if screen._automaton is not None else None,
                "patterns": list(screen.patterns),
                "notes": list(screen.notes),
                "digest": screen.digest,
            },
        )
        for old in folder.glob("automaton-*.bin"):
            if old.name != name:
                old.unlink(missing_ok=True)
    except OSError:
        return


def _saved_record(folder: Path, show_staff: bool, stamp: tuple) -> dict[str, Any] | None:
    """``screen.json`` of the screen saved for these tables, or None when absent or stale."""
    try:
        saved = json.loads((folder / "screen.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("format") != SCREEN_FORMAT:
        return None
    return saved if saved.get("key") == _stamp_key(show_staff, stamp) else None


def screen_saved(project: Project) -> bool:
    """Whether the project's screen is saved for its tables as they are now (nothing is read
    but ``screen.json`` and the tables' sizes and times): :func:`project_screen` will load it
    rather than build it."""
    show_staff = bool(project.section("publish").get("show_staff", False))
    folder = project.data_dir / SCREEN_FOLDER
    saved = _saved_record(folder, show_staff, _sources_stamp(project))
    if saved is None:
        return False
    automaton = saved.get("automaton")
    return not automaton or (folder / str(automaton)).is_file()


def load_screen(folder: Path, show_staff: bool, stamp: tuple) -> IdentifierScreen | None:
    """The screen :func:`save_screen` kept for these tables, or None when absent or stale."""
    try:
        saved = _saved_record(folder, show_staff, stamp)
        if saved is None:
            return None
        automaton = None
        if saved.get("automaton"):
            with (folder / saved["automaton"]).open("rb") as handle:
                automaton = pickle.load(handle)  # noqa: S301 - written by save_screen
        return IdentifierScreen(
            patterns=list(saved["patterns"]),
            automaton=automaton,
            notes=list(saved.get("notes") or []),
            digest=str(saved.get("digest") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError):
        return None


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
