"""A measure's catalogue row means the same in every workbook (qi_helpers.measures)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from qi_helpers.errors import DataError
from qi_helpers.measures import (
    CHARTS,
    COUNT_CHARTS,
    PROPORTION_CHARTS,
    Measure,
    detection_chart,
    multiply_factor,
)


def _row(**values):
    base = {"measure_id": "m1", "name": "HbA1c tested", "chart": "p", "improvement": "up"}
    return pd.Series({**base, **values})


@pytest.mark.parametrize("blank", [None, math.nan, "", 0, "n/a"])
def test_a_blank_multiply_is_a_factor_of_one(blank):
    assert Measure.from_row(_row(multiply=blank)).multiply == 1.0
    assert multiply_factor(blank) == 1.0


def test_a_written_multiply_and_target_are_read_as_numbers():
    measure = Measure.from_row(_row(multiply="100", target="85", unit="%"))
    assert (measure.multiply, measure.target, measure.unit) == (100.0, 85.0, "%")
    assert math.isnan(Measure.from_row(_row()).target)


@pytest.mark.parametrize("written, up", [("up", True), ("Down", False), (" UP ", True)])
def test_the_direction_of_improvement_is_read_whatever_its_case(written, up):
    assert Measure.from_row(_row(improvement=written)).up is up


@pytest.mark.parametrize("written", [None, "", "higher", math.nan])
def test_a_direction_is_never_guessed(written):
    with pytest.raises(DataError, match=r"measures: column 'improvement' of measure 'm1'"):
        Measure.from_row(_row(improvement=written))


def test_the_chart_families():
    assert PROPORTION_CHARTS < COUNT_CHARTS <= set(CHARTS)
    assert [detection_chart(c) for c in ("p", "PP", "u", "up", "i", "xbar", "c")] == [
        "p",
        "p",
        "u",
        "u",
        "i",
        "i",
        "i",
    ]
