"""The monthly report as files: one self-contained HTML page (charts inlined as SVG) and two CSVs.

Charts are drawn by matplotlib at build time, imported on first render only, so report_generation's cold
start does not pay for it (bench/cold_start.py). A suppressed figure is drawn as an empty, hatched bar
labelled "suppressed", never as a zero.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import Any

from coaching.domain.report_views import Breakdown, Report
from coaching.domain.reporting import Figure
from coaching.services.reports import Trends

_SUPPRESSED = "suppressed"
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2733;background:#fff}
h1{margin-bottom:.2rem} .muted{color:#5b6776}
.headline{display:flex;gap:1rem;margin:1rem 0}
.card{border:1px solid #d5dbe3;border-radius:8px;padding:1rem 1.4rem;min-width:12rem}
.card .value{font-size:2rem;font-weight:700} .charts{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}
figure{margin:0;border:1px solid #e3e8ee;border-radius:8px;padding:.5rem} figcaption{font-weight:600;margin:.3rem}
table{border-collapse:collapse;margin:1rem 0} td,th{border:1px solid #d5dbe3;padding:.3rem .6rem;text-align:left}
"""


def _fmt(figure: Figure, unit: str = "") -> str:
    if figure.value is None:
        return _SUPPRESSED if figure.suppressed != "no_data" else "no data"
    return f"{figure.value:g}{unit}"


def _size(figure: Figure) -> str:
    return f"{figure.group_size} people" if figure.group_size is not None else f"hidden: {figure.suppressed}"


def _svg(fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def _bars(plt: Any, title: str, labels: Sequence[str], figures: Sequence[Figure], unit: str = "") -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.0), dpi=100)
    values = [f.value if f.value is not None else 0.0 for f in figures]
    colours = ["#2f6fb3" if f.value is not None else "#ffffff" for f in figures]
    bars = ax.bar(labels, values, color=colours, edgecolor="#2f6fb3")
    top = max([v for v in values if v] or [1.0])
    for bar, figure in zip(bars, figures, strict=True):
        if figure.value is None:
            bar.set_hatch("//")
            bar.set_height(top * 0.15)
            ax.annotate(_SUPPRESSED, (bar.get_x() + bar.get_width() / 2, top * 0.17), ha="center", fontsize=8)
        else:
            ax.annotate(f"{figure.value:g}{unit}", (bar.get_x() + bar.get_width() / 2, figure.value), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
    ax.set_ylim(0, top * 1.2)
    if len(labels) > 4 or max(len(label) for label in labels) > 10:  # cohort months and long names would overlap
        ax.tick_params(axis="x", labelrotation=35, labelsize=7)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def _line(plt: Any, title: str, periods: Sequence[str], figures: Sequence[Figure], unit: str = "") -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.0), dpi=100)
    # Each point at its month's position: plotting the period strings would make a category axis of the shown
    # months only, and put every point after a hidden month under the wrong tick.
    shown = [(i, f.value) for i, f in enumerate(figures) if f.value is not None]
    hidden = [i for i, f in enumerate(figures) if f.value is None]
    if shown:
        ax.plot([i for i, _ in shown], [v for _, v in shown], marker="o", color="#2f6fb3", linewidth=2)
        for i, v in shown:
            ax.annotate(f"{v:g}{unit}", (i, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    for i in hidden:
        ax.axvspan(i - 0.4, i + 0.4, color="#d5dbe3", alpha=0.6)
        ax.annotate(_SUPPRESSED, (i, 0), ha="center", fontsize=7, rotation=90)
    if not shown and not hidden:
        ax.annotate("no months yet", (0.5, 0.5), xycoords="axes fraction", ha="center")
    ax.set_xticks(range(len(periods)), list(periods), rotation=45, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "coaching-report"  # the same report gives the same file
    import matplotlib.pyplot as plt

    return plt


def _card(title: str, figure: Figure, unit: str = "") -> str:
    return (f'<div class="card headline-figure"><div class="muted">{html.escape(title)}</div>'
            f'<div class="value">{html.escape(_fmt(figure, unit))}</div>'
            f'<div class="muted">{html.escape(_size(figure))}</div></div>')  # fmt: skip


def _chart(caption: str, svg: str) -> str:
    return f'<figure class="chart"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>'


_PROGRAMME_COLUMNS = (("people", ""), ("sessions", ""), ("attendance_percent", "%"))


def _as_figure(value: Figure | str) -> Figure:
    return value if isinstance(value, Figure) else Figure.model_validate(value)


_GROWTH_LABELS = {"grow_cohort": "GROW cohort", "programme": "Programme", "level": "Level",
                  "newly_promoted": "Newly promoted"}  # fmt: skip


def _growth_bars(plt: Any, axis: str, rows: Sequence[dict[str, Figure | str]], org: Figure) -> str:
    """Growth as % of baseline per group (a cohort "none": people in no GROW cohort); the org alone if none."""
    labels = [str(row["value"]) for row in rows] or ["org"]
    found = [_as_figure(row["competency_growth_percent"]) for row in rows] or [org]
    return _bars(plt, f"Growth % of baseline by {axis.lower()}", labels, found, "%")


def _growth_table(breakdowns: Sequence[Breakdown]) -> str:
    rows = []
    for b in breakdowns:
        for row in b.rows:
            points, percent = _as_figure(row["competency_growth"]), _as_figure(row["competency_growth_percent"])
            label = f"{_GROWTH_LABELS.get(b.dimension, b.dimension)}: {row['value']}"
            size = points.group_size if points.group_size is not None else f"hidden ({points.suppressed})"
            cells = (label, _fmt(points), _fmt(percent, "%"), str(size))
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def render_html(report: Report, trends: Trends) -> str:
    plt = _pyplot()
    lead, lag = report.leading, report.lagging
    growth = {b.dimension: b.rows for b in lag.growth_by_cohort}
    periods = [p.period for p in trends.points]
    charts = [
        _chart("Utilisation: people by sessions this month",
               _bars(plt, "People by sessions", list(lead.utilisation), list(lead.utilisation.values()))),
        _chart("Attendance by month", _line(plt, "Attendance %", periods, [p.attendance_percent for p in trends.points],
                                            "%")),
        _chart("NPS trend", _line(plt, "NPS", periods, [p.nps for p in trends.points])),
        _chart("Competency growth by cohort", _growth_bars(plt, "GROW cohort", growth.get("grow_cohort", []),
                                                         lag.competency_growth_percent)),
        _chart("Competency growth by programme", _growth_bars(plt, "Programme", growth.get("programme", []),
                                                            lag.competency_growth_percent)),
        _chart("North Star alignment",
               _bars(plt, "Share aimed at priorities", ["sessions", "goals"],
                     [report.north_star.sessions_on_priorities_percent, report.north_star.goals_on_priorities_percent],
                     "%")),
    ]  # fmt: skip
    roi = report.business.roi
    roi_value = "suppressed" if roi.value_minor is None else f"{roi.value_minor / 100:,.2f} {roi.currency}"
    assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in roi.assumptions)
    attrition = "".join(
        f"<tr><td>{html.escape(a.group)}</td><td>{html.escape(_fmt(a.people))}</td>"
        f"<td>{html.escape(_fmt(a.regrettable))}</td><td>{html.escape(_fmt(a.rate_percent, '%'))}</td></tr>"
        for a in report.business.attrition
    )
    priorities = ", ".join(report.north_star.priorities) or "none set"
    programmes = "".join(
        f"<tr><td>{html.escape(str(row['value']))}</td>"
        + "".join(f"<td>{html.escape(_fmt(_as_figure(row[name]), unit))}</td>" for name, unit in _PROGRAMME_COLUMNS)
        + "</tr>"
        for row in report.programmes.rows
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Coaching report {html.escape(report.period)}</title>
<style>{_CSS}</style></head><body>
<h1>Coaching report: {html.escape(report.period)}</h1>
<p class="muted">Every figure counts at least {report.min_group_size} people; smaller groups, and groups that would
let one be derived, are shown as suppressed.</p>
<section class="headline">
{_card("Attendance", report.headline.attendance_percent, "%")}
{_card("NPS", report.headline.nps)}
{_card("Competency growth", report.headline.competency_growth_percent, "%")}
</section>
<section class="charts">{"".join(charts)}</section>
<h2>Programmes</h2>
<table class="programmes"><tr><th>Programme</th><th>People</th><th>Sessions</th><th>Attendance</th></tr>
{programmes}</table>
<h2>Competency growth by cohort and programme</h2>
<table class="growth"><tr><th>Group</th><th>Growth (points, 1-5 scale)</th><th>Growth (% of baseline)</th>
<th>People measured</th></tr>
{_growth_table(lag.growth_by_cohort)}</table>
<h2>Business</h2>
<table><tr><th>Group</th><th>People</th><th>Regrettable leavers</th><th>Rate</th></tr>{attrition}</table>
<p>ROI estimate: <strong>{html.escape(roi_value)}</strong> against spend of
{roi.spend_minor / 100:,.2f} {html.escape(roi.currency)}.</p><ul class="assumptions">{assumptions}</ul>
<p>North Star priorities: {html.escape(priorities)}</p>
</body></html>
"""


def _figure_rows(report: Report) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(section: str, name: str, figure: Figure) -> None:
        value = "" if figure.value is None else f"{figure.value:g}"
        rows.append([section, name, value, "" if figure.group_size is None else str(figure.group_size),
                     figure.suppressed or ""])  # fmt: skip

    for name, figure in report.headline.model_dump().items():
        add("headline", name, Figure.model_validate(figure))
    lead = report.leading
    for name in ("active_people", "sessions", "attendance_percent", "satisfaction", "nps", "goal_progress_percent"):
        add("leading", name, getattr(lead, name))
    for bucket, figure in lead.utilisation.items():
        add("utilisation", bucket, figure)
    add("lagging", "competency_growth_points", report.lagging.competency_growth_points)
    add("lagging", "competency_growth_percent", report.lagging.competency_growth_percent)
    add("lagging", "manager_effectiveness", report.lagging.manager_effectiveness)
    for a in report.business.attrition:
        add("attrition", f"{a.group}_regrettable_rate_percent", a.rate_percent)
    add("north_star", "sessions_on_priorities_percent", report.north_star.sessions_on_priorities_percent)
    add("north_star", "goals_on_priorities_percent", report.north_star.goals_on_priorities_percent)
    for row in report.programmes.rows:
        for name, _unit in _PROGRAMME_COLUMNS:
            add("programme", f"{row['value']}_{name}", _as_figure(row[name]))
    for b in report.lagging.growth_by_cohort:
        for row in b.rows:
            for name in ("competency_growth", "competency_growth_percent"):
                add(f"growth_by_{b.dimension}", f"{row['value']}_{name}", _as_figure(row[name]))
    return rows


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


class ReportRenderer:
    def render(self, report: Report, trends: Trends) -> dict[str, bytes]:
        trend_rows = [
            [p.period, *(("" if f.value is None else f"{f.value:g}") for f in (p.active_people, p.sessions,
             p.attendance_percent, p.satisfaction, p.nps, p.competency_growth_percent))]
            for p in trends.points
        ]  # fmt: skip
        return {
            "report.html": render_html(report, trends).encode("utf-8"),
            "figures.csv": _csv(["section", "figure", "value", "group_size", "suppressed"], _figure_rows(report)),
            "trends.csv": _csv(
                [
                    "period",
                    "active_people",
                    "sessions",
                    "attendance_percent",
                    "satisfaction",
                    "nps",
                    "competency_growth_percent",
                ],
                trend_rows,
            ),
        }
