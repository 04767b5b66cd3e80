"""Charts draw exactly the numbers qic() returns (read back from the Line2D objects)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from qi_helpers.errors import QIError  # noqa: E402
from qi_helpers.spc.plots import POINT_COLOURS, plot_qic, plot_qic_facets  # noqa: E402
from qi_helpers.spc.qic import qic  # noqa: E402
from qi_helpers.spc.rules import signals  # noqa: E402


def lines(ax, gid: str) -> list:
    return [ln for ln in ax.get_lines() if ln.get_gid() == gid]


def xy(line) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata(), dtype=float)


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.fixture
def weekly() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = rng.integers(40, 90, 30)
    p = np.r_[np.full(18, 0.2), np.full(12, 0.1)]
    return pd.DataFrame(
        {
            "week": pd.date_range("2024-01-01", periods=30, freq="W-MON"),
            "harm": rng.binomial(n, p),
            "patients": n,
        }
    )


def test_plotted_lines_equal_returned_data_with_dates(weekly: pd.DataFrame) -> None:
    res = qic(weekly, "week", "harm", "patients", chart="p", part=[18], target=0.15)
    fig = plot_qic(res, improvement="down")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (data,) = lines(ax, "y")
    x, y = xy(data)
    assert same(y, res["y"])
    assert (pd.to_datetime(x) == res["x"].to_numpy()).all()
    for name in ("cl", "ucl", "lcl"):
        parts = lines(ax, name)
        assert len(parts) == 2  # new limits per part
        got = np.concatenate([xy(ln)[1] for ln in parts])
        assert same(got, res[name]), name
        assert all(ln.get_drawstyle() == "steps-mid" for ln in parts)  # stepped as n varies
    (target,) = lines(ax, "target")
    assert same(xy(target)[1], res["target"])
    assert not lines(ax, "ucl_95")


def test_dashed_centre_line_when_runs_signal(weekly: pd.DataFrame) -> None:
    res = qic(weekly, "week", "harm", "patients", chart="p")
    assert res["runs_signal"].all()  # the shift after week 18 is a runs signal (qicharts2 rule)
    (cl,) = lines(plot_qic(res).axes[0], "cl")
    assert cl.get_linestyle() == "--"
    steady = pd.DataFrame({"y": [1.0, 3, 2, 4, 1, 3, 2, 4, 1, 3, 2, 4]})  # 11 crossings
    res = qic(steady, y="y", chart="i")
    assert not res["runs_signal"].any()
    (cl,) = lines(plot_qic(res).axes[0], "cl")
    assert cl.get_linestyle() == "-"


def test_signal_points_coloured_by_point_type() -> None:
    y = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 30, 10, 11, 9, 10, 11, 10, 9, 10, 11]
    res = qic(pd.DataFrame({"y": y}), y="y", chart="i")
    assert res["sigma_signal"].iloc[10]
    pts = signals(res, "mdc", improvement="down").points
    fig = plot_qic(res, improvement="down", rules="mdc")
    ax = fig.axes[0]
    (sc,) = [c for c in ax.collections if c.get_gid() == "signals"]
    special = pts["point_type"] != "common_cause"
    assert same(sc.get_offsets()[:, 1], res.loc[special, "y"])
    colours = [mcolors.to_hex(c) for c in sc.get_facecolors()]
    assert colours == [POINT_COLOURS[t].lower() for t in pts.loc[special, "point_type"]]
    assert POINT_COLOURS["special_cause_concern"].lower() in colours


def test_integer_and_string_x_and_annotations() -> None:
    d = pd.DataFrame({"month": ["2024-01", "2024-02", "2024-03", "2024-04"], "y": [3, 5, 4, 6]})
    res = qic(d, "month", "y", chart="c")
    pdsa = pd.DataFrame({"date": ["2024-03"], "label": ["PDSA 1: huddle"]})
    ax = plot_qic(res, annotations=pdsa).axes[0]
    x, y = xy(lines(ax, "y")[0])
    assert same(x, [0, 1, 2, 3]) and same(y, res["y"])
    assert [t.get_text() for t in ax.get_xticklabels()] == d["month"].tolist()
    assert [t.get_text().strip() for t in ax.texts] == ["PDSA 1: huddle"]
    assert same(xy(lines(ax, "annotation")[0])[0], [2, 2])

    res = qic(pd.DataFrame({"i": [1, 2, 3, 4, 5], "y": [2.0, 3, 2, 4, 3]}), "i", "y", chart="i")
    ax = plot_qic(res, annotations=pd.DataFrame({"date": [3], "label": ["test"]})).axes[0]
    assert same(xy(lines(ax, "y")[0])[0], res["x"])


def test_date_annotations_and_readable_axis(weekly: pd.DataFrame) -> None:
    res = qic(weekly, "week", "harm", "patients", chart="p")
    pdsa = pd.DataFrame({"date": [pd.Timestamp("2024-05-06")], "label": ["PDSA 2"]})
    fig = plot_qic(res, annotations=pdsa, show_95=True)
    ax = fig.axes[0]
    assert [t.get_text().strip() for t in ax.texts] == ["PDSA 2"]
    assert len(lines(ax, "ucl_95")) == 1
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert any(lab for lab in labels) and all(len(lab) <= 10 for lab in labels)


def test_caller_axes_is_used_and_not_closed(weekly: pd.DataFrame) -> None:
    caller = Figure()
    ax = caller.add_subplot()
    ax.plot([0, 1], [0, 1], gid="mine")
    res = qic(weekly, "week", "harm", "patients", chart="p")
    fig = plot_qic(res, ax=ax)
    assert fig is caller and caller.axes == [ax]
    assert lines(ax, "mine") and lines(ax, "y")


def test_small_multiples_match_each_facet() -> None:
    rng = np.random.default_rng(3)
    d = pd.DataFrame(
        {
            "ward": np.repeat(["A", "B", "C", "D"], 15),
            "day": np.tile(np.arange(1, 16), 4),
            "falls": rng.poisson(4, 60),
            "bed_days": rng.integers(200, 400, 60),
        }
    )
    res = qic(d, "day", "falls", "bed_days", chart="u", facets="ward", multiply=1000)
    fig = plot_qic_facets(res, ncols=3)
    assert len(fig.axes) == 4
    for ax, (ward, sub) in zip(fig.axes, res.groupby("facet1"), strict=True):
        assert ax.get_title(loc="left") == ward
        assert same(xy(lines(ax, "y")[0])[1], sub["y"])
        assert same(xy(lines(ax, "ucl")[0])[1], sub["ucl"])
    assert len(plot_qic(res).axes) == 4  # plot_qic delegates for facetted results
    with pytest.raises(QIError, match="several facets"):
        plot_qic(res, ax=Figure().add_subplot())


def test_bad_chart_input() -> None:
    with pytest.raises(QIError, match="columns missing"):
        plot_qic(pd.DataFrame({"x": [1]}))
    res = qic(pd.DataFrame({"y": [1.0, 2, 3]}), y="y")
    with pytest.raises(QIError, match="annotations"):
        plot_qic(res, annotations=pd.DataFrame({"when": [1]}))
