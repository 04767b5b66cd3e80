"""Tests of the demo health system (``qi_helpers.demo``): contracts, determinism, truth."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from qi_helpers import ConfigError
from qi_helpers.demo.health_system import (
    CONTRACT_TABLES,
    DEMO_SIZES,
    TEN_CHARACTERISTICS,
    TRUTH_TABLES,
    make_demo,
    write_demo,
)

START = pd.Timestamp("2024-01-01")
END = START + pd.Timedelta(weeks=104)

# Required columns (docs/architecture.md, data contracts), plus the optional ones the demo provides.
COLUMNS = {
    "activities": [
        "timestamp",
        "patient_id",
        "staff_id",
        "activity",
        "location",
        "encounter_id",
        "duration_min",
    ],
    "staff": ["staff_id", "role", "fte", "home_unit"],
    "patients": ["patient_id", "age_band", "sex", "conditions"],
    "measures": [
        "measure_id",
        "name",
        "family",
        "chart",
        "improvement",
        "aim",
        "unit",
        "multiply",
        "target",
        "period",
        "kind",
        "balances",
    ],
    "measure_events": [
        "measure_id",
        "timestamp",
        "patient_id",
        "staff_id",
        "location",
        "value",
        "denominator_weight",
    ],
    "observations": ["microsystem_id", "measure_id", "period", "value"],
    "pdsa": [
        "microsystem_id",
        "cycle_id",
        "change",
        "start",
        "end",
        "prediction",
        "result",
        "decision",
        "measure_ids",
    ],
    "readiness": ["staff_id", "characteristic", "score", "round"],
    "adoption": ["microsystem_id", "change", "adopted"],
    "truth_microsystems": [
        "microsystem_id",
        "name",
        "kind",
        "site",
        "locations",
        "planted_role",
        "unstable",
        "low_volume",
    ],
    "truth_membership": ["staff_id", "microsystem_id", "share"],
    "truth_effects": [
        "microsystem_id",
        "measure_id",
        "change",
        "start",
        "effect_type",
        "effect",
        "planted_as",
        "expected_verdict",
    ],
    "truth_baselines": ["microsystem_id", "measure_id", "baseline"],
}
ID_COLUMNS = [
    "staff_id",
    "patient_id",
    "microsystem_id",
    "measure_id",
    "cycle_id",
    "home_unit",
    "encounter_id",
    "location",
]


@pytest.fixture(scope="module")
def demo() -> dict[str, pd.DataFrame]:
    return make_demo("small", seed=0)


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, write_demo(demo, out)


def _ms_of_location(demo) -> dict[str, str]:
    tm = demo["truth_microsystems"]
    return dict(zip(tm["locations"], tm["microsystem_id"], strict=True))


def _weekly(demo, microsystem_id: str, measure_id: str) -> pd.Series:
    """Weekly mean value (falls: rate per 1,000 patient-days) of a microsystem's events."""
    if measure_id == "pc_ttna":  # delivered as weekly observations
        obs = demo["observations"]
        obs = obs[(obs["microsystem_id"] == microsystem_id) & (obs["measure_id"] == measure_id)]
        return pd.Series(obs["value"].to_numpy(), index=(obs["period"] - START).dt.days // 7)
    ev = demo["measure_events"]
    loc = demo["truth_microsystems"].set_index("microsystem_id").loc[microsystem_id, "locations"]
    e = ev[(ev["measure_id"] == measure_id) & (ev["location"] == loc)]
    week = ((e["timestamp"] - START).dt.days // 7).to_numpy()
    if measure_id == "ward_falls":
        g = e.groupby(week)
        return g["value"].sum() / g["denominator_weight"].sum() * 1000
    return e.groupby(week)["value"].mean()


def _effect(demo, microsystem_id: str, measure_id: str) -> tuple[float, float, int]:
    te = demo["truth_effects"]
    row = te[(te["microsystem_id"] == microsystem_id) & (te["measure_id"] == measure_id)].iloc[0]
    s = _weekly(demo, microsystem_id, measure_id)
    week = int(row["start_week"])
    before = s[(s.index < week) & (s.index >= week - 30)].mean()
    after = s[s.index >= week].mean()
    return before, after, week


def _pilot(demo, change: str) -> str:
    tm = demo["truth_microsystems"]
    return tm.loc[tm["pilot_of"] == change, "microsystem_id"].iloc[0]


# ------------------------------------------------------------------------------ API and contracts


def test_bad_size_raises_config_error_naming_sizes():
    with pytest.raises(ConfigError, match="small.*medium.*large"):
        make_demo("huge")


def test_sizes_and_characteristics_are_described():
    assert set(DEMO_SIZES) == {"small", "medium", "large"}
    assert DEMO_SIZES["large"]["microsystems"] >= 500
    assert len(TEN_CHARACTERISTICS) == 10
    assert {"leadership", "interdependence", "information_and_information_technology"} <= set(
        TEN_CHARACTERISTICS
    )


def test_every_table_has_its_columns_and_string_ids(demo):
    assert set(demo) == set(CONTRACT_TABLES) | set(TRUTH_TABLES)
    for name, cols in COLUMNS.items():
        df = demo[name]
        assert len(df) > 0, name
        assert list(df.columns[: len(cols)]) == cols or set(cols) <= set(df.columns), name
        for col in set(ID_COLUMNS) & set(df.columns):
            assert pd.api.types.is_string_dtype(df[col]), (name, col)


def test_organisation_has_four_kinds_on_several_sites(demo):
    tm = demo["truth_microsystems"]
    assert set(tm["kind"]) == {"primary_care", "inpatient_ward", "laboratory", "call_centre"}
    assert tm["site"].nunique() >= 4  # three sites and the organisation-wide call centres
    assert len(tm) == DEMO_SIZES["small"]["microsystems"]
    assert tm["microsystem_id"].str.fullmatch(r"[A-Z]{3}-(PC\d|W\d|LAB|CC\d)").all()
    assert tm["locations"].is_unique


def test_activities_cover_104_weeks_sorted_and_in_working_hours(demo):
    act = demo["activities"]
    assert act["timestamp"].min() >= START and act["timestamp"].max() < END
    weeks = (act["timestamp"] - START).dt.days // 7
    assert weeks.nunique() == 104
    key = act[["timestamp", "staff_id"]]
    assert key.equals(key.sort_values(["timestamp", "staff_id"], kind="stable"))
    kind = (
        act["location"]
        .map(_ms_of_location(demo))
        .map(demo["truth_microsystems"].set_index("microsystem_id")["kind"])
    )
    hour, dow = act["timestamp"].dt.hour, act["timestamp"].dt.day_of_week
    for k, (opens, closes, days) in {
        "primary_care": (8, 18, 5),
        "call_centre": (8, 18, 5),
        "laboratory": (8, 21, 6),
    }.items():
        assert hour[kind == k].between(opens, closes).all(), k
        assert (dow[kind == k] < days).all(), k
    assert hour[kind == "inpatient_ward"].nunique() == 24  # wards work round the clock
    per_ms_week = act.groupby([act["location"], weeks]).size()
    assert 60 < per_ms_week.median() < 200


def test_ids_are_consistent_across_tables(demo):
    staff = set(demo["staff"]["staff_id"])
    patients = set(demo["patients"]["patient_id"])
    ms = set(demo["truth_microsystems"]["microsystem_id"])
    assert set(demo["activities"]["staff_id"]) <= staff
    assert set(demo["activities"]["patient_id"]) <= patients
    ev = demo["measure_events"]
    assert set(ev["staff_id"].dropna()) <= staff
    assert set(ev["patient_id"].dropna()) <= patients
    assert set(ev["location"]) <= set(demo["truth_microsystems"]["locations"])
    assert ev["location"].notna().all()
    assert set(ev["measure_id"]) | {"pc_ttna"} == set(demo["measures"]["measure_id"])
    assert set(demo["staff"]["home_unit"]) <= ms
    for name in ("pdsa", "adoption", "observations", "truth_effects", "truth_baselines"):
        assert set(demo[name]["microsystem_id"]) <= ms, name
    assert set(demo["readiness"]["staff_id"]) <= staff
    assert set(demo["readiness"]["characteristic"]) == set(TEN_CHARACTERISTICS)


def test_measure_catalogue_has_the_balancing_measure(demo):
    m = demo["measures"].set_index("measure_id")
    assert m.loc["ward_readmit30", "family"] == "balancing"
    assert m.loc["ward_readmit30", "balances"] == "ward_los"
    assert m.loc["ward_falls", "chart"] == "u" and m.loc["ward_falls", "multiply"] == 1000
    assert set(m["family"]) == {"outcome", "process", "balancing"}
    ev = demo["measure_events"]
    p_measures = m.index[m["chart"] == "p"]
    assert ev.loc[ev["measure_id"].isin(p_measures), "value"].isin([0, 1]).all()
    falls = ev[ev["measure_id"] == "ward_falls"]
    assert falls["denominator_weight"].gt(0).mean() > 0.99
    assert ev.loc[ev["measure_id"] != "ward_falls", "denominator_weight"].isna().all()


def test_observations_give_ttna_for_every_pc_team_every_week(demo):
    obs = demo["observations"]
    tm = demo["truth_microsystems"]
    pc = set(tm.loc[tm["kind"] == "primary_care", "microsystem_id"])
    assert set(obs["microsystem_id"]) == pc
    assert (obs.groupby("microsystem_id").size() == 104).all()
    assert (obs["period"].dt.day_of_week == 0).all()


# ------------------------------------------------------------------------------------ writing


def test_write_demo_is_byte_identical_for_same_seed(written, tmp_path):
    out, paths = written
    again = write_demo(make_demo("small", seed=0), tmp_path / "again")
    assert [p.relative_to(out) for p in paths] == [p.relative_to(tmp_path / "again") for p in again]
    for a, b in zip(paths, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_written_files_have_iso_dates_no_index_and_no_temp_files(written):
    out, paths = written
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {f"{t}.csv" for t in CONTRACT_TABLES} <= names
    assert {"truth/microsystems.csv", "truth/effects.csv", "README.md"} <= names
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    act = pd.read_csv(out / "activities.csv", nrows=5, dtype=str)
    assert list(act.columns) == COLUMNS["activities"]
    assert act["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    pdsa = pd.read_csv(out / "pdsa.csv", dtype=str)
    assert pdsa["start"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    readme = (out / "README.md").read_text()
    assert "Planted truth" in readme and "Criteria-led discharge" in readme


def test_write_demo_parquet(demo, tmp_path):
    paths = write_demo(demo, tmp_path, fmt="parquet")
    assert (tmp_path / "truth" / "effects.parquet") in paths
    back = pd.read_parquet(tmp_path / "observations.parquet")
    assert len(back) == len(demo["observations"])
    with pytest.raises(ConfigError):
        write_demo(demo, tmp_path, fmt="xlsx")


# ------------------------------------------------------------------------------ planted truth


def test_floaters_and_wrong_home_units_are_planted_and_recorded(demo):
    mem = demo["truth_membership"]
    staff = demo["staff"]
    floaters = mem.loc[mem["floater"], "staff_id"].unique()
    assert 0.05 <= len(floaters) / len(staff) <= 0.08
    rows = mem[mem["floater"]].groupby("staff_id")
    assert (rows.size() == 2).all()
    assert np.allclose(rows["share"].sum(), 1, atol=0.002)
    main_share = mem.loc[mem["floater"] & mem["main"], "share"]
    assert main_share.between(0.55, 0.75).all()
    # Floaters really do work in their second team's location.
    loc = demo["truth_microsystems"].set_index("microsystem_id")["locations"]
    second = mem[mem["floater"] & ~mem["main"]].iloc[0]
    act = demo["activities"]
    assert (
        (act["staff_id"] == second["staff_id"]) & (act["location"] == loc[second["microsystem_id"]])
    ).any()
    # Declared home unit: wrong for ~10%, as recorded in the truth.
    true_main = mem[mem["main"]].set_index("staff_id")["microsystem_id"]
    wrong = staff.set_index("staff_id")["home_unit"] != true_main.reindex(staff["staff_id"])
    assert 0.04 <= wrong.mean() <= 0.16
    recorded = mem[mem["main"]].set_index("staff_id")["home_unit_wrong"]
    assert (wrong == recorded.reindex(wrong.index)).all()


def test_louvain_on_shared_patients_recovers_the_planted_teams(demo):
    """Workbook 01's method (staff projection, ties >= 6 shared patients, Louvain) finds teams."""
    act = demo["activities"]
    s_codes, s_ids = pd.factorize(act["staff_id"])
    p_codes, _ = pd.factorize(act["patient_id"])
    b = sparse.csr_matrix((np.ones(len(act)), (s_codes, p_codes)))
    b.data[:] = 1
    w = (b @ b.T).tocoo()
    keep = (w.row < w.col) & (w.data >= 6)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(s_ids)))
    graph.add_weighted_edges_from(zip(w.row[keep], w.col[keep], w.data[keep], strict=True))
    communities = nx.community.louvain_communities(graph, weight="weight", seed=0)
    mem = demo["truth_membership"]
    truth = mem[mem["main"]].set_index("staff_id")["microsystem_id"].reindex(s_ids).to_numpy()
    found = np.empty(len(s_ids), dtype=int)
    for k, c in enumerate(communities):
        found[list(c)] = k
    table = pd.crosstab(found, truth)
    purity = table.max(axis=1).sum() / len(s_ids)
    assert purity >= 0.95
    assert abs(len(communities) - len(demo["truth_microsystems"])) <= 1


def test_pilot_effects_are_in_the_data(demo):
    before, after, _ = _effect(
        demo, _pilot(demo, "Diabetes recall register with text reminders"), "pc_hba1c_tested"
    )
    assert after - before == pytest.approx(0.15, abs=0.06)
    before, after, _ = _effect(demo, _pilot(demo, "Carve-out scheduling"), "pc_ttna")
    assert after / before - 1 == pytest.approx(-0.40, abs=0.08)
    before, after, _ = _effect(demo, _pilot(demo, "Lean specimen reception"), "lab_tat")
    assert after / before - 1 == pytest.approx(-0.25, abs=0.06)
    before, after, _ = _effect(demo, _pilot(demo, "Intentional rounding"), "ward_falls")
    assert after / before - 1 == pytest.approx(-0.40, abs=0.15)


def test_balancing_measure_worsens_and_failed_change_does_nothing(demo):
    ward = _pilot(demo, "Criteria-led discharge")
    before, after, _ = _effect(demo, ward, "ward_los")
    assert after / before - 1 == pytest.approx(-0.15, abs=0.06)
    before, after, _ = _effect(demo, ward, "ward_readmit30")
    assert after / before - 1 > 0.25
    cc = _pilot(demo, "Call-back scripting")
    before, after, _ = _effect(demo, cc, "cc_abandon")
    assert abs(after / before - 1) < 0.15
    te = demo["truth_effects"].set_index(["microsystem_id", "measure_id"])
    assert te.loc[(ward, "ward_readmit30"), "expected_verdict"] == "worsened"
    assert te.loc[(cc, "cc_abandon"), "planted_as"] == "failed"


def test_microsystems_without_change_are_stable(demo):
    tm = demo["truth_microsystems"]
    quiet = tm[(tm["planted_role"] == "none") & ~tm["unstable"] & ~tm["low_volume"]]
    assert len(quiet) >= 5
    for r in quiet.itertuples():
        measure = {
            "primary_care": "pc_hba1c_tested",
            "inpatient_ward": "ward_los",
            "laboratory": "lab_tat",
            "call_centre": "cc_answer_sec",
        }[r.kind]
        s = _weekly(demo, r.microsystem_id, measure)
        first, second = s[s.index < 52].mean(), s[s.index >= 52].mean()
        assert abs(second / first - 1) < 0.08, (r.microsystem_id, measure)


def test_unstable_and_low_volume_teams_for_pilot_selection(demo):
    tm = demo["truth_microsystems"].set_index("microsystem_id")
    unstable = tm.index[tm["unstable"]][0]
    s = _weekly(demo, unstable, "pc_hba1c_tested")
    assert s[s.index < 12].mean() - s[(s.index >= 12) & (s.index < 26)].mean() > 0.08
    low = tm.index[tm["low_volume"]][0]
    ev = demo["measure_events"]
    counts = ev[ev["measure_id"] == "pc_hba1c_tested"].groupby("location").size() / 104
    assert counts[tm.loc[low, "locations"]] < 5 < counts.drop(tm.loc[low, "locations"]).min()


def test_pdsa_log_matches_the_planted_starts(demo):
    pdsa, te = demo["pdsa"], demo["truth_effects"]
    assert pdsa["cycle_id"].is_unique
    assert set(pdsa["decision"]) <= {"adopt", "adapt", "abandon", "ongoing"}
    pilots = te[te["planted_as"].isin(["pilot", "failed"])]
    for r in pilots.itertuples():
        cycles = pdsa[(pdsa["microsystem_id"] == r.microsystem_id) & (pdsa["change"] == r.change)]
        assert 2 <= len(cycles) <= 4
        last = cycles.sort_values("start").iloc[-1]
        assert last["start"] == r.start
        assert last["decision"] == ("abandon" if r.planted_as == "failed" else "adopt")
        assert r.measure_id in last["measure_ids"].split(";")
    assert (pdsa["prediction"].str.len() > 20).all() and (pdsa["result"].str.len() > 10).all()


def test_adopters_come_in_waves_with_pdsa_rows(demo):
    adoption, pdsa, te = demo["adoption"], demo["pdsa"], demo["truth_effects"]
    weeks = set(((adoption["adopted"] - START).dt.days // 7).tolist())
    assert weeks == {70, 82, 94}
    merged = adoption.merge(
        pdsa,
        left_on=["microsystem_id", "change", "adopted"],
        right_on=["microsystem_id", "change", "start"],
    )
    assert len(merged) == len(adoption) and (merged["decision"] == "adopt").all()
    adopters = te[te["planted_as"] == "adopter"]
    assert len(adopters) == len(adoption)
    for r in adopters.itertuples():
        before, after, _ = _effect(demo, r.microsystem_id, r.measure_id)
        change = after - before if r.effect_type == "absolute" else after / before - 1
        assert change == pytest.approx(r.effect, abs=0.15), r.microsystem_id


def test_readiness_is_high_in_pilots_and_low_in_one_team(demo):
    rd = demo["readiness"]
    mem = demo["truth_membership"]
    tm = demo["truth_microsystems"].set_index("microsystem_id")
    team = mem[mem["main"]].set_index("staff_id")["microsystem_id"]
    mean = rd.groupby(rd["staff_id"].map(team))["score"].mean()
    pilots = tm.index[tm["planted_role"] == "pilot"]
    low = tm.index[tm["low_readiness"]][0]
    assert mean[pilots].min() > mean.drop(pilots).median()
    assert mean[low] == mean.min()
    assert rd["score"].isna().any()  # can't rate
    assert rd["staff_id"].nunique() < len(demo["staff"])  # non-response
    assert rd.groupby(["staff_id", "round"]).size().eq(10).all()


def test_patients_support_equity_analysis(demo):
    pt = demo["patients"]
    assert set(pt["sex"]) == {"F", "M"}
    assert set(pt["age_band"]) == {"0-17", "18-39", "40-64", "65-79", "80+"}
    conds = pt["conditions"].fillna("").str.split(";").explode()
    assert {"diabetes", "hypertension", "copd", "heart_failure", "asthma"} <= set(conds)
    ev = demo["measure_events"]
    hba1c = ev[ev["measure_id"] == "pc_hba1c_tested"]
    diabetic = pt.set_index("patient_id")["conditions"].fillna("").str.contains("diabetes")
    assert diabetic[hba1c["patient_id"]].all()
