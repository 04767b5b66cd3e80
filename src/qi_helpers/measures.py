"""A measure of the catalogue (the ``measures`` table) and the families of charts.

Every step reads a measure's row through :meth:`Measure.from_row`, so a blank ``multiply`` or the
direction of improvement means the same thing in workbooks 02, 03 and 04; and every step asks
the chart taxonomy here which charts count events, which chart proportions and which chart a
simulation of time to detect uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qi_helpers.errors import DataError

__all__ = [
    "CHARTS",
    "COUNT_CHARTS",
    "PROPORTION_CHARTS",
    "RATE_CHARTS",
    "Measure",
    "detection_chart",
    "multiply_factor",
]

#: Every chart a measure may name in the catalogue's ``chart`` column (qicharts2's chart types).
CHARTS: tuple[str, ...] = ("run", "i", "ip", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g")
#: Charts of a proportion (numerator over denominator, the denominator a count of cases).
PROPORTION_CHARTS: frozenset[str] = frozenset({"p", "pp"})
#: Charts of a rate (events per unit of exposure).
RATE_CHARTS: frozenset[str] = frozenset({"u", "up"})
#: Charts whose values are counts of events, which cannot be negative.
COUNT_CHARTS: frozenset[str] = PROPORTION_CHARTS | RATE_CHARTS | {"c", "g"}


def detection_chart(chart: str) -> str:
    """The chart a baseline is judged and simulated on: ``"p"``, ``"u"`` or ``"i"``.

    Laney's p' and u' charts are judged as p and u charts; every other chart (means, counts,
    times) as an I chart of the period values, which is how such a series is usually watched.
    """
    chart = str(chart).lower()
    return "p" if chart in PROPORTION_CHARTS else "u" if chart in RATE_CHARTS else "i"


def multiply_factor(value: Any) -> float:
    """A catalogue's ``multiply`` as a factor: a blank, zero or non-numeric value means 1."""
    number = _number(value)
    return number if math.isfinite(number) and number != 0 else 1.0


def _number(value: Any) -> float:
    number = pd.to_numeric(value, errors="coerce")
    return float(number) if pd.notna(number) else math.nan


@dataclass(frozen=True)
class Measure:
    """One row of the measure catalogue, read once with the same defaults everywhere.

    Attributes
    ----------
    measure_id, name : str
        The measure's id and name.
    chart : str
        Its chart type, lower case (one of :data:`CHARTS`).
    improvement : str
        ``"up"`` or ``"down"``: the direction in which the measure gets better. Required: a
        direction is never guessed.
    multiply : float
        The factor from the charted ratio to the shown value (100 for percent); a blank, zero
        or non-numeric value means 1.
    target : float
        The team's target on the shown scale, ``nan`` when there is none.
    unit : str
        The unit shown next to values (``""`` when blank).
    """

    measure_id: str
    name: str
    chart: str
    improvement: str
    multiply: float = 1.0
    target: float = math.nan
    unit: str = ""

    @property
    def up(self) -> bool:
        """Whether a higher value is better."""
        return self.improvement == "up"

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | pd.Series) -> Measure:
        """Read a catalogue row (a ``measures`` table row as a Series or mapping).

        Raises
        ------
        DataError
            When ``improvement`` is not ``up`` or ``down``, naming the measure.
        """
        get = row.get
        measure_id = str(get("measure_id", ""))
        improvement = str(get("improvement", "")).strip().lower()
        if improvement not in ("up", "down"):
            raise DataError(
                f"measures: column 'improvement' of measure {measure_id!r} is "
                f"{get('improvement', '(missing)')!r}; write 'up' or 'down'."
            )
        unit = get("unit")
        return cls(
            measure_id=measure_id,
            name=str(get("name", measure_id)),
            chart=str(get("chart", "")).strip().lower(),
            improvement=improvement,
            multiply=multiply_factor(get("multiply")),
            target=_number(get("target")),
            unit="" if unit is None or (not isinstance(unit, str) and pd.isna(unit)) else str(unit),
        )
