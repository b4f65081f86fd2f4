"""The book's plotting helpers: tick labels a reader can read."""

import matplotlib

matplotlib.use("Agg")

import pytest

from concrete_ref.plotting import new_figure, plain_log_ticks


def _labels(ax, axis):
    ax.figure.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    values = ax.get_xticks() if axis == "x" else ax.get_yticks()
    return [t.get_text() for t, v in zip(ticks, values) if lo <= v <= hi and t.get_text()]


def test_less_than_a_decade_gets_several_plain_labels():
    fig, ax = new_figure()
    ax.plot([0.1, 100], [55.0, 75.0])
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    labels = _labels(ax, "y")
    assert len(labels) >= 3
    assert all("10^" not in t and "times" not in t for t in labels)
    lo, hi = sorted(ax.get_ylim())
    assert all(lo <= float(t) <= hi for t in labels)  # plain numbers, inside the axis


def test_decades_keep_their_ticks_with_plain_labels():
    fig, ax = new_figure()
    ax.plot([0.1, 100], [1.0, 2.0])
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    assert {"0.1", "1", "10", "100"} <= set(_labels(ax, "x"))


def test_one_to_three_decades_get_1_2_5_ticks():
    fig, ax = new_figure()
    ax.plot([0.1, 100], [60.0, 800.0])
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    assert {"100", "200", "500"} <= set(_labels(ax, "y"))


def test_bad_axis_is_named():
    fig, ax = new_figure()
    with pytest.raises(ValueError, match="axis"):
        plain_log_ticks(ax, "z")
