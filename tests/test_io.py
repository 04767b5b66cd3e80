"""Files handed between steps are written whole or not at all (qi_helpers.io)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from qi_helpers.io import atomic_write, sha256_file, write_json, write_parquet, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = write_text(tmp_path / "report.txt", "good")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_json_is_written_the_same_way_everywhere(tmp_path):
    path = write_json(tmp_path / "a" / "m.json", {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert path.read_bytes() == b'{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}\n'


def test_parquet_is_byte_reproducible_and_keeps_no_index(tmp_path):
    frame = pd.DataFrame({"x": [3, 1, 2]}, index=[10, 11, 12])
    one = write_parquet(tmp_path / "one.parquet", frame).read_bytes()
    two = write_parquet(tmp_path / "two.parquet", frame).read_bytes()
    assert one == two
    assert pd.read_parquet(tmp_path / "one.parquet").index.tolist() == [0, 1, 2]


def test_the_content_hash_is_sha256(tmp_path):
    path = write_text(tmp_path / "x.txt", "abc")
    assert sha256_file(path) == hashlib.sha256(b"abc").hexdigest()


def test_parquet_bytes_ignore_where_a_frame_came_from():
    """pandas keeps ``attrs`` (our readers put the source's path there) in Parquet metadata;
    the same data must give the same bytes wherever it was read from."""
    import pandas as pd

    from qi_helpers.io import parquet_bytes

    a = pd.DataFrame({"x": [1, 2]})
    a.attrs["source"] = "/one/place/table.csv"
    b = pd.DataFrame({"x": [1, 2]})
    b.attrs["source"] = "/another/place/table.csv"
    assert parquet_bytes(a) == parquet_bytes(b)
    assert a.attrs["source"] == "/one/place/table.csv"  # the caller's frame is left as it was
