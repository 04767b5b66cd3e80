"""What reading a table's source gives: the :class:`Loaded` table, or a :class:`SourceError`.

Shared by the readers of files (:mod:`qi_helpers.data.sources`), Excel workbooks
(:mod:`qi_helpers.data.excel`) and databases (:mod:`qi_helpers.data.databases`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from qi_helpers.errors import DataError, SourceError

__all__ = ["Loaded"]




@dataclass
class Loaded:
    """A table as read, before validation.

    Attributes
    ----------
    frame : DataFrame
        The table with the user's columns renamed to the contract's.
    where : str
        The source for messages: the file (and sheet), or the URL (password hidden) and table.
    encoding : str or None
        For text files, the encoding used: ``"UTF-8"``, ``"UTF-8 with BOM"`` or
        ``"Windows-1252"``.
    notes : list of str
        Things a user should know about how the table was read (e.g. the encoding fallback).
    """

    frame: pd.DataFrame
    where: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
