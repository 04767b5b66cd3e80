"""The input tables: where they are read from, what they must hold, and ``qi check``.

``data`` owns everything between a table's source in ``parameters/project.yaml`` and a typed
table a workbook can trust: reading files and databases, the data contracts (see
``docs/architecture.md``) and the rules that check a table against its contract and the tables
against each other, the report ``qi check`` prints, the templates of ``qi init``, and the column checks every step applies to
the tables it is handed. Modules:

- ``sources``: read a table's source (CSV, TSV, Parquet; dispatch to Excel and databases);
- ``excel``: one sheet of an .xlsx, within caps (:data:`XLSX_LIMITS`);
- ``databases``: a table or query of a SQL database;
- ``loaded``: what reading gives (:class:`Loaded`) or raises (:class:`SourceError`);
- ``formulas``: cells a spreadsheet would run as formulas, neutralised for export;
- ``contracts``: the table contracts and their vocabulary (:data:`CONTRACTS`, :data:`ALLOWED`);
- ``parsing``: typing cells as read (identifiers as text, dates, numbers, blanks);
- ``problems``: :class:`Problem`, :class:`ContractError` and the lines printed per table;
- ``validation``: the rules of one table (:func:`inspect`, :func:`validate`);
- ``driver_checks``: the rules of driver diagrams (the ``drivers`` table);
- ``rounds``: the readiness survey's rounds (:func:`parse_rounds`, :func:`survey_rounds`);
- ``cross_checks``: the rules across tables (:func:`cross_check`);
- ``report``: :class:`CheckReport`, the report of ``qi check``;
- ``checks``: ``qi check`` itself (:func:`check_project`, :func:`check_tables`);
- ``arrow_memory``: memory pyarrow frees goes back to the system;
- ``columns``: the column checks of the steps (:func:`require_columns`, ...);
- ``scaffold``: ``qi init`` (:func:`init_project`, the templates).
"""

from qi_helpers.data.checks import OPTIONAL_TABLES, REQUIRED_TABLES, check_project, check_tables
from qi_helpers.data.columns import (
    COLUMNS_ADVICE,
    activity_timestamps,
    blank_mask,
    require_columns,
    require_dataframe,
)
from qi_helpers.data.contracts import (
    ALLOWED,
    CONTRACTS,
    EXAMPLE_PREFIX,
    READINESS_CHARACTERISTICS,
    UNIQUE,
    Contract,
)
from qi_helpers.data.cross_checks import MIN_PERIODS, cross_check
from qi_helpers.data.excel import XLSX_LIMITS
from qi_helpers.data.formulas import (
    FORMULA_PREFIXES,
    formula_cells,
    neutralise_formulas,
    text_edges,
)
from qi_helpers.data.loaded import Loaded
from qi_helpers.errors import SourceError
from qi_helpers.data.problems import Problem, render_table
from qi_helpers.errors import ContractError
from qi_helpers.data.report import CheckReport, TableInfo
from qi_helpers.data.rounds import parse_rounds, survey_rounds
from qi_helpers.data.scaffold import (
    TEMPLATE_ROWS,
    find_source_project,
    init_project,
    template_tables,
)
from qi_helpers.data.sources import (
    SOURCE_KEYS,
    TEXT_ENCODINGS,
    read_source,
    read_table,
    read_text,
)
from qi_helpers.data.validation import inspect, validate

__all__ = [
    "ALLOWED",
    "COLUMNS_ADVICE",
    "CONTRACTS",
    "CheckReport",
    "Contract",
    "ContractError",
    "EXAMPLE_PREFIX",
    "FORMULA_PREFIXES",
    "Loaded",
    "MIN_PERIODS",
    "OPTIONAL_TABLES",
    "Problem",
    "READINESS_CHARACTERISTICS",
    "REQUIRED_TABLES",
    "SOURCE_KEYS",
    "SourceError",
    "TEMPLATE_ROWS",
    "TEXT_ENCODINGS",
    "TableInfo",
    "UNIQUE",
    "XLSX_LIMITS",
    "activity_timestamps",
    "blank_mask",
    "check_project",
    "check_tables",
    "cross_check",
    "find_source_project",
    "formula_cells",
    "init_project",
    "inspect",
    "neutralise_formulas",
    "parse_rounds",
    "read_source",
    "read_table",
    "read_text",
    "render_table",
    "require_columns",
    "require_dataframe",
    "survey_rounds",
    "template_tables",
    "text_edges",
    "validate",
]
