"""The monthly report's charts place what they draw where its labels say (matplotlib, drawn for real)."""

from __future__ import annotations

from typing import Any

import pytest
from coaching.adapters import report_render
from coaching.domain.reporting import Figure


@pytest.fixture
def plotted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The x positions and tick labels of the last chart drawn."""
    plt = report_render._pyplot()
    seen: dict[str, Any] = {}
    real = plt.subplots

    def spying(*args: Any, **kwargs: Any) -> Any:
        fig, ax = real(*args, **kwargs)
        plot = ax.plot

        def recording(x: Any, y: Any, **style: Any) -> Any:
            seen["x"], seen["y"] = list(x), list(y)
            return plot(x, y, **style)

        ax.plot = recording
        seen["ax"] = ax
        return fig, ax

    monkeypatch.setattr(plt, "subplots", spying)
    seen["plt"] = plt
    return seen


def test_a_trend_point_sits_on_its_own_month_when_an_earlier_month_is_hidden(plotted):
    periods = ["2026-08", "2026-09", "2026-10", "2026-11"]
    figures = [Figure(suppressed="minimum_group"), Figure(value=40.0, group_size=6), Figure(suppressed="minimum_group"),
               Figure(value=55.0, group_size=7)]  # fmt: skip
    svg = report_render._line(plotted["plt"], "NPS", periods, figures)
    assert svg.startswith("<svg")
    ticks = [label.get_text() for label in plotted["ax"].get_xticklabels()]
    assert [ticks[int(x)] for x in plotted["x"]] == ["2026-09", "2026-11"]
    assert plotted["y"] == [40.0, 55.0]


def test_long_or_many_bar_labels_are_turned_so_they_do_not_overlap(plotted):
    labels = ["2026-01", "2026-03", "2026-05", "2026-07", "none"]
    report_render._bars(plotted["plt"], "Growth", labels, [Figure(value=10.0, group_size=5)] * 5, "%")
    assert {label.get_rotation() for label in plotted["ax"].get_xticklabels()} == {35.0}
    report_render._bars(plotted["plt"], "Growth", ["SCALE", "GROW"], [Figure(value=10.0, group_size=5)] * 2, "%")
    assert {label.get_rotation() for label in plotted["ax"].get_xticklabels()} == {0.0}
