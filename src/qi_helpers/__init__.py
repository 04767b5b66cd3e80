"""qi_helpers: the clinical-microsystem method as reusable, tested Python.

One module per concept (see ``DESIGN.md``): ``datasets`` (the demo health system), ``sources`` and
``schema`` (reading and validating tables), ``spc`` and ``charts`` (run and control charts),
``microsystems``, ``pilots``, ``changes``, ``spread`` (the four steps of the method), ``runner`` and
``publish`` (batch execution and the HTML site), ``privacy`` and ``cli``.
"""

from qi_helpers.errors import ConfigError, DataError, QIError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "QIError", "__version__"]
