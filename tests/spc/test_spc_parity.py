"""Parity of :func:`qi_helpers.spc.qic.qic` with the R package qicharts2 0.8.1.

Every case of the reference oracle (``../shared/reference/qicharts2`` from the project root, see
its README, ``ref/SPEC.md`` and ``ref/MANIFEST.md``) is replayed from its JSON ``spec`` and
compared with qicharts2's ``qic(..., return.data = TRUE)`` frame and ``summary()``. The oracle is
read in place (its bundled/derived/internal data sets may not be copied); when it is absent those
cases are skipped. The synthetic cases and their reference results are copied into
``tests/fixtures/qicharts2_synthetic`` and always run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import QIError
from qi_helpers.spc.qic import qic, summary

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "qicharts2"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qicharts2_synthetic"

RTOL = 1e-9
FLOAT_COLS = ["cl", "lcl", "ucl", "lcl_95", "ucl_95", "y", "n"]
EXACT_COLS = [
    "runs_signal", "sigma_signal", "longest_run", "longest_run_max", "n_crossings",
    "n_crossings_min", "n_obs", "n_useful", "part", "baseline", "include",
]  # fmt: skip
SUMMARY_FLOAT = ["aLCL", "aLCL_95", "CL", "aUCL_95", "aUCL"]
SUMMARY_EXACT = [
    "part", "n_obs", "n_useful", "longest_run", "longest_run_max", "n_crossings",
    "n_crossings_min", "runs_signal", "sigma_signal",
]  # fmt: skip
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EXPR = re.compile(r"^\s*(\w+)\s*([*>])\s*(\w+)\s*$")


def _cases(root: Path) -> list[tuple[Path, dict]]:
    if not (root / "ref" / "cases.csv").exists():
        return []
    table = pd.read_csv(root / "ref" / "cases.csv", keep_default_na=False)
    return [(root, row) for row in table.to_dict("records")]


def _params() -> list:
    out = []
    shared = _cases(SHARED)
    if shared:
        out += [pytest.param(r, c, id=f"shared-{c['id']}") for r, c in shared]
    else:
        out.append(
            pytest.param(
                None,
                None,
                id="shared-absent",
                marks=pytest.mark.skip(reason=f"qicharts2 reference oracle not found at {SHARED}"),
            )
        )
    out += [pytest.param(r, c, id=f"fixture-{c['id']}") for r, c in _cases(FIXTURES)]
    return out


def read_input(path: Path) -> pd.DataFrame:
    """As the oracle's ``read_input()``: NA strings "NA" and "", YYYY-MM-DD columns as dates."""
    d = pd.read_csv(path, na_values=["NA", ""], keep_default_na=False)
    for col in d.columns:
        s = d[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            vals = s.dropna().astype(str)
            if len(vals) and vals.str.match(_DATE).all():
                d[col] = pd.to_datetime(s)
            elif len(vals) and vals.isin(["TRUE", "FALSE"]).all():
                d[col] = s.map({"TRUE": 1.0, "FALSE": 0.0})
    return d


def _operand(d: pd.DataFrame, tok: str) -> pd.Series:
    if tok in d.columns:
        return d[tok].astype(float)
    return pd.Series(float(tok), index=d.index)


def _column_or_expr(d: pd.DataFrame, expr: str | None) -> str | None:
    """R expressions (``value * n``, ``los > 0``) become a new column; NA operands give NA."""
    if expr is None or expr in d.columns:
        return expr
    m = _EXPR.match(expr)
    if not m:
        raise AssertionError(f"cannot replay expression {expr!r}")
    a, op, b = _operand(d, m[1]), m[2], _operand(d, m[3])
    val = a * b if op == "*" else (a > b).astype(float)
    d[expr] = val.where(a.notna() & b.notna())
    return expr


def replay(root: Path, case: dict) -> pd.DataFrame:
    spec = json.loads(case["spec"])
    d = read_input(root / case["input"])
    y = _column_or_expr(d, spec["y"])
    n = _column_or_expr(d, spec["n"])
    part = spec["part_col"] if spec["part_col"] is not None else spec["part"]
    return qic(
        d,
        spec["x"],
        y,
        n,
        chart=spec["chart"],
        facets=spec["facets"],
        part=part,
        freeze=spec["freeze"],
        exclude=spec["exclude"],
        multiply=spec["multiply"],
        y_neg=spec["y_neg"],
        target=spec["target"],
        cl=spec["cl"],
        agg_fun=spec["agg_fun"],
        method=spec["method"],
        notes=spec["notes"],
        x_period=spec["x_period"],
        screened_mr=spec["screenedmr"],
    )


def _read_ref(path: Path) -> pd.DataFrame:
    ref = pd.read_csv(path, na_values=["NA"], keep_default_na=False)
    ref.columns = [c.replace(".", "_") for c in ref.columns]
    return ref


def _exact(a: pd.Series, b: pd.Series) -> list[int]:
    """Row positions where two columns differ, NA equal to NA."""
    av = pd.Series(a).astype(object).where(pd.Series(a).notna(), None).to_numpy()
    bv = pd.Series(b).astype(object).where(pd.Series(b).notna(), None).to_numpy()
    bad = []
    for i, (u, v) in enumerate(zip(av, bv, strict=True)):
        if (u is None) != (v is None) or (u is not None and u != v):
            bad.append(i)
    return bad


def _close(got: np.ndarray, want: np.ndarray) -> list[int]:
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    same_nan = np.isnan(got) == np.isnan(want)
    with np.errstate(invalid="ignore"):
        tol = RTOL * np.maximum(np.abs(got), np.abs(want))
        near = (got == want) | (np.abs(got - want) <= tol)
    ok = same_nan & (np.isnan(want) | near)
    return np.flatnonzero(~ok).tolist()


def _x_text(x: pd.Series) -> list[str]:
    if pd.api.types.is_datetime64_any_dtype(x):
        return x.dt.strftime("%Y-%m-%d").tolist()
    if pd.api.types.is_numeric_dtype(x):
        return [f"{float(v):g}" for v in x]
    return x.astype(str).tolist()


def compare(got: pd.DataFrame, ref: pd.DataFrame, floats: list[str], exact: list[str]) -> list[str]:
    problems = []
    if len(got) != len(ref):
        return [f"{len(got)} rows, reference has {len(ref)}"]
    for col in floats:
        bad = _close(got[col].to_numpy(dtype=float), ref[col].to_numpy(dtype=float))
        if bad:
            i = bad[0]
            problems.append(
                f"{col}: {len(bad)} rows differ, first row {i + 1}: "
                f"got {got[col].iloc[i]!r}, want {ref[col].iloc[i]!r}"
            )
    for col in exact:
        g, r = got[col], ref[col]
        if r.dtype == object:
            r = r.map({"TRUE": True, "FALSE": False, True: True, False: False})
        bad = _exact(g.astype(object), r.astype(object))
        if bad:
            i = bad[0]
            problems.append(
                f"{col}: {len(bad)} rows differ, first row {i + 1}: "
                f"got {g.iloc[i]!r}, want {r.iloc[i]!r}"
            )
    return problems


@pytest.mark.parametrize(("root", "case"), _params())
def test_case_matches_qicharts2(root: Path, case: dict) -> None:
    if case["error"]:
        with pytest.raises(QIError, match=re.escape(case["error"])):
            replay(root, case)
        return
    got = replay(root, case)
    ref = _read_ref(root / "ref" / case["ref_file"])
    problems = compare(got, ref, FLOAT_COLS, EXACT_COLS)
    if len(got) == len(ref):
        if _x_text(got["x"]) != _x_text(ref["x"]):
            problems.append("x values or order differ")
        for col in ("facet1", "facet2"):
            if got[col].astype(str).tolist() != ref[col].astype(str).tolist():
                problems.append(f"{col} values or order differ")
    assert not problems, "\n".join(problems)

    want = _read_ref(root / "ref" / case["summary_file"])
    got_s = summary(got)
    got_s["runs_signal"] = got_s["runs_signal"].astype(np.int64)
    problems = compare(got_s, want, SUMMARY_FLOAT, SUMMARY_EXACT)
    assert not problems, "summary: " + "\n".join(problems)


def test_fixture_cases_present() -> None:
    """The copied synthetic cases exist, so parity is checked even without the shared oracle."""
    cases = _cases(FIXTURES)
    assert len(cases) >= 30
    for root, case in cases:
        assert (root / case["input"]).exists()
        assert case["input"].startswith("data/synthetic/")
