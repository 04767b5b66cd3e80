"""Read one input table from a file (CSV, TSV, Excel, Parquet) or a SQL database.

A table's source is a mapping from ``parameters/project.yaml``: either ``path:`` (with ``sheet:``
for Excel) or ``url:`` (any SQLAlchemy URL) with ``table:`` or ``query:``, plus optional
``columns:`` that rename a user's column names to the data contract's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from qi_helpers.errors import ConfigError, DataError

#: Encodings tried in turn for text files: UTF-8 (with or without BOM), then Windows-1252, which
#: Excel on Windows writes.
TEXT_ENCODINGS = ("utf-8-sig", "cp1252")


def _read_text(path: Path, sep: str) -> tuple[pd.DataFrame, str]:
    """Read a delimited text file with every column as text (types are the schema's job)."""
    last_error: Exception | None = None
    for encoding in TEXT_ENCODINGS:
        try:
            frame = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding=encoding,
            )
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty; expected a header row.") from exc
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: cannot be parsed as delimited text ({exc}).") from exc
        return frame, encoding
    raise DataError(
        f"{path}: cannot be decoded as UTF-8 or Windows-1252 ({last_error}). Save it as UTF-8 CSV."
    )


def read_table(spec: dict[str, Any], *, root: Path, name: str) -> tuple[pd.DataFrame, str]:
    """Read the table a source mapping describes.

    Parameters
    ----------
    spec : dict
        ``{"path": ...}`` or ``{"url": ..., "table"|"query": ...}``, optional ``sheet``,
        ``columns`` (mapping from the user's names to the contract's).
    root : Path
        The project folder; relative paths are resolved against it.
    name : str
        The contract table's name (for messages).

    Returns
    -------
    frame : DataFrame
        The table, with columns renamed; identifier columns as text.
    where : str
        A description of the source for messages (file path, or URL and table).

    Raises
    ------
    ConfigError
        For a source mapping without ``path`` or ``url``, or an unsupported file type.
    DataError
        For a missing file, sheet or table, or one that cannot be read.
    """
    if "path" in spec:
        path = Path(spec["path"])
        path = path if path.is_absolute() else root / path
        where = str(path)
        if not path.is_file():
            raise DataError(
                f"{path}: file not found (table `{name}`). Check data.tables.{name}.path."
            )
        suffix = path.suffix.lower()
        if suffix in (".csv", ".txt"):
            frame, _ = _read_text(path, sep=",")
        elif suffix == ".tsv":
            frame, _ = _read_text(path, sep="\t")
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".xlsx", ".xlsm"):
            sheet = spec.get("sheet", 0)
            try:
                frame = pd.read_excel(path, sheet_name=sheet, dtype=object)
            except ValueError as exc:
                raise DataError(f"{path}: sheet {sheet!r} not found ({exc}).") from exc
            where = f"{path} [sheet {sheet}]"
        else:
            raise ConfigError(
                f"{path}: unsupported file type {suffix!r} for table `{name}`; use .csv, .tsv, "
                ".xlsx or .parquet."
            )
    elif "url" in spec:
        import sqlalchemy as sa

        url = spec["url"]
        engine = sa.create_engine(url)
        safe_url = engine.url.render_as_string(hide_password=True)
        try:
            if "query" in spec:
                where = f"{safe_url} (query for `{name}`)"
                with engine.connect() as conn:
                    frame = pd.read_sql_query(sa.text(spec["query"]), conn)
            elif "table" in spec:
                where = f"{safe_url} table {spec['table']}"
                with engine.connect() as conn:
                    frame = pd.read_sql_table(spec["table"], conn)
            else:
                raise ConfigError(
                    f"data.tables.{name}: a `url:` source needs `table:` or `query:`."
                )
        except (sa.exc.SQLAlchemyError, ValueError) as exc:
            raise DataError(f"{where}: cannot be read ({exc}).") from exc
        finally:
            engine.dispose()
    else:
        raise ConfigError(f"data.tables.{name}: give either `path:` or `url:` (found {spec!r}).")
    renames = spec.get("columns") or {}
    if renames:
        frame = frame.rename(columns=renames)
    return frame, where
