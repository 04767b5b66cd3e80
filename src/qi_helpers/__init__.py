"""qi_helpers: the clinical-microsystem method as reusable, tested Python.

The folders follow the method (``docs/architecture.md`` in the project describes each part, the
rules of its imports, the data flow and the data contracts):

- ``identify`` (workbook 01): the smallest measurable microsystems, their 5 Ps profiles and cards;
- ``pilots`` (workbook 02): readiness, selection criteria and ranking of pilot microsystems;
- ``changes`` (workbook 03): tests of change judged on run and control charts, effects, equity;
- ``spread`` (workbook 04): who adopts what worked, in which wave, and whether the gain holds;

on ``data`` (reading and checking the input tables), ``spc`` (run and control charts),
``privacy`` (what may be published) and a small base: ``errors``, ``project`` (paths and
parameters), ``workflow`` (the table of workbooks), ``measures``, ``io``, ``drawing`` and
``notebook_display``. ``widgets`` holds the JupyterLab explorers, ``run`` the batch runner,
``publish`` the offline site, ``demo`` the synthetic health system and ``cli`` the ``qi`` command.
"""

#: The release (pyproject.toml has the same); ``qi --version`` prints it.
__version__ = "0.1.0"

from qi_helpers.errors import ConfigError, DataError, QIError  # noqa: E402

__all__ = ["ConfigError", "DataError", "QIError", "__version__"]
