"""Writing the tables that workbooks hand to each other, atomically and byte-reproducibly."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table to Parquet through a temporary file and a rename.

    The file never exists half-written: a reader sees the old file or the new one. No pandas
    index and no creation metadata are stored, so the same frame gives the same bytes.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
