"""No small count can be worked out by subtraction from what is published.

Every published path of patient numbers is attacked the way a reader would: the total minus the
groups shown, a mean of the whole times its count minus the groups shown, a share times the total
it is a share of, patients seen minus the panel. What is left must be 0 or at least the threshold
(the CMS cell-size suppression policy: no count from 1 to 10, nor any value from which one can be
derived). The paths: workbook 03's subgroup table (``equity.suppress_small``) and forest plot
(``figures.plot_subgroups``); workbook 01's registry (``registry.published_registry``), 5 Ps
summary (``profiles.published_summary``) and cards (``profile_cards.card_html``). The rule itself,
``privacy.small_group_mask`` (and ``small_cell_mask`` under it), is checked on random tables.
"""

from __future__ import annotations

import dataclasses
import html
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qi_helpers.changes.equity import SUBGROUP_COLUMNS, suppress_small
from qi_helpers.identify.cards import card_html
from qi_helpers.identify.published import published_registry, published_summary
from qi_helpers.privacy.small_cells import small_cell_mask

THRESHOLD = 11
SMALL = range(1, THRESHOLD)  # every count the policy hides


# ---- the attacker -----------------------------------------------------------------------------


def number(value: object) -> float | None:
    """A published value as a number, or None when it is hidden ("<11", "*", empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.replace(",", "").strip()
        return float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else None
    return float(value)


def assert_not_isolated(total: float | None, shown: list[float | None], what: str) -> None:
    """The total minus the parts shown must be 0 or at least the threshold.

    Whatever is left is the sum of the parts not shown (hidden, or never published): a single
    small one, or several summing to less than the threshold, would be given away.
    """
    if total is None:
        return
    left = total - sum(v for v in shown if v is not None)
    assert not 0 < left < THRESHOLD, f"{what}: {total:g} minus the groups shown leaves {left:g}"


def check_subgroup_table(published: pd.DataFrame) -> None:
    """Counts and means of a published subgroup table (``suppress_small``) give nothing away.

    For each measure, change, period and dimension: the whole's cases minus the cases shown is 0
    or at least the threshold; no mean is shown for a group with fewer cases than the threshold
    (or with its count hidden); and the whole's mean times its cases minus the means shown times
    their cases covers 0 or at least the threshold cases.
    """
    keys = ["microsystem_id", "measure_id", "change"]
    for key, table in published.groupby(keys):
        whole = table[table["dimension"] == "all"].iloc[0]
        for count, mean in (("n_baseline", "baseline_mean"), ("n_after", "after_mean")):
            total = number(whole[count])
            for dimension, part in table[table["dimension"] != "all"].groupby("dimension"):
                what = f"{key} {dimension} {count}"
                assert_not_isolated(total, [number(v) for v in part[count]], what)
                with_mean = part[part[mean].notna()]
                for row in with_mean.itertuples():
                    n = number(getattr(row, count))
                    assert n is not None and n >= THRESHOLD, f"{what}: mean of {row.subgroup}"
                if pd.notna(whole[mean]) and total is not None:
                    covered = [number(v) for v in with_mean[count]]
                    assert_not_isolated(total, covered, f"{what} (mean of the whole)")
        if pd.notna(whole["baseline_mean"]):
            assert number(whole["n_baseline"]) >= THRESHOLD


# ---- workbook 03: the subgroup table and its chart --------------------------------------------


def subgroup_table(small: int) -> pd.DataFrame:
    """One measure and change split by age band, sex and condition, as ``subgroup_effects``
    gives it: the sex ``unknown`` (one patient), the age band ``0-17`` and the condition
    ``asthma`` each hold ``small`` cases before the change; every dimension adds up to the whole.
    """
    groups = {  # dimension, subgroup: cases before, after; mean before, after
        ("age_band", "0-17"): (small, 12, 70.0, 80.0),
        ("age_band", "18-64"): (50, 53, 60.0, 75.0),
        ("age_band", "65+"): (25, 30, 55.0, 72.0),
        ("sex", "F"): (40, 50, 62.0, 78.0),
        ("sex", "M"): (35, 45, 58.0, 71.0),
        ("sex", "unknown"): (small, 0, 90.0, np.nan),
        ("conditions", "asthma"): (small, 0, 85.0, np.nan),
        ("conditions", "diabetes"): (45, 60, 57.0, 74.0),
        ("conditions", "none"): (30, 35, 61.0, 76.0),
    }
    sex = [v for (d, _), v in groups.items() if d == "sex"]
    n0, n1 = sum(v[0] for v in sex), sum(v[1] for v in sex)
    m0 = sum(v[0] * v[2] for v in sex) / n0  # the whole's mean: its groups' weighted together
    m1 = sum(v[1] * v[3] for v in sex if v[1]) / n1
    rows = [("all", "all", n0, n1, m0, m1)] + [(*k, *v) for k, v in groups.items()]
    return pd.DataFrame(
        [
            {
                "microsystem_id": "MS-1",
                "measure_id": "m1",
                "name": "Measure one",
                "change": "A change",
                "whole_verdict": "improved",
                "dimension": d,
                "subgroup": s,
                "n_baseline": b,
                "n_after": a,
                "baseline_mean": mb,
                "after_mean": ma,
                "effect": ma - mb if a else np.nan,
                "effect_low": ma - mb - 5 if a else np.nan,
                "effect_high": ma - mb + 5 if a else np.nan,
                "effect_kind": "difference in means",
                "verdict": "improved" if b >= 20 and a >= 20 else "too little data",
                "flag": False,
                "reason": "effect",
            }
            for d, s, b, a, mb, ma in rows
        ],
        columns=SUBGROUP_COLUMNS,
    )


@pytest.mark.parametrize("small", SMALL)
def test_a_small_subgroup_cannot_be_worked_out_from_the_whole(small):
    table = subgroup_table(small)
    shown = suppress_small(table, threshold=THRESHOLD)
    check_subgroup_table(shown)
    unknown = shown[shown["subgroup"] == "unknown"].iloc[0]
    assert unknown["n_baseline"] == f"<{THRESHOLD}"
    assert pd.isna(unknown["baseline_mean"]) and pd.isna(unknown["effect"])
    # the group hidden with it shows "*" and none of its results
    partner = shown[(shown["dimension"] == "sex") & (shown["n_baseline"] == "*")]
    assert len(partner) == 1
    assert partner[["baseline_mean", "after_mean", "effect", "verdict"]].isna().all(axis=None)
    assert table["n_baseline"].dtype.kind == "i", "the computed table is not changed"


def test_a_small_subgroup_of_the_demo_cannot_be_worked_out(demo_tables):
    """Workbook 03 on the demo, two patients of NOR-PC1 without sex or age band: a small group
    of their own ("unknown") in both dimensions."""
    from qi_helpers.changes import (
        analyse_microsystem,
        assign_microsystems,
        measure_series,
    )

    micro = demo_tables["truth_microsystems"]
    loc = micro.assign(location=micro["locations"].str.split(";")).explode("location")
    membership = {"locations": loc[["location", "microsystem_id"]].assign(share=1.0)}
    cases = assign_microsystems(demo_tables["measure_events"], membership)
    series = measure_series(cases, demo_tables["measures"], demo_tables["observations"])
    mine = cases[
        (cases["microsystem_id"] == "NOR-PC1") & (cases["measure_id"] == "pc_hba1c_tested")
    ]
    per_patient = mine.groupby("patient_id").size()
    few = per_patient[per_patient <= 3].index[:2]  # two patients: a group of 2 to 6 cases
    patients = demo_tables["patients"].copy()
    patients.loc[patients["patient_id"].isin(few), ["sex", "age_band"]] = None
    analysis = analyse_microsystem(
        cases,
        series,
        demo_tables["measures"],
        demo_tables["pdsa"],
        microsystem_id="NOR-PC1",
        patients=patients,
    )
    raw = analysis.subgroups
    unknown = raw[raw["subgroup"] == "unknown"]
    assert len(unknown) == 2 and unknown["n_baseline"].add(unknown["n_after"]).between(1, 6).all()
    check_subgroup_table(suppress_small(raw, threshold=THRESHOLD))


@pytest.mark.parametrize("small", SMALL)
def test_the_subgroup_chart_draws_no_hidden_group(small):
    """The forest plot draws each group's effect and the whole's: the groups drawn must leave
    the whole's other cases pooled in 0 or at least the threshold, as the table does."""
    from qi_helpers.changes.figures import plot_subgroups

    table = subgroup_table(small)
    fig = plot_subgroups(table, threshold=THRESHOLD)
    drawn = {tick.get_text() for ax in fig.axes for tick in ax.get_yticklabels()}
    label = table["dimension"].str.replace("_", " ") + ": " + table["subgroup"]
    whole = table[table["dimension"] == "all"].iloc[0]
    for dimension, part in table[table["dimension"] != "all"].groupby("dimension"):
        for count in ("n_baseline", "n_after"):
            on_chart = label[part.index].isin(drawn)
            shown = part.loc[on_chart, count].astype(float).tolist()
            assert_not_isolated(whole[count], shown, f"chart: {dimension} {count}")
    shown = suppress_small(table, threshold=THRESHOLD)
    for row in shown[shown["effect"].isna() & (shown["dimension"] != "all")].itertuples():
        hidden = f"{row.dimension.replace('_', ' ')}: {row.subgroup}"
        assert hidden not in drawn, f"{hidden} is hidden in the table but drawn"
    assert "sex: F" in drawn or "sex: M" in drawn  # the chart still shows what may be shown


# ---- workbook 01: the registry, the 5 Ps summary and the cards --------------------------------


def test_patients_seen_minus_the_panel_is_not_published_when_small(identified, profiles):
    """The demo's HIL-PC3, RIV-PC3, NOR-PC1 and HIL-PC1 saw 2, 7, 10 and 10 patients more than
    their panel: the registry and the summary are published side by side in workbook 01 (and the
    registry row again in workbook 03)."""
    raw = profiles.summary.set_index("microsystem_id")
    gap = raw["patients_seen"] - raw["panel_size"]
    assert gap.between(1, THRESHOLD - 1).sum() >= 3, "the demo has small differences"
    registry = published_registry(identified.registry, THRESHOLD).set_index("microsystem_id")
    summary = published_summary(profiles, THRESHOLD).set_index("microsystem_id")
    for ms in raw.index:
        seen = {number(registry.at[ms, "n_patients"]), number(summary.at[ms, "patients_seen"])}
        panel = {number(summary.at[ms, "panel_size"])}
        if "panel_size" in registry.columns:
            panel.add(number(registry.at[ms, "panel_size"]))
        for a in seen - {None}:
            for b in panel - {None}:
                assert not 0 < a - b < THRESHOLD, f"{ms}: patients seen {a:g} - panel {b:g}"
    # large differences leave both numbers shown
    big = gap[gap >= THRESHOLD].index
    assert (summary.loc[big, "patients_seen"] == raw.loc[big, "patients_seen"]).all()


def small_panel(base, ms: str, small: int):
    """The demo's profiles with ``ms`` given a small panel of 60 + ``small`` patients:
    ``small`` of unknown age and of unknown sex, ``small`` with asthma (conditions here split
    the panel: one each), and ``small`` more patients seen than the panel."""
    panel = 60 + small
    mixes = {
        "age_band": {"0-17": 20, "18-39": 15, "40-64": 12, "65-79": 13, "unknown": small},
        "sex": {"F": 35, "M": 25, "unknown": small},
        "condition": {"hypertension": 35, "diabetes": 25, "asthma": small},
    }
    rows = [
        {"microsystem_id": ms, "p": "patients", "dimension": d, "category": c, "n": float(n),
         "share": n / panel}
        for d, counts in mixes.items() for c, n in counts.items()
    ]  # fmt: skip
    mix = base.mix[~((base.mix["microsystem_id"] == ms) & base.mix["dimension"].isin(mixes))]
    mix = pd.concat([mix, pd.DataFrame(rows)], ignore_index=True)
    summary = base.summary.copy()
    at = summary["microsystem_id"] == ms
    summary.loc[at, "panel_size"] = panel
    summary.loc[at, "patients_seen"] = panel + small
    summary.loc[at, "share_female"] = round(35 / 60, 3)
    summary.loc[at, "share_65_plus"] = round(13 / 60, 3)
    return dataclasses.replace(base, summary=summary, mix=mix), panel


def card_table(card: str, css: str) -> dict[str, str]:
    """Category -> the text shown, in one mix table of a card."""
    table = re.search(rf'<table class="qi-card-mix {css}">(.*?)</table>', card, re.S)
    if table is None:
        return {}
    rows = re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', table.group(1))
    return {html.unescape(k): html.unescape(v) for k, v in rows}


def from_percent(text: str, panel: float) -> float | None:
    """The count a percentage of the panel gives (exact for a panel of 100 or fewer)."""
    match = re.fullmatch(r"(\d+)%", text)
    return round(int(match.group(1)) * panel / 100) if match else None


@pytest.mark.parametrize("small", SMALL)
def test_a_small_group_of_a_panel_cannot_be_worked_out_from_the_card(profiles, small):
    ms = "HIL-PC3"
    changed, panel = small_panel(profiles, ms, small)
    card = card_html(changed, ms, threshold=THRESHOLD)
    summary = published_summary(changed, THRESHOLD).set_index("microsystem_id").loc[ms]
    registry = published_registry(
        pd.DataFrame(
            {
                "microsystem_id": [ms],
                "n_patients": [panel + small],
                "panel_size": [panel],
                "linked_microsystems": [""],
            }
        ),
        THRESHOLD,
    ).iloc[0]
    shown_panel = re.search(r"age bands \(panel of ([^)]*)\)", card).group(1)
    assert number(shown_panel) == number(summary["panel_size"]) == panel  # the panel is kept
    # patients seen minus the panel
    for seen in (number(summary["patients_seen"]), number(registry["n_patients"])):
        assert_not_isolated(seen, [number(registry["panel_size"])], "patients seen - panel")
    # the panel minus the age bands shown (the unknown band is never shown)
    ages = card_table(card, "qi-card-ages")
    assert set(ages) == {"0-17", "18-39", "40-64", "65-79"}
    assert_not_isolated(panel, [from_percent(v, panel) for v in ages.values()], "age bands")
    # the panel minus the conditions shown, on the card or in the summary
    conditions = {
        k: from_percent(v, panel) for k, v in card_table(card, "qi-card-conditions").items()
    }
    for name, share in re.findall(r"(\w+) \(([^)]*)\)", summary["leading_conditions"]):
        conditions[name] = conditions.get(name) or from_percent(share, panel)
    assert_not_isolated(panel, list(conditions.values()), "conditions")
    # a share of the known part of a dimension with a small unknown part narrows that part down
    # to a value or two (the panel is shown): neither share may be published
    text = html.unescape(card)
    assert pd.isna(summary["share_female"]) and pd.isna(summary["share_65_plus"])
    assert not re.search(r"\d+% (female|aged 65)", text + summary["purpose"])


@pytest.mark.parametrize("small", [1, 4, 10])
def test_the_card_figure_draws_what_the_published_card_shows(profiles, small):
    """The card drawn in JupyterLab (``figures.plot_profile_card``) hides the same numbers."""
    import matplotlib.text

    from qi_helpers.identify.figures import plot_profile_card

    ms = "HIL-PC3"
    changed, panel = small_panel(profiles, ms, small)
    fig = plot_profile_card(changed, ms, threshold=THRESHOLD)
    fig.savefig(__import__("io").BytesIO(), format="png")
    texts = " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
    assert not re.search(r"\d+% female", texts)
    bars = {}
    for ax in fig.axes:
        labels = [t.get_text().split(" (")[0] for t in ax.get_yticklabels()]
        if "asthma" in labels:  # the conditions: horizontal bars, one per label
            bars = dict(zip(labels, [p.get_width() for p in ax.patches], strict=True))
    assert bars.get("asthma", 0) == 0, bars  # a hidden condition has no bar
    assert "asthma (<11)" in texts or "asthma (*)" in texts


def test_card_percentages_are_exact_counts_for_a_small_panel(profiles):
    """The attack above reads counts off percentages: exact for panels of 100 or fewer."""
    changed, panel = small_panel(profiles, "HIL-PC3", 0)
    ages = card_table(card_html(changed, "HIL-PC3", threshold=THRESHOLD), "qi-card-ages")
    assert {k: from_percent(v, panel) for k, v in ages.items()} == {
        "0-17": 20, "18-39": 15, "40-64": 12, "65-79": 13,
    }  # fmt: skip


def test_the_registry_and_the_summary_hide_the_same_numbers(identified, profiles):
    from qi_helpers.identify.published import patient_cells, patient_numbers_mask

    registry = identified.registry.set_index("microsystem_id")
    summary = profiles.summary.set_index("microsystem_id")
    assert registry["panel_size"].equals(summary["panel_size"].reindex(registry.index))
    for threshold in (THRESHOLD, int(summary["panel_size"].median()) + 1):
        mask = patient_numbers_mask(registry, threshold)
        cells = patient_cells(profiles, threshold)
        for column, dimension in (("n_patients", "seen"), ("panel_size", "panel")):
            code = cells[cells["dimension"] == dimension].set_index("microsystem_id")["code"]
            assert mask[column].equals(code.reindex(mask.index).rename(column))


# ---- the rule, on random tables -----------------------------------------------------------------

counts = st.sampled_from([0, 0, 1, 2, 3, 5, 8, 9, 10, 11, 12, 15, 20, 40, 100])


@st.composite
def two_way_tables(draw):
    n_rows, n_columns = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    body = draw(st.lists(st.lists(counts, min_size=n_columns, max_size=n_columns),
                         min_size=n_rows, max_size=n_rows))  # fmt: skip
    table = pd.DataFrame(body, columns=[f"c{j}" for j in range(n_columns)])
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    return table, draw(st.integers(1, 15))


@settings(max_examples=300, deadline=None)
@given(two_way_tables())
def test_no_small_cell_is_derivable_from_row_and_column_totals(case):
    table, threshold = case
    inner = [c for c in table.columns if c != "total"]
    body = [r for r in table.index if r != "total"]
    mask = small_cell_mask(table, inner, threshold, total_row="total", total_column="total")
    small = (table >= 1) & (table < threshold)
    assert (mask.eq("primary") | ~small).all(axis=None)
    lines = [([(r, c) for c in inner], (r, "total")) for r in body + ["total"]]
    lines += [([(r, c) for r in body], ("total", c)) for c in inner + ["total"]]
    for cells, total in lines:
        hidden = [cell for cell in cells if mask.loc[cell] != ""]
        if not hidden or mask.loc[total] != "":
            continue
        assert len(hidden) >= 2 and sum(table.loc[cell] for cell in hidden) >= threshold


@st.composite
def group_tables(draw):
    """Tables of groups with nested totals: patients seen > panel > several dimensions, each
    splitting the panel with a remainder; some groups never published."""
    rows = []
    for table in range(draw(st.integers(1, 3))):
        dims = [
            draw(st.lists(counts, min_size=1, max_size=5)) for _ in range(draw(st.integers(1, 3)))
        ]
        panel = max(sum(parts) for parts in dims) + draw(st.sampled_from([0, 0, 1, 4, 12]))
        seen = panel + draw(st.sampled_from([0, 1, 3, 9, 10, 11, 30]))
        rows.append((table, "seen", "all", seen, True))
        rows.append((table, "panel", "all", panel, True))
        for d, parts in enumerate(dims):
            for g, n in enumerate(parts):
                rows.append((table, f"d{d}", f"g{g}", n, draw(st.booleans()) or g > 0))
    frame = pd.DataFrame(rows, columns=["table", "dimension", "group", "n", "published"])
    frame["mean"] = 1.0
    return frame, draw(st.integers(1, 15))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_tables())
def test_no_small_group_is_derivable_from_the_published_totals(case):
    from qi_helpers.privacy.small_cells import small_group_mask

    frame, threshold = case
    totals = {"panel": "seen", "d0": "panel", "d1": "panel", "d2": "panel"}
    mask = small_group_mask(
        frame,
        ["n"],
        threshold,
        dimension="dimension",
        totals=totals,
        within=["table"],
        published="published",
        statistics=["mean"],
    )
    small = frame["n"].between(1, threshold - 1)
    assert (mask.loc[small, "n"] == "primary").all()
    assert mask["mean"].equals(mask["n"].rename("mean")), "a hidden count hides its statistics"
    shown = frame["published"] & mask["n"].eq("")
    for (table, dimension), part in frame.groupby(["table", "dimension"]):
        if dimension == "seen":
            continue
        total = frame[(frame["table"] == table) & (frame["dimension"] == totals[dimension])]
        if mask.loc[total.index[0], "n"] != "":
            continue  # a hidden total leaves nothing to subtract from
        left = total["n"].iloc[0] - part.loc[shown[part.index], "n"].sum()
        assert not 0 < left < threshold, (table, dimension, left)
