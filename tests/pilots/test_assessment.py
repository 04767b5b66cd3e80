"""The microsystem assessment by characteristic, survey rounds, and where they are shown.

Every expected value is computed by hand in the comments from the answers written here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.pilots import (
    assess_characteristics,
    plot_assessment,
    profile_table,
    profile_words,
    readiness_by_microsystem,
    strengths_and_gaps,
    with_strengths_and_gaps,
)
from qi_helpers.pilots.scoring import _readiness
from qi_helpers.spread import spread_cards, support_needed, wave_summary


def _answers(scores: dict[str, list[int]], characteristic: str = "leadership", **extra):
    """One row per answer; each team's answers come from distinct staff."""
    rows = []
    for team, values in scores.items():
        for i, score in enumerate(values):
            rows.append(
                {
                    "staff_id": f"{team}{i}",
                    "microsystem_id": team,
                    "characteristic": characteristic,
                    "score": score,
                    **extra,
                }
            )
    return pd.DataFrame(rows)


#: Five teams with three respondents each, and F with two (too few).
#: Means: A 3.0, B 8/3 = 2.667, C 2.0, D 5/3 = 1.667, E 1.0; F 3.0 (two respondents).
ORG = {
    "A": [3, 3, 3],
    "B": [3, 3, 2],
    "C": [2, 2, 2],
    "D": [2, 2, 1],
    "E": [1, 1, 1],
    "F": [3, 3],
}


@pytest.fixture
def assessed() -> pd.DataFrame:
    return assess_characteristics(_answers(ORG)).set_index("microsystem_id")


def test_scores_quartiles_and_ranks_by_hand(assessed):
    a = assessed
    assert a.loc["B", "score"] == pytest.approx(8 / 3)
    assert a.loc["D", "score"] == pytest.approx(5 / 3)
    assert a["respondents"].to_dict() == {"A": 3, "B": 3, "C": 3, "D": 3, "E": 3, "F": 2}
    # Compared: A-E (F has too few). Sorted 1.0, 1.667, 2.0, 2.667, 3.0; linear quartiles at
    # positions 1, 2, 3 of 0..4: 1.667, 2.0, 2.667.
    assert a.loc["A", "compared"] == 5
    assert a.loc["A", "org_q1"] == pytest.approx(5 / 3)
    assert a.loc["A", "org_median"] == pytest.approx(2.0)
    assert a.loc["A", "org_q3"] == pytest.approx(8 / 3)
    assert a["rank"].dropna().astype(int).to_dict() == {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5}
    assert pd.isna(a.loc["F", "rank"])
    assert a.loc["A", "label"] == "leadership"


def test_strengths_gaps_and_too_few_answers(assessed):
    # A: 3.0 >= q3 and 1.0 above the median; B: 2.667 >= q3 and 0.667 above: strengths.
    # D: 1.667 <= q1 and 0.333 below; E: 1.0: gaps. C at the median. F: two answers only.
    assert assessed["standing"].to_dict() == {
        "A": "strength",
        "B": "strength",
        "C": "middle",
        "D": "gap",
        "E": "gap",
        "F": "too few answers",
    }
    named = strengths_and_gaps(assessed.reset_index()).set_index("microsystem_id")
    assert named.loc["A", "strengths"] == "leadership 3.0 of 3"
    assert named.loc["D", "gaps"] == "leadership 1.7 of 3"
    assert named.loc["F", "strengths"] == named.loc["F", "gaps"] == ""


def test_a_narrow_distribution_needs_the_distance_from_the_median():
    # Means 2.0, 2.0, 2.0, 7/3 = 2.333, 5/3 = 1.667: q1 = median = q3 = 2.0.
    org = {"A": [2, 2, 2], "B": [2, 2, 2], "C": [2, 2, 2], "D": [2, 2, 3], "E": [2, 2, 1]}
    at = assess_characteristics(_answers(org)).set_index("microsystem_id")["standing"]
    # A-C sit on the upper (and lower) quartile but 0 from the median: not strengths or gaps.
    assert at.to_dict() == {
        "A": "middle",
        "B": "middle",
        "C": "middle",
        "D": "strength",
        "E": "gap",
    }
    # D and E are 1/3 from the median: exactly the distance still counts, a bit more does not.
    exact = assess_characteristics(_answers(org), min_distance=1 / 3)
    assert exact.set_index("microsystem_id")["standing"]["D"] == "strength"
    wider = assess_characteristics(_answers(org), min_distance=0.34)
    assert set(wider["standing"]) == {"middle"}


def test_too_few_teams_are_not_compared():
    three = {"A": [3, 3, 3], "B": [2, 2, 2], "C": [1, 1, 1]}
    out = assess_characteristics(_answers(three))
    assert set(out["standing"]) == {"too few teams to compare"}
    assert out["org_median"].isna().all() and (out["compared"] == 3).all()
    assert set(assess_characteristics(_answers(three), min_teams=3)["standing"]) == {
        "strength",
        "middle",
        "gap",
    }


def _two_rounds() -> pd.DataFrame:
    # A: round 1 answers 1, 2, 2 (5/3), round 2 answers 2, 3, 3 (8/3). B: round 1 only (2.0).
    # C: round 1 (2, 2, 2), round 2 (2, 2, 3 = 7/3): +0.33. D: round 2 has one answer only.
    return pd.concat(
        [
            _answers({"A": [1, 2, 2], "B": [2, 2, 2], "C": [2, 2, 2], "D": [2, 2, 2]}, round="1"),
            _answers({"A": [2, 3, 3], "C": [2, 2, 3], "D": [3]}, round="2"),
        ],
        ignore_index=True,
    )


def test_latest_round_is_used_never_averaged_with_the_old_one():
    ready = readiness_by_microsystem(_two_rounds()).set_index("microsystem_id")
    assert ready.loc["A", "readiness"] == pytest.approx(8 / 3)  # not (5/3 + 8/3) / 2
    assert ready.loc["B", "readiness"] == pytest.approx(2.0)  # its only round
    assert ready.loc["D", "respondents"] == 1 and bool(ready.loc["D", "too_few"])
    first = readiness_by_microsystem(_two_rounds(), round=1).set_index("microsystem_id")
    assert first.loc["A", "readiness"] == pytest.approx(5 / 3)
    with pytest.raises(ConfigError, match="whole number"):
        readiness_by_microsystem(_two_rounds(), round="2024-05-01")


def test_one_round_is_as_without_the_column():
    plain = _answers(ORG)
    with_round = plain.assign(round="2024-05-06")
    pd.testing.assert_frame_equal(
        readiness_by_microsystem(plain), readiness_by_microsystem(with_round)
    )
    blank = plain.assign(round="")  # an empty column: no rounds
    pd.testing.assert_frame_equal(readiness_by_microsystem(plain), readiness_by_microsystem(blank))
    assert (assess_characteristics(plain)["change_words"] == "").all()


def test_dated_rounds_are_cut_at_the_selection_date():
    rounds = _two_rounds()
    rounds["round"] = rounds["round"].map({"1": "2024-05-06", "2": "2025-03-03"})
    cut = readiness_by_microsystem(rounds, as_of="2024-06-30").set_index("microsystem_id")
    assert cut.loc["A", "readiness"] == pytest.approx(5 / 3)
    latest = readiness_by_microsystem(rounds).set_index("microsystem_id")
    assert latest.loc["A", "readiness"] == pytest.approx(8 / 3)
    numbered = readiness_by_microsystem(_two_rounds(), as_of="2024-06-30")  # numbers: no date
    assert numbered.set_index("microsystem_id").loc["A", "readiness"] == pytest.approx(8 / 3)


def test_change_between_the_last_two_rounds_in_words():
    out = assess_characteristics(_two_rounds(), min_teams=1).set_index("microsystem_id")
    assert out.loc["A", "change"] == pytest.approx(1.0)
    assert out.loc["A", "change_words"] == "up 1.0 (1.7 to 2.7)"
    assert out.loc["C", "change_words"] == "up 0.3 (2.0 to 2.3)"
    assert out.loc["B", "change_words"] == ""  # one round
    assert out.loc["D", "change_words"] == "too few answers to compare"
    same = assess_characteristics(_two_rounds(), min_teams=1, min_change=0.34)
    assert same.set_index("microsystem_id").loc["C", "change_words"] == (
        "about the same (2.0 then 2.3)"
    )
    words = profile_words(out.reset_index(), "A")
    assert "**Since round 1:** up: leadership 1.7 to 2.7." in words


def test_bad_rounds_are_refused_naming_the_rows():
    bad = _two_rounds()
    bad.loc[[1, 4], "round"] = ["2024-05-06", "zero"]
    with pytest.raises(DataError, match=r"column round: the round is neither .* row\(s\) 5"):
        readiness_by_microsystem(bad)
    mixed = _two_rounds()
    mixed.loc[2, "round"] = "2024-05-06"
    with pytest.raises(DataError, match=r"not a number like the other rounds .* row\(s\) 3"):
        assess_characteristics(mixed)


def test_profile_table_and_words_read_in_words(assessed):
    table = profile_table(assessed.reset_index(), "D")
    assert len(table) == 10  # every characteristic, rated or not
    first = table.iloc[0]
    assert first["Characteristic"] == "leadership" and first["team_score"] == 1.7
    assert first["Organisation (quartiles)"] == "1.7 / 2.0 / 2.7"
    assert first["Rank"] == "4 of 5" and first["Standing"] == "gap"
    assert table.iloc[1]["Characteristic"] == "organisational support"
    assert table.iloc[1]["Standing"] == "not rated"
    assert "Since last round" not in table
    words = profile_words(assessed.reset_index(), "D")
    assert "**Gaps:** leadership 1.7 of 3." in words
    assert "none stands out" in words  # no strength
    assert profile_words(assessed.reset_index(), "Z").startswith("No readiness survey answers")


def test_pilot_criteria_name_the_strengths_and_gaps(assessed):
    ready = with_strengths_and_gaps(readiness_by_microsystem(_answers(ORG)), assessed.reset_index())
    why = _readiness(pd.Series(["A", "D", "C"]), ready)["readiness_why"].tolist()
    assert why[0] == (
        "mean 3.00 of 3 over the ten characteristics from 3 respondents; "
        "strengths: leadership 3.0 of 3"
    )
    assert why[1].endswith("; gaps: leadership 1.7 of 3")
    assert "strengths" not in why[2] and "gaps" not in why[2]
    plain = _readiness(pd.Series(["A"]), readiness_by_microsystem(_answers(ORG)))
    assert plain["readiness_why"].item().endswith("from 3 respondents")


def test_spread_names_the_gaps_to_support_before_each_wave(assessed):
    spread_plan = pd.DataFrame(
        {
            "change": ["c", "c", "c"],
            "microsystem_id": ["A", "D", "E"],
            "wave": [1, 2, 2],
            "adopter_category": ["early adopters", "late majority", "late majority"],
            "wave_start": pd.to_datetime(["2025-01-06", "2025-03-31", "2025-03-31"]),
            "wave_end": pd.to_datetime(["2025-03-31", "2025-06-23", "2025-06-23"]),
        }
    )
    planned = support_needed(spread_plan, assessed.reset_index())
    assert planned["support"].tolist() == [
        "",
        "leadership 1.7 of 3: needs support before wave 2",
        "leadership 1.0 of 3: needs support before wave 2",
    ]
    waves = wave_summary(planned)
    assert waves["support"].tolist() == ["", "D: leadership 1.7 of 3; E: leadership 1.0 of 3"]
    results = pd.DataFrame(
        {
            "microsystem_id": ["P"],
            "measure_id": ["m"],
            "name": ["HbA1c tested"],
            "change": ["c"],
            "verdict": ["improved"],
            "reason": ["from the chart"],
        }
    )
    html = spread_cards(results, planned)._repr_html_()
    assert "support first with D: leadership 1.7 of 3; E: leadership 1.0 of 3" in html
    assert (support_needed(spread_plan, None)["support"] == "").all()


def test_the_profile_chart_says_in_words_what_it_shows():
    out = assess_characteristics(_two_rounds(), min_teams=1)
    fig = plot_assessment(out, "A")
    assert fig.caption.startswith("How A rates itself on the ten success characteristics")
    assert "open circles are the team's previous round" in fig.caption
    assert "leadership 2.7 (organisation median 2.3)" in fig.alt  # A 8/3, B 2, C 7/3, D 3
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "leadership" and "organisational support" in labels
    assert not any("_" in label for label in labels)
    # Compared A 8/3, B 2.0, C 7/3 (D has one answer): q3 2.5, median 7/3; A is 1/3 above.
    standings = [t.get_text() for t in ax.texts]
    assert standings.count("not rated") == 9 and standings.count("strength") == 1
    assert np.isclose(ax.get_xlim(), (0.9, 3.9)).all()


def test_a_change_reads_as_the_difference_of_the_scores_shown():
    # D: round 1 answers 2, 2, 3, 2 (2.25, shown 2.2), round 2 answers 3, 2, 3, 2 (2.5): the
    # change is 0.25, and reads "up 0.3" as 2.2 to 2.5 do.
    rounds = pd.concat(
        [
            _answers({"D": [2, 2, 3, 2]}, round="1"),
            _answers({"D": [3, 2, 3, 2]}, round="2"),
        ],
        ignore_index=True,
    )
    out = assess_characteristics(rounds, min_teams=1)
    assert out["change"].item() == pytest.approx(0.25)
    assert out["change_words"].item() == "up 0.3 (2.2 to 2.5)"
