"""The reports service on in-memory ports: who reads what, refusals naming the rule, ROI assumptions, artefacts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from coaching.adapters.report_render import ReportRenderer
from coaching.auth import Principal, Role
from coaching.domain.errors import Forbidden, GroupTooSmall, NotFound
from coaching.domain.events import ReportDue
from coaching.domain.report_views import CachedTrendPoint, ReportSettings
from coaching.domain.reporting import CellKey, Contribution, Dimension, Filter
from coaching.domain.rollups import Counters, sum_counters
from coaching.services import reports
from coaching.services.reports import ReportContext
from coaching.services.rollups import RollupMeta

ORG, PERIOD = "org-r", "2026-05"
NOW = datetime(2026, 6, 1, 13, tzinfo=UTC)


def _people() -> list[Contribution]:
    found = []
    for i in range(40):
        department = "legal" if i < 2 else ("sales" if i % 2 else "eng")
        coached = i % 4 != 0
        dims = {"programme": "SCALE" if coached else "none", "level": "manager", "department": department,
                "location": "Berlin", "grow_cohort": "none", "newly_promoted": "yes" if i % 5 == 0 else "no",
                "coached": "yes" if coached else "not_yet"}  # fmt: skip
        completed = (i % 3) + 1 if coached else 0
        leaving = i % 7 == 0
        found.append(Contribution(pid=f"p{i:02d}", dims=dims, engaged=coached, completed=completed,
                                  no_shows=1 if i % 6 == 1 else 0, focus=["delegation"] if completed else [],
                                  sessions_on_priorities=completed // 2, terminated=leaving,
                                  regrettable=leaving))  # fmt: skip
    return found


class Reader:
    def __init__(self, cells: dict[CellKey, Counters], settings: ReportSettings | None = None) -> None:
        self.cells, self.settings, self.artefacts = cells, settings, {}
        self.trend_cache: dict[tuple[str, str, str], CachedTrendPoint] = {}

    def month(self, org_id: str, period: str) -> tuple[RollupMeta | None, dict[CellKey, Counters]]:
        if org_id != ORG or period != PERIOD:
            return None, {}
        meta = RollupMeta(org_id=ORG, period=PERIOD, min_group_size=5, priorities=["delegation"],
                          spend_minor=450_000, currency="EUR", built_at=NOW, rebuilt=True)  # fmt: skip
        return meta, self.cells

    def tallies(self, org_id: str, period: str) -> list[Any]:
        return []

    def settings_body(self, org_id: str) -> str | None:
        return self.settings.model_dump_json() if self.settings else None

    def artefact(self, org_id: str, period: str) -> str | None:
        return self.artefacts.get((org_id, period))

    def orgs_with_rollups(self, period: str) -> list[str]:
        return [ORG]

    def trend_points(self, org_id: str, view: str) -> dict[str, CachedTrendPoint]:
        return {period: c for (org, v, period), c in self.trend_cache.items() if (org, v) == (org_id, view)}


class Writer:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.puts = 0

    def put_settings(self, org_id: str, body: str) -> None:
        self.reader.settings = ReportSettings.model_validate_json(body)

    def put_artefact(self, org_id: str, period: str, body: str) -> None:
        self.reader.artefacts[(org_id, period)] = body

    def put_trend_point(self, org_id: str, view: str, period: str, cached: CachedTrendPoint) -> None:
        self.puts += 1
        self.reader.trend_cache[(org_id, view, period)] = cached


class Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def store(self, org_id: str, period: str, files: Any) -> None:
        self.files.update(files)

    def link(self, org_id: str, period: str, name: str, expires_at: datetime) -> str:
        return f"https://example.test/{org_id}/{period}/{name}?until={int(expires_at.timestamp())}"


def _ctx(settings: ReportSettings | None = None) -> tuple[ReportContext, Files]:
    reader = Reader(sum_counters(_people()), settings)
    files = Files()
    return ReportContext(reader=reader, writer=Writer(reader), artefacts=files, renderer=ReportRenderer(),
                         clock=lambda: NOW), files  # fmt: skip


def who(*roles: Role, org: str | None = ORG) -> Principal:
    return Principal(person_id="caller", org_id=org, roles=frozenset(roles))


def test_leaders_org_admins_and_finance_read_their_orgs_report_and_nobody_else_does() -> None:
    ctx, _ = _ctx()
    for role in (Role.LEADER, Role.ORG_ADMIN, Role.FINANCE):
        report = reports.get_report(who(role), ORG, PERIOD, [], ctx)
        assert report.leading.active_people.value == 40
    for caller in (who(Role.EMPLOYEE), who(Role.COACH), who(Role.OPERATOR), who(Role.LEADER, org="other")):
        with pytest.raises(Forbidden):
            reports.get_report(caller, ORG, PERIOD, [], ctx)
    with pytest.raises(NotFound):
        reports.get_report(who(Role.LEADER), ORG, "2026-04", [], ctx)


def test_a_two_person_department_is_refused_naming_the_rule_and_its_complement_too() -> None:
    ctx, _ = _ctx()
    with pytest.raises(GroupTooSmall) as small:
        reports.get_report(who(Role.LEADER), ORG, PERIOD, [Filter(dimension=Dimension.DEPARTMENT, value="legal")], ctx)
    assert small.value.details == {"rule": "minimum_group", "min_group_size": 5}
    sales = reports.get_report(who(Role.LEADER), ORG, PERIOD, [Filter(dimension=Dimension.DEPARTMENT, value="sales")],
                               ctx)  # fmt: skip
    assert sales.filters == {"department": "sales"}


def test_the_roi_prints_every_assumption_and_counts_only_levels_with_both_groups_published() -> None:
    settings = ReportSettings(priorities=["delegation"], replacement_cost={"manager": {"factor": 1.5,
                              "average_salary_minor": 8_000_000}, "executive": {"factor": 2.0,
                              "average_salary_minor": 20_000_000}})  # fmt: skip
    ctx, _ = _ctx(settings)
    roi = reports.get_report(who(Role.FINANCE), ORG, PERIOD, [], ctx).business.roi
    assert roi.spend_minor == 450_000
    assert any("Replacement cost" in a for a in roi.assumptions)
    assert any(a.startswith("executive: not counted") for a in roi.assumptions)  # nobody at that level
    assert roi.value_minor is None or roi.value_minor >= 0
    if roi.value_minor is None:
        assert roi.suppressed == "no_level_with_both_groups_published"


def test_only_an_org_admin_sets_the_report_settings() -> None:
    ctx, _ = _ctx()
    body = ReportSettings(priorities=["delegation"])
    with pytest.raises(Forbidden):
        reports.put_settings(who(Role.LEADER), ORG, body, ctx)
    assert reports.put_settings(who(Role.ORG_ADMIN), ORG, body, ctx) == body
    assert reports.get_settings(who(Role.FINANCE), ORG, ctx).priorities == ["delegation"]


def test_report_due_writes_the_html_and_csvs_and_a_download_is_a_short_lived_link() -> None:
    ctx, files = _ctx()
    with pytest.raises(NotFound):
        reports.download_link(who(Role.LEADER), ORG, PERIOD, "report.html", ctx)
    artefact = reports.on_report_due(ReportDue(org_id=ORG, period=PERIOD), ctx)
    assert artefact.files == ["figures.csv", "report.html", "trends.csv"]
    html = files.files["report.html"].decode()
    assert html.count("<svg") == 6  # growth by GROW cohort and by programme are charts of their own
    assert "Competency growth by cohort" in html
    assert "Competency growth by programme" in html
    assert 'class="growth"' in html  # the growth table: points, % of baseline and people measured per group
    assert "p00" not in html  # no pseudonym, no person
    assert "headline,attendance_percent," in files.files["figures.csv"].decode()
    link = reports.download_link(who(Role.LEADER), ORG, PERIOD, "figures.csv", ctx)
    assert (link.expires_at - NOW).total_seconds() == 300
    # Rendering twice gives the same bytes: a re-run of the month rewrites identical files.
    again = ReportRenderer().render(reports.build_report(ORG, PERIOD, [], ctx),
                                    reports.build_trends(ORG, PERIOD, 12, [], ctx))  # fmt: skip
    assert again == files.files


def test_the_operator_sees_only_published_focus_summed_across_orgs() -> None:
    ctx, _ = _ctx()
    topics = reports.coach_topics(who(Role.OPERATOR, org=None), PERIOD, ctx)
    assert topics.orgs == 1
    assert topics.focus.get("delegation", 0) >= 5
    with pytest.raises(Forbidden):
        reports.coach_topics(who(Role.LEADER), PERIOD, ctx)


def test_the_report_shows_the_programmes_as_cohorts_and_hides_a_small_one_and_its_complement() -> None:
    people = []
    for i, programme in enumerate(["GROW"] * 10 + ["TOGETHER"] * 6 + ["EXEC"] * 2 + ["none"] * 12):
        dims = {"programme": programme, "level": "manager", "department": "eng", "location": "Berlin",
                "grow_cohort": "2026-04" if programme == "GROW" else "none", "newly_promoted": "no",
                "coached": "yes" if programme != "none" else "not_yet"}  # fmt: skip
        took_part = programme != "none"
        people.append(Contribution(pid=f"q{i:02d}", dims=dims, engaged=took_part, completed=2 if took_part else 0,
                                   no_shows=1 if programme == "GROW" and i % 2 else 0))  # fmt: skip
    reader = Reader(sum_counters(people))
    ctx = ReportContext(reader=reader, writer=Writer(reader), artefacts=Files(), renderer=ReportRenderer(),
                        clock=lambda: NOW)  # fmt: skip
    report = reports.get_report(who(Role.LEADER), ORG, PERIOD, [], ctx)
    rows = {row["value"]: row for row in report.programmes.rows}
    assert set(rows) == {"GROW", "TOGETHER", "EXEC", "none"}
    grow = rows["GROW"]
    assert (grow["people"].value, grow["sessions"].value, grow["attendance_percent"].value) == (10, 20, 80.0)  # type: ignore[union-attr]
    assert rows["EXEC"]["people"].suppressed == "minimum_group"  # type: ignore[union-attr]
    # Two people hidden alone could be derived from the org total minus the rest: one more row is hidden.
    complement = [v for v, row in rows.items() if row["people"].suppressed == "complementary_suppression"]  # type: ignore[union-attr]
    assert len(complement) == 1
    # Filtered to a programme, the report is that cohort's; the small one is refused.
    assert reports.get_report(who(Role.LEADER), ORG, PERIOD, [Filter(dimension=Dimension.PROGRAMME, value="GROW")],
                              ctx).leading.active_people.value == 10  # fmt: skip
    with pytest.raises(GroupTooSmall):
        reports.get_report(who(Role.LEADER), ORG, PERIOD, [Filter(dimension=Dimension.PROGRAMME, value="EXEC")], ctx)
    # The monthly artefact shows the same rows: GROW's figures, EXEC as suppressed, and the CSV names them.
    files = ReportRenderer().render(report, reports.build_trends(ORG, PERIOD, 12, [], ctx))
    html = files["report.html"].decode()
    table = html[
        html.index('<table class="programmes">') : html.index("</table>", html.index('<table class="programmes">'))
    ]
    assert "<td>GROW</td><td>10</td><td>20</td><td>80%</td>" in table
    assert "<td>EXEC</td><td>suppressed</td>" in table
    assert "programme,GROW_people,10," in files["figures.csv"].decode()


def test_a_closed_months_trend_point_is_served_again_until_its_inputs_change(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, _ = _ctx()
    writer = ctx.writer
    assert isinstance(writer, Writer)
    computed: list[str] = []
    real = reports.suppress

    def counting(rollup: Any, k: int) -> Any:
        computed.append(rollup.period)
        return real(rollup, k)

    monkeypatch.setattr(reports, "suppress", counting)
    first = reports.build_trends(ORG, PERIOD, 12, [], ctx)
    assert (computed, writer.puts) == ([PERIOD], 1)  # May is closed on 1 June: kept
    again = reports.build_trends(ORG, PERIOD, 12, [], ctx)
    assert again == first
    assert computed == [PERIOD]  # served from the kept point: not suppressed again
    # A rebuild (or a late event) changes a cell: another digest, so the month is computed and kept again.
    assert isinstance(ctx.reader, Reader)
    ctx.reader.cells = sum_counters([*_people(), _people()[5].model_copy(update={"pid": "late"})])
    changed = reports.build_trends(ORG, PERIOD, 12, [], ctx)
    assert computed == [PERIOD, PERIOD]
    assert writer.puts == 2
    assert changed.points[0].active_people.value == first.points[0].active_people.value + 1  # type: ignore[operator]
    # A view of a group that does not exist is answered but not kept; nor is a month still open.
    reports.build_trends(ORG, PERIOD, 12, [Filter(dimension=Dimension.DEPARTMENT, value="nowhere")], ctx)
    assert writer.puts == 2
    open_month = ReportContext(reader=ctx.reader, writer=writer, artefacts=ctx.artefacts, renderer=ctx.renderer,
                               clock=lambda: datetime(2026, 5, 20, tzinfo=UTC))  # fmt: skip
    reports.build_trends(ORG, PERIOD, 12, [Filter(dimension=Dimension.DEPARTMENT, value="eng")], open_month)
    assert writer.puts == 2


def test_priorities_are_framework_competency_ids_hyphens_included() -> None:
    assert ReportSettings(priorities=["giving-feedback", "delegation"]).priorities == ["giving-feedback", "delegation"]
    for wrong in ("Giving Feedback", "-lead", ""):
        with pytest.raises(ValueError, match="priorities"):
            ReportSettings(priorities=[wrong])
