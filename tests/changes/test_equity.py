"""For all patients: subgroup effects, flags, small-cell suppression, and workbook 03 end to end."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from qi_helpers.changes import (
    RESULT_COLUMNS,
    analyse_microsystem,
    assign_microsystems,
    measure_series,
    patient_subgroups,
    subgroup_effects,
    suppress_small,
)
from qi_helpers.errors import ConfigError


def truth_membership(tables):
    micro = tables["truth_microsystems"]
    loc = micro.assign(location=micro["locations"].str.split(";")).explode("location")
    return {"locations": loc[["location", "microsystem_id"]].assign(share=1.0)}


@pytest.fixture(scope="module")
def demo_cases(demo_tables):
    cases = assign_microsystems(demo_tables["measure_events"], truth_membership(demo_tables))
    return cases, measure_series(cases, demo_tables["measures"], demo_tables["observations"])


def test_patients_fall_in_overlapping_condition_groups():
    patients = pd.DataFrame(
        {"patient_id": ["P1", "P2", "P3"], "age_band": ["0-17", None, "80+"],
         "sex": ["F", "M", "F"], "conditions": ["asthma", "", "diabetes;copd"]}
    )  # fmt: skip
    groups = patient_subgroups(patients)
    cond = groups[groups["dimension"] == "conditions"]
    assert set(cond.loc[cond["patient_id"] == "P3", "subgroup"]) == {"diabetes", "copd"}
    assert cond.loc[cond["patient_id"] == "P2", "subgroup"].tolist() == ["none"]
    age = groups[groups["dimension"] == "age_band"].set_index("patient_id")["subgroup"]
    assert age["P2"] == "unknown"


def test_small_counts_are_shown_as_less_than_the_threshold_and_their_results_hidden():
    table = pd.DataFrame(
        {"subgroup": ["a", "b", "c", "d"], "n_baseline": [0, 1, 10, 11], "n_after": [50, 50, 50, 9],
         "effect": [1.0, 2.0, 3.0, 4.0], "reason": ["x"] * 4}
    )  # fmt: skip
    shown = suppress_small(table, threshold=11)
    assert shown["n_baseline"].tolist() == ["0", "<11", "<11", "11"]
    assert shown["n_after"].tolist() == ["50", "50", "50", "<11"]
    assert shown["effect"].tolist()[0] == 1.0
    assert shown["effect"].iloc[1:].isna().all()
    assert shown["reason"].iloc[1:].str.contains("not shown").all()
    assert table["n_baseline"].tolist() == [0, 1, 10, 11]  # computed values kept
    with pytest.raises(ConfigError):
        suppress_small(table, threshold=0)


def test_subgroups_of_an_even_improvement_are_rarely_flagged(demo_tables, demo_cases):
    cases, series = demo_cases
    analysis = analyse_microsystem(
        cases, series, demo_tables["measures"], demo_tables["pdsa"], microsystem_id="NOR-PC1",
        patients=demo_tables["patients"],
    )  # fmt: skip
    sub = analysis.subgroups
    whole = sub[sub["dimension"] == "all"].iloc[0]
    assert whole["whole_verdict"] == "improved"
    verdict = analysis.verdicts.set_index("measure_id").loc["pc_hba1c_tested"]
    assert whole["effect"] == pytest.approx(verdict["effect"], abs=0.5)
    assert {"age_band", "sex", "conditions"} <= set(sub["dimension"])
    judged = sub[(sub["dimension"] != "all") & (sub["verdict"] != "too little data")]
    assert judged["flag"].mean() <= 0.2
    assert "pc_recommend" not in set(sub["measure_id"])  # no change tested for it
    assert not (analysis.verdicts["family"] == "balancing").any() or not set(
        sub["measure_id"]
    ) & set(analysis.verdicts.loc[analysis.verdicts["family"] == "balancing", "measure_id"])


def test_a_group_left_behind_is_flagged(demo_tables, demo_cases):
    cases, series = demo_cases
    patients = demo_tables["patients"]
    old = set(patients.loc[patients["age_band"].isin(["65-79", "80+"]), "patient_id"])
    rng = np.random.default_rng(0)
    cases = cases.copy()
    hit = (
        (cases["microsystem_id"] == "NOR-PC1")
        & (cases["measure_id"] == "pc_hba1c_tested")
        & (cases["period"] >= pd.Timestamp("2024-10-07"))
        & cases["patient_id"].isin(old)
    ).to_numpy()
    cases.loc[hit, "value"] = (rng.random(hit.sum()) < 0.65).astype(float)  # no improvement
    analysis = analyse_microsystem(
        cases, series, demo_tables["measures"], demo_tables["pdsa"], microsystem_id="NOR-PC1",
        patients=patients,
    )  # fmt: skip
    sub = analysis.subgroups.set_index(["dimension", "subgroup"])
    assert sub.loc[("age_band", "80+"), "flag"] or sub.loc[("age_band", "65-79"), "flag"]
    assert not sub.loc[("age_band", "40-64"), "flag"]
    flagged = analysis.verdicts.set_index("measure_id").loc["pc_hba1c_tested", "subgroups_flagged"]
    assert "age_band" in flagged


def test_without_patients_there_is_no_subgroup_analysis(demo_tables, demo_cases):
    cases, series = demo_cases
    analysis = analyse_microsystem(
        cases, series, demo_tables["measures"], demo_tables["pdsa"], microsystem_id="NOR-PC1"
    )
    assert analysis.subgroups.empty
    assert (analysis.verdicts["subgroups_flagged"] == "").all()
    again = subgroup_effects(analysis, cases.drop(columns=["patient_id"]), demo_tables["patients"])
    assert again.empty


# ---- workbook 03, executed -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("microsystem_id", ["RIV-W1", "ORG-CC1", "HIL-PC3"])
def test_workbook_03_runs_and_publishes_nothing_about_a_patient(
    demo_project, demo_tables, tmp_path, microsystem_id
):
    """RIV-W1: harm on a balancing measure; ORG-CC1: an abandoned change; HIL-PC3: low volume,
    no PDSA cycle. The membership is the planted truth, written where workbook 01 puts it."""
    import nbformat
    import papermill as pm

    root = tmp_path / "project"
    shutil.copytree(demo_project, root)
    data = root / "outputs" / "data"
    data.mkdir(parents=True)
    micro = demo_tables["truth_microsystems"]
    micro[["microsystem_id", "name", "kind", "site", "locations"]].to_parquet(
        data / "registry.parquet"
    )
    truth_membership(demo_tables)["locations"].to_parquet(data / "membership_locations.parquet")
    staff = demo_tables["truth_membership"]
    staff[staff["main"]][["staff_id", "microsystem_id", "share"]].to_parquet(
        data / "membership_staff.parquet"
    )
    pd.DataFrame(columns=["patient_id", "microsystem_id", "share"]).astype(str).to_parquet(
        data / "membership_patients.parquet"
    )
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(root / "workbooks" / "03_analyse_tests.ipynb"),
        str(out),
        parameters={"interactive": False, "microsystem_id": microsystem_id},
        kernel_name="python3",
        cwd=str(root / "workbooks"),
        progress_bar=False,
    )
    nb = nbformat.read(str(out), as_version=4)
    text = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error"
            data_out = output.get("data", {})
            text += [str(data_out.get(k, "")) for k in ("text/plain", "text/html", "text/markdown")]
            text.append(str(output.get("text", "")))
    joined = "\n".join(text)
    patient_ids = set(demo_tables["patients"]["patient_id"].astype(str))
    assert not set(re.findall(r"\bP\d{6}\b", joined)) & patient_ids
    result = pd.read_parquet(data / "results" / f"{microsystem_id}.parquet")
    assert list(result.columns) == RESULT_COLUMNS
    assert (result["microsystem_id"] == microsystem_id).all()
    assert "What next" in joined
