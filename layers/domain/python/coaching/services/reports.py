"""Reports: leaders, org admins and finance read their org's suppressed figures; operators the coach aggregate.

Every read builds the month's `Rollup` from the rollup cells and the capture tallies (never from a person),
suppresses the whole linked system once with the org's minimum group (copied into the month's META by the
rollups function), and publishes the figures of the selected group. Trends keep each closed month's published
point per view with the digest of its inputs (`month_digest`: k, priorities, cells, tallies, code): a month whose
digest is unchanged is served from it without suppressing again; a rebuild, a late event or a deploy that changes
anything gives another digest, so the point is recomputed (and stored again). The monthly `ReportDue` renders the
month's HTML report and CSVs and stores them; a download is a short-lived link to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.common import Clock, StrictModel
from coaching.domain.errors import InvalidInput, NotFound
from coaching.domain.events import ReportDue
from coaching.domain.measures import TallyCell
from coaching.domain.report_views import (
    CachedTrendPoint,
    CoachTopics,
    Report,
    ReportSettings,
    TrendPoint,
    add_published_focus,
    month_digest,
    org_report,
    trend_point,
)
from coaching.domain.reporting import (
    ORG_CELL,
    CellKey,
    Dimension,
    Filter,
    Rollup,
    Suppression,
    Tally,
    breakdown,
    encode_cell,
    figures,
    suppress,
)
from coaching.domain.rollups import Counters, period_of, rollup_from_counters, tally_of
from coaching.services.rollups import RollupMeta

READERS = (Role.LEADER, Role.ORG_ADMIN, Role.FINANCE)
LINK_LIFETIME = timedelta(minutes=5)
ARTEFACT_FILES = ("report.html", "figures.csv", "trends.csv")
TREND_MONTHS = 12


class ReportReadPort(Protocol):
    def month(self, org_id: str, period: str) -> tuple[RollupMeta | None, dict[CellKey, Counters]]: ...

    def tallies(self, org_id: str, period: str) -> list[TallyCell]: ...

    def settings_body(self, org_id: str) -> str | None: ...

    def artefact(self, org_id: str, period: str) -> str | None: ...

    def orgs_with_rollups(self, period: str) -> list[str]: ...

    def trend_points(self, org_id: str, view: str) -> dict[str, CachedTrendPoint]:
        """The cached trend points of one view, by month (one Query of the org's report partition)."""
        ...


class ReportWritePort(Protocol):
    def put_settings(self, org_id: str, body: str) -> None: ...

    def put_artefact(self, org_id: str, period: str, body: str) -> None: ...

    def put_trend_point(self, org_id: str, view: str, period: str, cached: CachedTrendPoint) -> None: ...


class ArtefactPort(Protocol):
    def store(self, org_id: str, period: str, files: Mapping[str, bytes]) -> None: ...

    def link(self, org_id: str, period: str, name: str, expires_at: datetime) -> str: ...


class Trends(StrictModel):
    org_id: str
    filters: dict[str, str]
    min_group_size: int | None
    points: list[TrendPoint]


class RendererPort(Protocol):
    def render(self, report: Report, trends: Trends) -> dict[str, bytes]: ...


@dataclass(frozen=True, slots=True)
class ReportContext:
    reader: ReportReadPort
    writer: ReportWritePort
    artefacts: ArtefactPort
    renderer: RendererPort
    clock: Clock


class Artefact(StrictModel):
    org_id: str
    period: str
    files: list[str]
    written_at: datetime


class DownloadLink(StrictModel):
    url: str
    expires_at: datetime


def _authorise(caller: Principal, org_id: str) -> None:
    caller.require_same_org(org_id, *READERS)


def _period_months(end: str, count: int) -> list[str]:
    year, month = (int(p) for p in end.split("-"))
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return sorted(found)


def settings_of(org_id: str, ctx: ReportContext) -> ReportSettings:
    body = ctx.reader.settings_body(org_id)
    return ReportSettings.model_validate_json(body) if body else ReportSettings()


def month_rollup(org_id: str, period: str, ctx: ReportContext) -> tuple[Rollup, Suppression, RollupMeta] | None:
    """The month's rollup and its suppression, or None when the rollups function has not built it."""
    meta, cells = ctx.reader.month(org_id, period)
    if meta is None:
        return None
    tallies = [tally_of(t) for t in ctx.reader.tallies(org_id, period)]
    return _suppressed(org_id, period, meta, cells, tallies)


def _suppressed(org_id: str, period: str, meta: RollupMeta, cells: Mapping[CellKey, Counters],
                tallies: Sequence[Tally]) -> tuple[Rollup, Suppression, RollupMeta]:  # fmt: skip
    rollup = rollup_from_counters(org_id, period, cells, tallies, meta.priorities)
    return rollup, suppress(rollup, meta.min_group_size), meta


def _required(org_id: str, period: str, ctx: ReportContext) -> tuple[Rollup, Suppression, RollupMeta]:
    found = month_rollup(org_id, period, ctx)
    if found is None:
        raise NotFound(f"no rollup of {period} for this organisation yet (rollups are built daily)")
    return found


def build_report(org_id: str, period: str, filters: Sequence[Filter], ctx: ReportContext) -> Report:
    rollup, protection, meta = _required(org_id, period, ctx)
    return org_report(rollup, protection, filters, settings_of(org_id, ctx), meta.spend_minor, meta.currency)


def get_report(caller: Principal, org_id: str, period: str, filters: Sequence[Filter], ctx: ReportContext) -> Report:
    _authorise(caller, org_id)
    return build_report(org_id, period, filters, ctx)


def build_trends(org_id: str, end: str, months: int, filters: Sequence[Filter], ctx: ReportContext) -> Trends:
    if len(filters) > 2 or len({f.dimension for f in filters}) != len(filters):
        raise InvalidInput("at most two filters, each on another dimension", field="filter")
    view: CellKey = tuple(sorted((f.dimension.value, f.value) for f in filters))
    cached = ctx.reader.trend_points(org_id, encode_cell(view))
    current = period_of(ctx.clock())
    points, k = [], None
    for period in _period_months(end, months):
        meta, cells = ctx.reader.month(org_id, period)
        if meta is None:
            continue
        k = meta.min_group_size
        tallies = [tally_of(t) for t in ctx.reader.tallies(org_id, period)]
        digest = month_digest(meta.min_group_size, meta.priorities, cells, tallies)
        hit = cached.get(period)
        if hit is not None and hit.digest == digest:
            points.append(hit.point)  # the same inputs and code: the same answer, without suppressing again
            continue
        rollup, protection, _ = _suppressed(org_id, period, meta, cells, tallies)
        point = trend_point(rollup, protection, filters)
        # A closed month is kept, for a view of a group that exists (arbitrary filter values are not stored).
        if period < current and encode_cell(view) in rollup.cells:
            ctx.writer.put_trend_point(org_id, encode_cell(view), period, CachedTrendPoint(digest=digest, point=point))
        points.append(point)
    return Trends(org_id=org_id, filters=dict(view), min_group_size=k, points=points)


def get_trends(caller: Principal, org_id: str, end: str, months: int, filters: Sequence[Filter],
               ctx: ReportContext) -> Trends:  # fmt: skip
    _authorise(caller, org_id)
    return build_trends(org_id, end, months, filters, ctx)


def get_settings(caller: Principal, org_id: str, ctx: ReportContext) -> ReportSettings:
    _authorise(caller, org_id)
    return settings_of(org_id, ctx)


def put_settings(caller: Principal, org_id: str, data: ReportSettings, ctx: ReportContext) -> ReportSettings:
    """org_admin sets priorities and replacement costs; the rollups use the priorities from their next build."""
    caller.require_same_org(org_id, Role.ORG_ADMIN)
    ctx.writer.put_settings(org_id, data.model_dump_json())
    return data


def coach_topics(caller: Principal, period: str, ctx: ReportContext) -> CoachTopics:
    """Operators: focus across every org's coaching, summing only what each org's suppression publishes."""
    caller.require(Role.OPERATOR)
    focus: dict[str, int] = {}
    by_level: dict[str, dict[str, int]] = {}
    orgs = 0
    for org_id in ctx.reader.orgs_with_rollups(period):
        found = month_rollup(org_id, period, ctx)
        if found is None:
            continue
        rollup, protection, _ = found
        orgs += 1
        add_published_focus(focus, figures(rollup, protection, ORG_CELL))
        for cell in breakdown(rollup, protection, ORG_CELL, Dimension.LEVEL):
            add_published_focus(by_level.setdefault(cell.cell[Dimension.LEVEL.value], {}), cell)
    return CoachTopics(period=period, orgs=orgs, focus=dict(sorted(focus.items())),
                       by_level={lv: dict(sorted(f.items())) for lv, f in sorted(by_level.items()) if f})  # fmt: skip


def on_report_due(event: ReportDue, ctx: ReportContext) -> Artefact:
    """Render and store the month's artefacts (idempotent: the same inputs give the same files)."""
    report = build_report(event.org_id, event.period, [], ctx)
    trends = build_trends(event.org_id, event.period, TREND_MONTHS, [], ctx)
    files = ctx.renderer.render(report, trends)
    ctx.artefacts.store(event.org_id, event.period, files)
    artefact = Artefact(org_id=event.org_id, period=event.period, files=sorted(files), written_at=ctx.clock())
    ctx.writer.put_artefact(event.org_id, event.period, artefact.model_dump_json())
    return artefact


def download_link(caller: Principal, org_id: str, period: str, name: str, ctx: ReportContext) -> DownloadLink:
    _authorise(caller, org_id)
    if name not in ARTEFACT_FILES:
        raise InvalidInput(f"file must be one of {', '.join(ARTEFACT_FILES)}", field="file")
    body = ctx.reader.artefact(org_id, period)
    if body is None or name not in Artefact.model_validate_json(body).files:
        raise NotFound(f"no report artefact of {period} for this organisation yet (written monthly)")
    expires_at = ctx.clock() + LINK_LIFETIME
    return DownloadLink(url=ctx.artefacts.link(org_id, period, name, expires_at), expires_at=expires_at)
