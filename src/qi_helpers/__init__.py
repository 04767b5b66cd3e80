"""qi_helpers: the clinical-microsystem method as reusable, tested Python.

One module per concept (see ``DESIGN.md``), grouped by the step of the method they serve:

- Data in: ``sources`` (read a table), ``schema`` (the contracts), ``checks`` (``qi check``),
  ``datasets`` (the demo health system), ``project`` (paths and parameters), ``scaffold``.
- Charts: ``spc`` and ``spc_rules`` (run and control charts, rule sets), ``charts``, ``figures``.
- 01 identify: ``activity_network``, ``communities``, ``registry``, ``microsystems``,
  ``declared_units``, ``partition_scores``, ``identification_files``, ``profiles``,
  ``profile_cards``.
- 02 select pilots: ``readiness``, ``detection`` (time to detect), ``pilots``.
- 03 analyse tests: ``measure_series``, ``pdsa_log``, ``verdicts``, ``measure_analysis``,
  ``effects``, ``equity``, ``changes``, ``what_next``.
- 04 spread: ``spread``, ``tracking``.
- Batch and reports: ``plan``, ``runner``, ``executors``, ``tables``, ``publish``, ``privacy``,
  ``notebook_display``, ``widgets`` (the JupyterLab explorers), ``cli`` (the ``qi`` command).
"""

from qi_helpers.errors import ConfigError, DataError, QIError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "QIError", "__version__"]
