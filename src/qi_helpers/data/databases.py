"""Read one input table from a SQL database (any SQLAlchemy URL), by table name or by query.

A relative SQLite path starts at the project folder, like a file's ``path:``; the password of a
URL is hidden in every message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from qi_helpers.data.loaded import Loaded
from qi_helpers.errors import SourceError
from qi_helpers.errors import ConfigError

__all__ = ["read_sql"]


def _engine(url: str, root: Path, name: str) -> Any:
    """The engine for a source's URL (a relative SQLite path resolved against ``root``)."""
    # sqlalchemy is needed for database sources only and is slow to import: imported when used.
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            path = Path(os.path.expanduser(database))
            if not path.is_absolute():  # relative to the project folder, like `path:`
                parsed = parsed.set(database=str(root / path))
            if not (root / path).is_file():
                raise SourceError(
                    f"{root / path}: SQLite database file not found (table `{name}`). Check "
                    f"data.tables.{name}.url; a relative path starts at the project folder.",
                    kind="missing_file",
                )
        return sa.create_engine(parsed)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"data.tables.{name}.url: cannot use this database URL ({exc}). Expected a "
            "SQLAlchemy URL such as sqlite:///data/qi.db or "
            "postgresql+psycopg://user@host:5432/dbname, with its driver installed."
        ) from exc


def _read_named_table(conn: Any, spec: dict[str, Any], where: str, name: str) -> pd.DataFrame:
    """Read ``spec["table"]`` (``schema.table`` or with ``spec["schema"]``), checking it exists."""
    import sqlalchemy as sa  # (see _engine)

    table, schema = _table_and_schema(spec)
    found = sa.inspect(conn).get_table_names(schema=schema)
    views = sa.inspect(conn).get_view_names(schema=schema)
    if table not in found and table not in views:
        listing = ", ".join(sorted(found)) or "none"
        raise SourceError(
            f"{where}: table not found (table `{name}`); the database has the tables "
            f"{listing}. Check data.tables.{name}.table (names are case-sensitive).",
            kind="missing_table",
        )
    return pd.read_sql_table(table, conn, schema=schema)


def _table_and_schema(spec: dict[str, Any]) -> tuple[str, str | None]:
    table, schema = str(spec["table"]), spec.get("schema")
    if schema is None and "." in table:
        schema, table = table.split(".", 1)
    return table, schema


def read_sql(spec: dict[str, Any], root: Path, name: str) -> Loaded:
    """Read the table or query a ``url:`` source names.

    Parameters
    ----------
    spec : dict
        ``{"url": ..., "table": ...}`` (optional ``schema``, or ``schema.table``) or
        ``{"url": ..., "query": ...}``.
    root : Path
        The project folder; a relative SQLite path is resolved against it.
    name : str
        The contract table's name (for messages).

    Returns
    -------
    Loaded
        The table, its source given as the URL (password hidden) and the table or query.

    Raises
    ------
    ConfigError
        For an unusable URL or a source with neither ``table`` nor ``query``.
    SourceError
        For a missing SQLite file or table, an unreachable database or a failing query.
    """
    import sqlalchemy as sa  # (see _engine)

    engine = _engine(spec["url"], root, name)
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        if "query" in spec:
            where = f"{safe_url} (query for `{name}`)"
            with engine.connect() as conn:
                frame = pd.read_sql_query(sa.text(spec["query"]), conn)
        elif "table" in spec:
            table, schema = _table_and_schema(spec)
            where = f"{safe_url} table {f'{schema}.{table}' if schema else table}"
            with engine.connect() as conn:
                frame = _read_named_table(conn, spec, where, name)
        else:
            raise ConfigError(f"data.tables.{name}: a `url:` source needs `table:` or `query:`.")
    except sa.exc.OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise SourceError(
            f"{safe_url}: cannot read table `{name}` ({first}). Check that the database is "
            "running and reachable, and the user, password and database name in the URL.",
            kind="unreachable",
        ) from exc
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise SourceError(
            f"{where}: cannot be read ({first}). Check the table name or the query.",
            kind="unreadable",
        ) from exc
    finally:
        engine.dispose()
    return Loaded(frame, where)
