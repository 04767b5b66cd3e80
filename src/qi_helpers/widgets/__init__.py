"""ipywidgets front ends for the workbooks (one small explorer per workbook).

Each explorer is a function a workbook calls in one cell. In JupyterLab (``interactive=True``) it
returns controls and an output area that redraws when a control changes; in a batch run
(``interactive=False``, which ``qi run`` passes) it returns the static result for the current
values, so a published report never needs a kernel.
"""

from qi_helpers.widgets._base import explorer

__all__ = ["explorer"]
