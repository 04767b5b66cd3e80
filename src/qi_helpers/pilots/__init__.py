"""Select the pilot microsystems in which to test a change (workbook 02).

A good pilot has room to improve on the chosen measure, a stable baseline, enough volume to see a
change soon, a team ready to test ideas, and a profile like the teams the change will later spread
to. This subpackage scores every candidate on these five criteria, ranks the candidates with the
team's weights, selects the pilots and checks how much the choice depends on the weights.

Modules:

- :mod:`~qi_helpers.pilots.baselines`: the measure's catalogue row, every candidate's baseline
  window and the baseline control charts;
- :mod:`~qi_helpers.pilots.readiness`: the team readiness survey, by microsystem (each team's
  latest survey round);
- :mod:`~qi_helpers.pilots.assessment`: the microsystem assessment by characteristic: each
  team's profile against the organisation's teams, its strengths and gaps, and the change since
  its previous round;
- :mod:`~qi_helpers.pilots.profiles`: the profiles to compare and how representative each
  candidate is of its peers;
- :mod:`~qi_helpers.pilots.scoring`: the five criteria, one function each, and the criteria table;
- :mod:`~qi_helpers.pilots.ranking`: the weighted ranking, the selection and its sensitivity to
  the weights;
- :mod:`~qi_helpers.pilots.summary`: summary first, one card per chosen pilot (who, why, score);
- :mod:`~qi_helpers.pilots.figures`: the criteria heatmap, the baseline charts and a team's
  assessment profile.
"""

from qi_helpers.pilots.assessment import (
    assess_characteristics,
    characteristic_label,
    profile_table,
    profile_words,
    strengths_and_gaps,
    with_strengths_and_gaps,
)
from qi_helpers.pilots.baselines import baseline_charts, baseline_window, catalogue_row
from qi_helpers.pilots.figures import plot_assessment, plot_criteria_heatmap, plot_pilot_baselines
from qi_helpers.pilots.profiles import candidate_profiles, representativeness
from qi_helpers.pilots.ranking import rank, sensitivity, shortlist
from qi_helpers.pilots.readiness import readiness_by_microsystem
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS, criteria
from qi_helpers.pilots.summary import PilotCards, pilot_cards, pilot_summary

__all__ = [
    "CRITERIA",
    "CRITERIA_LABELS",
    "PilotCards",
    "assess_characteristics",
    "baseline_charts",
    "baseline_window",
    "candidate_profiles",
    "catalogue_row",
    "characteristic_label",
    "criteria",
    "pilot_cards",
    "pilot_summary",
    "plot_assessment",
    "plot_criteria_heatmap",
    "plot_pilot_baselines",
    "profile_table",
    "profile_words",
    "rank",
    "readiness_by_microsystem",
    "representativeness",
    "sensitivity",
    "shortlist",
    "strengths_and_gaps",
    "with_strengths_and_gaps",
]
