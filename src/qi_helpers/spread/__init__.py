"""Spread the changes that worked to other microsystems, and track the spread (workbook 04).

Spread follows the IHI Framework for Spread (Massoud et al., *A Framework for Spread: From Local
Improvements to System-Wide Change*, IHI Innovation Series white paper, 2006): a change that
improved results in its pilots, and harmed nothing, is offered to the other microsystems of the
same kind, most similar and readiest first (the *early adopters* of Rogers, *Diffusion of
Innovations*, 5th ed., 2003), in waves, with leadership, communication and measurement around it;
then each adopter's measure shows whether the gain arrived and holds.

Modules:

- :mod:`~qi_helpers.spread.ready`: the changes ready to spread and those held back;
- :mod:`~qi_helpers.spread.profiles`: the teams' role, activity and patient mixes and how alike
  two teams are;
- :mod:`~qi_helpers.spread.impact`: each team's current level of a measure and the gain projected
  there;
- :mod:`~qi_helpers.spread.adopters`: every other team scored as a candidate adopter, with the
  reasons in words;
- :mod:`~qi_helpers.spread.waves`: the candidates in waves, with dates;
- :mod:`~qi_helpers.spread.support`: what each adopter needs support with before its wave (its
  gaps in the microsystem assessment);
- :mod:`~qi_helpers.spread.framework`: the Framework for Spread checklist;
- :mod:`~qi_helpers.spread.export`: the plan as a CSV or Excel file for managers;
- :mod:`~qi_helpers.spread.tracking`: the adoption curve and whether each adopter's gain holds;
- :mod:`~qi_helpers.spread.summary`: summary first, one card per change (evidence, waves,
  whether adopters hold the gain, who needs attention first);
- :mod:`~qi_helpers.spread.figures`: the waves, the adoption curves and the adopters' charts;
- :mod:`~qi_helpers.spread.driver_status`: the organisation's driver diagram with the spread
  status of each change idea.
"""

from qi_helpers.spread.adopters import DEFAULT_WEIGHTS, all_candidates, candidates
from qi_helpers.spread.driver_status import SPREAD_STATUSES, organisation_diagram, spread_status
from qi_helpers.spread.export import EXPORT_COLUMNS, export_plan
from qi_helpers.spread.figures import plot_adoption_curve, plot_sustain, plot_waves
from qi_helpers.spread.framework import FRAMEWORK_COMPONENTS, framework_checklist
from qi_helpers.spread.impact import measure_levels
from qi_helpers.spread.profiles import similarity, spread_profiles, wide_profiles
from qi_helpers.spread.ready import held_back, successful_changes
from qi_helpers.spread.summary import SpreadCards, spread_cards, spread_summary, wave_summary
from qi_helpers.spread.support import support_needed
from qi_helpers.spread.tracking import (
    SUSTAIN_VERDICTS,
    SustainTracking,
    adoption_curve,
    spread_measures,
    sustain,
    sustain_summary,
)
from qi_helpers.spread.waves import default_start, plan

__all__ = [
    "DEFAULT_WEIGHTS",
    "EXPORT_COLUMNS",
    "FRAMEWORK_COMPONENTS",
    "SPREAD_STATUSES",
    "SUSTAIN_VERDICTS",
    "SpreadCards",
    "SustainTracking",
    "adoption_curve",
    "all_candidates",
    "candidates",
    "default_start",
    "export_plan",
    "framework_checklist",
    "held_back",
    "measure_levels",
    "organisation_diagram",
    "plan",
    "plot_adoption_curve",
    "plot_sustain",
    "plot_waves",
    "similarity",
    "spread_cards",
    "spread_measures",
    "spread_profiles",
    "spread_status",
    "spread_summary",
    "successful_changes",
    "support_needed",
    "sustain",
    "sustain_summary",
    "wave_summary",
    "wide_profiles",
]
