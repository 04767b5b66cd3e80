"""The table contracts (``docs/architecture.md``): what every input table holds, its vocabulary.

:data:`CONTRACTS` gives each table's required and optional columns and which of them are
identifiers, dates and numbers; :data:`UNIQUE` the columns whose values must be unique;
:data:`ALLOWED` the values of coded columns; :data:`COUNT_COLUMNS` and
:data:`DENOMINATOR_COLUMNS` the numbers that count things. The rules that check a table against
its contract are in :mod:`qi_helpers.data.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qi_helpers.measures import CHARTS

__all__ = [
    "ALLOWED",
    "CONTRACTS",
    "COUNT_COLUMNS",
    "DENOMINATOR_COLUMNS",
    "EXAMPLE_PREFIX",
    "READINESS_CHARACTERISTICS",
    "UNIQUE",
    "Contract",
]

#: Identifiers starting with this mark the example rows of the ``qi init`` templates.
EXAMPLE_PREFIX = "EXAMPLE"


@dataclass(frozen=True)
class Contract:
    """What one input table must hold."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    #: Alternative columns of which at least one must be present.
    one_of: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of the table: the required ones, then the optional ones."""
        return (*self.required, *self.optional)


CONTRACTS: dict[str, Contract] = {
    "activities": Contract(
        required=("timestamp", "patient_id", "staff_id", "activity", "location"),
        optional=("encounter_id", "duration_min"),
        ids=("patient_id", "staff_id", "encounter_id"),
        dates=("timestamp",),
        numbers=("duration_min",),
    ),
    "staff": Contract(
        required=("staff_id", "role"),
        optional=("fte", "home_unit"),
        ids=("staff_id",),
        numbers=("fte",),
    ),
    "patients": Contract(
        required=("patient_id",), optional=("age_band", "sex", "conditions"), ids=("patient_id",)
    ),
    "measures": Contract(
        required=("measure_id", "name", "family", "chart", "improvement"),
        optional=("aim", "unit", "multiply", "target", "period", "kind", "balances"),
        ids=("measure_id",),
        numbers=("multiply", "target"),
    ),
    "measure_events": Contract(
        required=("measure_id", "timestamp", "value"),
        optional=("patient_id", "staff_id", "location", "denominator_weight"),
        ids=("measure_id", "patient_id", "staff_id"),
        dates=("timestamp",),
        numbers=("value", "denominator_weight"),
        one_of=("patient_id", "staff_id", "location"),
    ),
    "observations": Contract(
        required=("microsystem_id", "measure_id", "period"),
        optional=("numerator", "value", "denominator"),
        ids=("microsystem_id", "measure_id"),
        dates=("period",),
        numbers=("numerator", "value", "denominator"),
        one_of=("numerator", "value"),
    ),
    "pdsa": Contract(
        required=("microsystem_id", "cycle_id", "change", "start"),
        optional=("end", "prediction", "result", "decision", "measure_ids"),
        ids=("microsystem_id", "cycle_id"),
        dates=("start", "end"),
    ),
    "readiness": Contract(
        required=("characteristic", "score"),
        # round: the survey round, a whole number (1, 2, ...) or an ISO date, one kind per
        # file (qi_helpers.data.rounds); without it every answer is one round.
        optional=("staff_id", "microsystem_id", "round"),
        ids=("staff_id", "microsystem_id"),
        numbers=("score",),
        one_of=("staff_id", "microsystem_id"),
    ),
    "adoption": Contract(
        required=("microsystem_id", "change", "adopted"),
        ids=("microsystem_id",),
        dates=("adopted",),
    ),
    # One row per change idea and measure that shows it; an empty microsystem_id is the whole
    # organisation's diagram. Its rules: qi_helpers.data.driver_checks.
    "drivers": Contract(
        required=("aim", "primary_driver", "secondary_driver", "change"),
        optional=("microsystem_id", "measure_id"),
        ids=("microsystem_id", "measure_id"),
    ),
}

#: Columns whose values must be unique in their table (together, for several columns).
UNIQUE: dict[str, tuple[str, ...]] = {
    "staff": ("staff_id",),
    "patients": ("patient_id",),
    "measures": ("measure_id",),
    "pdsa": ("microsystem_id", "cycle_id"),
}

#: The ten success characteristics of a clinical microsystem (``readiness.characteristic``).
READINESS_CHARACTERISTICS = (
    "leadership",
    "organisational_support",
    "staff_focus",
    "education_and_training",
    "interdependence",
    "patient_focus",
    "community_and_market_focus",
    "performance_results",
    "process_improvement",
    "information_and_information_technology",
)

#: Allowed values of coded columns: (table, column) -> (values, level of a breach). Values are
#: compared after trimming spaces (and, except for characteristics, in lower case).
ALLOWED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("measures", "family"): (("outcome", "process", "balancing"), "error"),
    ("measures", "chart"): (CHARTS, "error"),
    ("measures", "improvement"): (("up", "down"), "error"),
    ("measures", "period"): (("week", "month"), "error"),
    ("measures", "aim"): (
        ("safe", "effective", "patient-centred", "timely", "efficient", "equitable"),
        "warning",
    ),
    ("pdsa", "decision"): (("adopt", "adapt", "abandon", "ongoing"), "error"),
    ("readiness", "characteristic"): (READINESS_CHARACTERISTICS, "error"),
}

#: Number columns that count things: negative values are errors.
COUNT_COLUMNS: frozenset[tuple[str, str]] = frozenset(
    {
        ("observations", "numerator"),
        ("observations", "denominator"),
        ("measure_events", "denominator_weight"),
        ("staff", "fte"),
    }
)
#: Denominators: zero is allowed but warned about (the point cannot be charted).
DENOMINATOR_COLUMNS: frozenset[tuple[str, str]] = frozenset(
    {("observations", "denominator"), ("measure_events", "denominator_weight")}
)
