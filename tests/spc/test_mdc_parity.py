"""Parity of the Making Data Count rules (``signals(rules="mdc")``) with NHSRplotthedots 0.2.2.

Every series of the reference set ``../shared/reference/nhsrplotthedots`` (from the project root;
see its README: columns, option mapping, conventions) is charted with
:func:`qi_helpers.spc.qic.qic` as an I chart (the README's mapping: ``rebase`` -> ``part``,
``fix_after_n_points`` -> ``freeze``, ``screen_outliers`` -> ``screened_mr``) and judged with
:func:`qi_helpers.spc.rules.signals`; the centre line, mR-bar, the point type of every point and
the variation and assurance icons must match ``ptd_spc()``'s. The reference set is read in place
and never copied into the project; without it the cases are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import signals

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "nhsrplotthedots"
_READ = {"keep_default_na": False, "na_values": ["NA"]}
_DIRECTION = {"increase": "up", "decrease": "down", "neutral": None}
_NPT = 2.66  # NHSRplotthedots' limits: mean -+ 2.66 mR-bar


def _cases() -> list:
    if not (SHARED / "cases.csv").exists():
        return [
            pytest.param(
                None,
                id="shared-absent",
                marks=pytest.mark.skip(reason=f"NHSRplotthedots references not found at {SHARED}"),
            )
        ]
    table = pd.read_csv(SHARED / "cases.csv", **_READ)
    return [pytest.param(row, id=row["case_id"]) for row in table.to_dict("records")]


def _chart(case: dict) -> pd.DataFrame:
    """The qic() chart of a series, as the README maps ptd_spc()'s options."""
    d = pd.read_csv(SHARED / case["input"], **_READ)
    d["date"] = pd.to_datetime(d["date"])
    screened = bool(case["screen_outliers"])
    fix = None if pd.isna(case["fix_after_n_points"]) else int(case["fix_after_n_points"])
    starts = [] if pd.isna(case["rebase"]) else [pd.Timestamp(s) for s in case["rebase"].split(";")]
    target = None if pd.isna(case["target"]) else float(case["target"])
    if not starts:
        return qic(d, "date", "y", chart="i", freeze=fix, target=target, screened_mr=screened)
    phase = np.searchsorted(np.array(starts, dtype="datetime64[ns]"), d["date"].to_numpy(), "right")
    if fix is None:  # a part ends before each rebase date
        ends = [int((phase <= k).sum()) for k in range(len(starts))]
        return qic(d, "date", "y", chart="i", part=ends, target=target, screened_mr=screened)
    # the first `fix` points of each phase (qicharts2 ignores freeze with part): chart each phase
    # with its own frozen limits and number the phases as parts
    pieces = []
    for k in range(len(starts) + 1):
        one = qic(d[phase == k], "date", "y", chart="i", freeze=fix, target=target,
                  screened_mr=screened)  # fmt: skip
        one["part"] = k + 1
        pieces.append(one)
    out = pd.concat(pieces, ignore_index=True)
    out.attrs = pieces[0].attrs
    return out


def _ptd_type(points: pd.DataFrame) -> pd.Series:
    """Our point types in NHSRplotthedots' names (neutral points carry their side)."""
    neutral = points["point_type"] == "special_cause_neutral"
    return points["point_type"].where(~neutral, "special_cause_neutral_" + points["direction"])


@pytest.mark.parametrize("case", _cases())
def test_mdc_matches_nhsrplotthedots(case: dict) -> None:
    ref = pd.read_csv(SHARED / case["ref_file"], **_READ)
    res = _chart(case)
    sig = signals(res, rules="mdc", improvement=_DIRECTION[case["improvement"]])
    assert len(res) == len(ref)
    np.testing.assert_allclose(res["cl"], ref["mean_col"], rtol=0, atol=0)  # the same double
    amr = (res["ucl"] - res["cl"]).to_numpy() * 1.128 / 3
    np.testing.assert_allclose(amr, (ref["upl"] - ref["mean_col"]) / _NPT, rtol=1e-9)
    got = _ptd_type(sig.points).to_numpy()
    want = ref["point_type"].to_numpy()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{case['case_id']}: points {list(ref['point'].iloc[bad])} are "
        f"{list(got[bad])}, NHSRplotthedots {list(want[bad])} ({case['note']})"
    )
    last = sig.series.iloc[0]  # the icon of the point with the latest date
    assert last["variation"] == case["variation_icon"]
    want_assurance = None if pd.isna(case["assurance_type"]) else case["assurance_type"]
    if case["improvement"] == "neutral":
        want_assurance = None
    assert (last["assurance"] or None) == want_assurance
