"""Trends on DynamoDB Local: a closed month's published point is kept in the org's report partition with the digest
of its inputs, served again while they are unchanged, and recomputed once a rebuild changed a cell."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from coaching.adapters import keys
from coaching.adapters.dynamo import MainItem
from coaching.adapters.report_render import ReportRenderer
from coaching.adapters.rollup_store import ReportReader, ReportWriter, RollupStore
from coaching.domain.reporting import Contribution
from coaching.domain.rollups import sum_counters
from coaching.services import reports
from coaching.services.reports import ReportContext
from coaching.services.rollups import RollupMeta

pytestmark = pytest.mark.integration

PERIOD = "2026-04"
NOW = datetime(2026, 6, 3, 9, tzinfo=UTC)


def _people(count: int) -> list[Contribution]:
    return [Contribution(pid=f"p{i:03d}", dims={"department": "sales" if i % 2 else "eng", "level": "manager"},
                         engaged=True, completed=1 + i % 3) for i in range(count)]  # fmt: skip


def _write_month(org_id: str, people: list[Contribution]) -> None:
    store = RollupStore()
    store.rewrite_cells(org_id, PERIOD, sum_counters(people))
    store.write_meta(RollupMeta(org_id=org_id, period=PERIOD, min_group_size=3, priorities=[], built_at=NOW,
                                rebuilt=True))  # fmt: skip


class _NoArtefacts:
    def store(self, org_id: str, period: str, files: Any) -> None:
        raise AssertionError("no artefacts here")

    def link(self, org_id: str, period: str, name: str, expires_at: datetime) -> str:
        raise AssertionError("no links here")


def test_a_kept_trend_point_is_served_until_a_rebuild_changes_the_month(dynamodb_local, monkeypatch) -> None:
    org_id = f"org-trends-{uuid.uuid4().hex[:8]}"
    _write_month(org_id, _people(12))
    ctx = ReportContext(reader=ReportReader(), writer=ReportWriter(), artefacts=_NoArtefacts(),
                        renderer=ReportRenderer(), clock=lambda: NOW)  # fmt: skip
    computed: list[str] = []
    real = reports.suppress
    monkeypatch.setattr(reports, "suppress", lambda rollup, k: computed.append(rollup.period) or real(rollup, k))
    first = reports.build_trends(org_id, "2026-05", 2, [], ctx)
    assert [p.period for p in first.points] == [PERIOD]
    kept = list(MainItem.query(keys.report_pk(org_id), MainItem.sk.startswith(keys.TREND_CACHE_PREFIX)))
    assert [item.sk for item in kept] == [keys.trend_cache_sk("*", PERIOD)]
    assert reports.build_trends(org_id, "2026-05", 2, [], ctx) == first
    assert computed == [PERIOD]  # the second read was served from the kept point
    # The month is rebuilt with one more person: its digest changes, so it is computed (and kept) again.
    _write_month(org_id, _people(13))
    again = reports.build_trends(org_id, "2026-05", 2, [], ctx)
    assert computed == [PERIOD, PERIOD]
    assert again.points[0].active_people.value == 13
    assert reports.build_trends(org_id, "2026-05", 2, [], ctx) == again
    assert computed == [PERIOD, PERIOD]
