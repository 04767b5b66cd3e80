"""Workbook 03: analyse the tests of change of a microsystem.

This subpackage owns the third step of the method. A microsystem's measured cases become one
series per measure (:func:`assign_microsystems`, :func:`measure_series`); its PDSA log says which
changes were tested, adopted or abandoned (:func:`changes_tested`); each measure is charted in
phases with the baseline frozen before each change and every change is judged: improved,
worsened, no change, no signal yet (Provost & Murray, The Health Care Data Guide, 2011), with the
size of its effect and a 95% interval (:func:`analyse`, :func:`analyse_microsystem`). The patients'
subgroups are compared with the whole and published with small counts hidden
(:func:`subgroup_effects`, :func:`suppress_small`); :func:`what_next` tells the team what to do
next, and :func:`write_results` writes the verdict table that workbook 04 reads;
:func:`write_report_card` writes the same results as slides and a printable PDF for the team.

Modules:

- :mod:`~qi_helpers.changes.series`: the measured cases in microsystems and periods, summed;
- :mod:`~qi_helpers.changes.pdsa`: the changes tested, from the PDSA log;
- :mod:`~qi_helpers.changes.effects`: effect estimates with their intervals, time to signal;
- :mod:`~qi_helpers.changes.verdicts`: the verdict rule (a phase against its frozen baseline);
- :mod:`~qi_helpers.changes.judging`: one change judged, with its reason in words;
- :mod:`~qi_helpers.changes.analysis`: the phases, chart and verdicts of one measure;
- :mod:`~qi_helpers.changes.equity`: the effects within patient subgroups, and their suppression;
- :mod:`~qi_helpers.changes.microsystem`: every measure of a microsystem, and the verdict table;
- :mod:`~qi_helpers.changes.what_next`: what the team does next, in words;
- :mod:`~qi_helpers.changes.tables`: the verdict and subgroup tables as a team reads them;
- :mod:`~qi_helpers.changes.summary`: summary first, one card per measure (verdict, icons, effect);
- :mod:`~qi_helpers.changes.captions`: what each chart shows, in words (captions, alt text);
- :mod:`~qi_helpers.changes.figures`: the figures of workbook 03;
- :mod:`~qi_helpers.changes.drivers`: the microsystem's driver diagram, each change idea marked
  by its PDSA cycles and verdicts (:mod:`~qi_helpers.changes.driver_html` draws it as HTML);
- :mod:`~qi_helpers.changes.progress`: the IHI progress score of each microsystem by month, from
  the evidence, with the evidence in words; :mod:`~qi_helpers.changes.progress_overrides`: a
  coach's scores (``parameters/progress_scores.csv``) beside the computed ones;
- :mod:`~qi_helpers.changes.card_content`: what a report card holds, as plain text;
- :mod:`~qi_helpers.changes.report_card`: the report card's content, and writing its files;
- :mod:`~qi_helpers.changes.slides`: the report card as slides (python-pptx);
- :mod:`~qi_helpers.changes.report_pdf`: the report card as a printable PDF (fpdf2).
"""

from qi_helpers.changes.analysis import (
    CASE_CHARTS,
    RATIO_CHARTS,
    ChangeAnalysis,
    analyse,
    compatible_charts,
)
from qi_helpers.changes.captions import change_caption
from qi_helpers.changes.drivers import (
    IDEA_STATUSES,
    DriverDiagram,
    change_idea_status,
    change_ideas,
    diagram_rows,
    diagrams_present,
    driver_diagram,
)
from qi_helpers.changes.effects import SERIAL_CORRELATION_NOTE, estimate_effect
from qi_helpers.changes.equity import (
    SUBGROUP_COLUMNS,
    patient_subgroups,
    subgroup_effects,
    subgroup_mask,
    suppress_small,
)
from qi_helpers.changes.figures import (
    plot_change,
    plot_measures,
    plot_pdsa_timeline,
    plot_subgroups,
)
from qi_helpers.changes.microsystem import (
    AIM_ORDER,
    FAMILY_ORDER,
    MicrosystemAnalysis,
    analyse_microsystem,
    order_measures,
    write_results,
)
from qi_helpers.changes.pdsa import adopted_changes, changes_tested
from qi_helpers.changes.prepare import (
    MicrosystemSlice,
    PreparedSlices,
    load_slice,
    load_slices,
    organisation_measure_series,
    organisation_series,
    prepare_slices,
)
from qi_helpers.changes.progress import (
    PROGRESS_SCALE,
    progress_history,
    progress_now,
    progress_scores,
    progress_steps,
)
from qi_helpers.changes.progress_overrides import (
    OVERRIDES_FILE,
    progress_text,
    read_progress_overrides,
    with_overrides,
)
from qi_helpers.changes.report_card import ReportCard, report_card, write_report_card
from qi_helpers.changes.series import (
    assign_microsystems,
    measure_series,
    period_start,
    series_for_microsystem,
)
from qi_helpers.changes.summary import effect_sentence, measure_summary, summary_cards
from qi_helpers.changes.tables import subgroup_table, verdict_table
from qi_helpers.changes.verdicts import RESULT_COLUMNS, VERDICTS
from qi_helpers.changes.what_next import what_next

__all__ = [
    "AIM_ORDER",
    "CASE_CHARTS",
    "FAMILY_ORDER",
    "IDEA_STATUSES",
    "OVERRIDES_FILE",
    "PROGRESS_SCALE",
    "RATIO_CHARTS",
    "RESULT_COLUMNS",
    "SERIAL_CORRELATION_NOTE",
    "SUBGROUP_COLUMNS",
    "VERDICTS",
    "ChangeAnalysis",
    "DriverDiagram",
    "MicrosystemAnalysis",
    "MicrosystemSlice",
    "PreparedSlices",
    "ReportCard",
    "adopted_changes",
    "analyse",
    "analyse_microsystem",
    "assign_microsystems",
    "change_caption",
    "change_idea_status",
    "change_ideas",
    "changes_tested",
    "compatible_charts",
    "diagram_rows",
    "diagrams_present",
    "driver_diagram",
    "effect_sentence",
    "estimate_effect",
    "load_slice",
    "load_slices",
    "measure_series",
    "measure_summary",
    "order_measures",
    "organisation_measure_series",
    "organisation_series",
    "patient_subgroups",
    "period_start",
    "plot_change",
    "plot_measures",
    "plot_pdsa_timeline",
    "plot_subgroups",
    "prepare_slices",
    "progress_history",
    "progress_now",
    "progress_scores",
    "progress_steps",
    "progress_text",
    "read_progress_overrides",
    "report_card",
    "series_for_microsystem",
    "subgroup_effects",
    "subgroup_mask",
    "subgroup_table",
    "summary_cards",
    "suppress_small",
    "verdict_table",
    "what_next",
    "with_overrides",
    "write_report_card",
    "write_results",
]
