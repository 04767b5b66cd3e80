"""ipywidgets front ends for the workbooks (one small explorer per workbook).

Each explorer is a function a workbook calls in one cell. In JupyterLab (``interactive=True``) it
returns controls and an output area that redraws when a control changes; in a batch run
(``interactive=False``, which ``qi run`` passes) it returns the static result for the current
values, so a published report never needs a kernel.
"""

from qi_helpers.widgets._base import explorer
from qi_helpers.widgets.identify import identify_explorer, profile_cards
from qi_helpers.widgets.pilots import pilot_explorer
from qi_helpers.widgets.spread import spread_explorer
from qi_helpers.widgets.tests_of_change import tests_of_change_explorer

__all__ = [
    "explorer",
    "identify_explorer",
    "pilot_explorer",
    "profile_cards",
    "spread_explorer",
    "tests_of_change_explorer",
]
