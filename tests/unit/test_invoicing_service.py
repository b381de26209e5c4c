"""The invoicing service's rules on in-memory ports: price books, the invoice run, finalisation,
late usage, month to date, reconciliation, the schedules' fan-outs, access and periods."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.booking import BookingPolicy
from coaching.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from coaching.domain.events import InvoiceDue, ReconciliationDue, stable_event_id
from coaching.domain.invoicing import Invoice, InvoiceStatus, LineKind, finalise, reversal_of
from coaching.domain.pricing import NoPriceBook, Outcome
from coaching.services import invoicing, reconciliation
from pydantic import ValidationError

from .fakes.invoicing import ORG, PRICE, FakeBilling, World, price_book, price_version, usage

PERIOD = "2026-10"
NEXT = "2026-11"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
OPERATOR = Principal("op", None, frozenset({Role.OPERATOR}))
FINANCE = Principal("cfo", ORG, frozenset({Role.FINANCE}))
ORG_ADMIN = Principal("admin", ORG, frozenset({Role.ORG_ADMIN}))
EMPLOYEE = Principal("emp", ORG, frozenset({Role.EMPLOYEE}))


def october(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def _world(headcount: int = 4, *, entries: int = 3, time_zone: str = "UTC") -> World:
    """An org with a price book, `entries` completed October sessions and `headcount` active people."""
    world = World()
    world.clock.now = NOW
    world.headcount.default = headcount
    book = price_book()
    world.org(book=book, time_zone=time_zone)
    for n in range(entries):
        world.session(usage(book, f"b{n}", october(5 + n), time_zone=time_zone))
    return world


# ---------------------------------------------------------------------------- races


def test_a_run_that_loses_the_create_race_returns_the_identical_stored_invoice() -> None:
    # The other run closed the month first, so both compute from the same close time.
    world = _world()
    world.billing.closed[(ORG, PERIOD)] = NOW.isoformat()
    other = _world()
    other.billing.closed[(ORG, PERIOD)] = NOW.isoformat()
    twin = invoicing.invoice_org(ORG, PERIOD, NOW, other.ctx)

    def other_run_wins(store: FakeBilling) -> None:
        store.stored[(ORG, PERIOD)] = (twin, 1)

    world.billing.race = other_run_wins
    result = invoicing.invoice_org(ORG, PERIOD, datetime(2026, 11, 3, tzinfo=UTC), world.ctx)
    assert result is twin
    assert world.billing.saves == [("draft", None)]  # it tried once and then kept the winner's


def test_a_run_that_races_a_finalisation_returns_the_finalised_invoice() -> None:
    world = _world()
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    assert world.billing.stored[(ORG, PERIOD)] == (draft, 1)

    def finance_finalises(store: FakeBilling) -> None:
        store.stored[(ORG, PERIOD)] = (finalise(draft, now=NOW), 2)

    world.billing.race = finance_finalises
    world.headcount.default = 9  # a changed draft: the run rewrites it
    result = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    assert result.status is InvoiceStatus.FINALISED
    assert result.summary.eligible_headcount == 4
    assert world.billing.saves == [("draft", None), ("draft", 1)]


def test_finalising_a_draft_that_a_run_just_replaced_finalises_the_fresh_one() -> None:
    world = _world()
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    fresh = draft.model_copy(update={"summary": draft.summary.model_copy(update={"eligible_headcount": 7})})

    def run_replaces(store: FakeBilling) -> None:
        store.stored[(ORG, PERIOD)] = (fresh, 2)

    world.billing.race = run_replaces
    done = invoicing.finalise_invoice(FINANCE, ORG, PERIOD, world.ctx)
    assert done.status is InvoiceStatus.FINALISED
    assert done.summary.eligible_headcount == 7
    assert world.billing.saves[-2:] == [("finalised", 1), ("finalised", 2)]


def test_a_run_that_never_wins_gives_up_with_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[int] = []
    monkeypatch.setattr(invoicing, "_backoff", pauses.append)
    world = _world()
    world.billing.lose_every_write = True
    with pytest.raises(Conflict, match="being written by someone else"):
        invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    assert pauses == [0, 1, 2, 3, 4, 5]  # six attempts, each after a longer pause
    assert world.billing.stored == {}


# ---------------------------------------------------------------------------- price books


def test_price_book_versions_are_posted_by_operators_in_the_org_currency_and_append_only() -> None:
    world = World()
    world.clock.now = NOW
    world.org(currency="EUR")
    assert invoicing.get_price_book(FINANCE, ORG, world.ctx).versions == []
    with pytest.raises(Forbidden):
        invoicing.add_price_book_version(FINANCE, ORG, price_version(), world.ctx)
    with pytest.raises(InvalidInput) as wrong_currency:
        invoicing.add_price_book_version(OPERATOR, ORG, price_version(currency="GBP"), world.ctx)
    assert wrong_currency.value.field == "currency"
    assert world.billing.books == {}

    first = invoicing.add_price_book_version(OPERATOR, ORG, price_version(), world.ctx)
    assert [(v.version, v.created_by, v.created_at) for v in first.versions] == [(1, "op", NOW)]
    with pytest.raises(InvalidInput) as not_after:
        invoicing.add_price_book_version(OPERATOR, ORG, price_version(), world.ctx)
    assert not_after.value.field == "effective_from"
    with pytest.raises(ValidationError, match="first day of a month"):  # whole months only
        price_version(effective_from=date(2026, 3, 15))
    second = invoicing.add_price_book_version(OPERATOR, ORG, price_version(effective_from=date(2026, 3, 1)), world.ctx)
    assert [v.version for v in second.versions] == [1, 2]
    assert invoicing.get_price_book(ORG_ADMIN, ORG, world.ctx) == second
    with pytest.raises(NotFound):
        invoicing.get_price_book(OPERATOR, "no-such-org", world.ctx)
    with pytest.raises(NotFound):
        invoicing.add_price_book_version(OPERATOR, "no-such-org", price_version(), world.ctx)


def test_a_version_never_takes_effect_in_a_month_whose_invoice_is_drawn() -> None:
    world = _world()
    drawn = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    for effective in (date(2026, 10, 1), date(2026, 9, 1), date(2026, 2, 1)):
        with pytest.raises(InvalidInput) as refused:
            invoicing.add_price_book_version(OPERATOR, ORG, price_version(effective_from=effective), world.ctx)
        assert refused.value.field == "effective_from"
        assert "the invoice for 2026-10 has already been drawn" in refused.value.message
        assert "from 2026-11-01 at the earliest" in refused.value.message
    tiers = [{"from_session": 2, "discount_bps": 1000}]
    book = invoicing.add_price_book_version(
        OPERATOR, ORG, price_version(effective_from=date(2026, 11, 1), tiers=tiers), world.ctx
    )
    assert [v.version for v in book.versions] == [1, 2]
    # October stays reproducible: its redraw uses version 1, November's invoice version 2.
    assert invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx) == drawn
    world.clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    assert invoicing.invoice_org(ORG, NEXT, world.clock.now, world.ctx).price_book_version == 2
    assert drawn.price_book_version == 1


# ---------------------------------------------------------------------------- the invoice run


def test_one_invoice_per_org_and_month_and_a_rerun_returns_the_same() -> None:
    world = _world()
    first = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    assert (first.invoice_id, first.status, first.entry_count) == (f"{ORG}-{PERIOD}", InvoiceStatus.DRAFT, 3)
    assert first.total_minor == 3 * PRICE
    assert first.created_at == NOW  # when the month was first closed
    again = invoicing.invoice_org(ORG, PERIOD, NOW + timedelta(days=3), world.ctx)
    assert again.model_dump_json() == first.model_dump_json()
    assert world.billing.saves == [("draft", None)]  # an unchanged draft is not rewritten
    assert list(world.billing.stored) == [(ORG, PERIOD)]
    assert invoicing.list_invoices(FINANCE, ORG, world.ctx) == [first]


def test_a_draft_is_redrawn_with_the_new_headcount_but_keeps_when_it_was_first_closed() -> None:
    world = _world(headcount=2)
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    world.headcount.default = 3
    redrawn = invoicing.invoice_org(ORG, PERIOD, NOW + timedelta(hours=1), world.ctx)
    assert (draft.summary.eligible_headcount, redrawn.summary.eligible_headcount) == (2, 3)
    assert redrawn.created_at == draft.created_at == NOW
    assert redrawn.lines == draft.lines
    assert world.billing.stored[(ORG, PERIOD)] == (redrawn, 2)


def test_a_month_that_has_not_ended_in_the_org_time_zone_is_not_invoiced_and_stays_open() -> None:
    world = _world(time_zone="Pacific/Pago_Pago")  # UTC-11
    # 1 November 05:00 UTC is still 31 October in Pago Pago.
    with pytest.raises(InvalidInput) as refused:
        invoicing.invoice_org(ORG, PERIOD, datetime(2026, 11, 1, 5, tzinfo=UTC), world.ctx)
    assert refused.value.field == "period"
    assert "has not ended in Pacific/Pago_Pago" in refused.value.message
    assert world.billing.closed == {}
    assert invoicing.invoice_org(ORG, PERIOD, datetime(2026, 11, 1, 12, tzinfo=UTC), world.ctx).entry_count == 3


def test_an_org_without_a_price_book_is_skipped_and_its_month_stays_open() -> None:
    world = World()
    world.clock.now = NOW
    world.org()
    outcome = invoicing.on_invoice_due(InvoiceDue(org_id=ORG, period=PERIOD), world.ctx)
    assert (outcome.status, outcome.invoice_id) == ("skipped", None)
    assert "has no price book" in (outcome.reason or "")
    with pytest.raises(NoPriceBook):
        invoicing.run_invoice(OPERATOR, ORG, PERIOD, world.ctx)
    # A book whose first version starts after the month does not price it either.
    world.billing.books[ORG] = price_book(effective_from=date(2026, 11, 1))
    outcome = invoicing.on_invoice_due(InvoiceDue(org_id=ORG, period=PERIOD), world.ctx)
    assert outcome.status == "skipped"
    assert f"no price book version of organisation {ORG} is in effect in {PERIOD}" == outcome.reason
    assert world.billing.closed == {}  # nothing moved on to a later month
    assert world.billing.stored == {}


def test_the_invoice_due_event_draws_the_invoice_at_the_clock() -> None:
    world = _world()
    outcome = invoicing.on_invoice_due(InvoiceDue(org_id=ORG, period=PERIOD), world.ctx)
    assert (outcome.status, outcome.invoice_id, outcome.currency) == ("draft", f"{ORG}-{PERIOD}", "EUR")
    assert (outcome.total_minor, outcome.entry_count, outcome.reason) == (3 * PRICE, 3, None)
    assert world.billing.closed == {(ORG, PERIOD): NOW.isoformat()}


def test_an_unknown_org_is_not_found_and_a_broken_ledger_is_never_invoiced() -> None:
    world = _world()
    with pytest.raises(NotFound):
        invoicing.invoice_org("no-such-org", PERIOD, NOW, world.ctx)
    # An entry priced in another currency (the ledger breaks an invariant): a conflict, no invoice.
    foreign = price_book(currency="GBP")
    world.session(usage(foreign, "b-gbp", october(20)))
    with pytest.raises(Conflict, match="cannot be invoiced") as refused:
        invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    assert refused.value.field == "period"
    assert world.billing.stored == {}


# ---------------------------------------------------------------------------- finalisation


def test_a_draft_is_finalised_once_and_never_changes_after() -> None:
    world = _world(headcount=3)
    with pytest.raises(Conflict, match="no draft invoice for 2026-10"):
        invoicing.finalise_invoice(FINANCE, ORG, PERIOD, world.ctx)
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    world.clock.now = NOW + timedelta(days=1)
    final = invoicing.finalise_invoice(FINANCE, ORG, PERIOD, world.ctx)
    assert (final.status, final.finalised_at) == (InvoiceStatus.FINALISED, NOW + timedelta(days=1))
    assert final.lines == draft.lines
    with pytest.raises(Conflict, match="already finalised and cannot change"):
        invoicing.finalise_invoice(OPERATOR, ORG, PERIOD, world.ctx)

    saves = list(world.billing.saves)
    world.headcount.default = 40
    rerun = invoicing.invoice_org(ORG, PERIOD, NOW + timedelta(days=5), world.ctx)
    assert rerun.model_dump_json() == final.model_dump_json()
    assert world.billing.saves == saves  # nothing written
    assert invoicing.get_invoice(ORG_ADMIN, ORG, PERIOD, world.ctx) == final


def test_only_finance_of_the_org_and_operators_finalise() -> None:
    world = _world()
    invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    for caller in (ORG_ADMIN, EMPLOYEE, Principal("cfo", "org-2", frozenset({Role.FINANCE}))):
        with pytest.raises(Forbidden):
            invoicing.finalise_invoice(caller, ORG, PERIOD, world.ctx)
    assert world.billing.stored[(ORG, PERIOD)][0].status is InvoiceStatus.DRAFT
    assert invoicing.finalise_invoice(OPERATOR, ORG, PERIOD, world.ctx).status is InvoiceStatus.FINALISED


# ---------------------------------------------------------------------------- late usage


@pytest.mark.parametrize("finalised", [True, False])
def test_usage_after_the_close_lands_on_the_next_invoice_as_an_adjustment(finalised: bool) -> None:
    world = _world(entries=1)
    october_invoice = invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    if finalised:
        october_invoice = invoicing.finalise_invoice(OPERATOR, ORG, PERIOD, world.ctx)
    book = world.billing.books[ORG]
    # An October session completed after October was drawn: the open-month rule moves it.
    late = world.session(usage(book, "late", october(28, 15)))
    assert (late.period, late.billed_in) == (PERIOD, NEXT)
    assert [e.booking_id for e in world.billing.entries(ORG, PERIOD)] == ["b0"]
    assert invoicing.invoice_org(ORG, PERIOD, NOW + timedelta(days=1), world.ctx) == october_invoice

    world.session(usage(book, "nov", datetime(2026, 11, 10, 9, tzinfo=UTC)))
    world.clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    november = invoicing.invoice_org(ORG, NEXT, world.clock.now, world.ctx)
    adjustments = [line for line in november.lines if line.kind is LineKind.ADJUSTMENT]
    assert [(a.period, a.quantity, a.amount_minor) for a in adjustments] == [(PERIOD, 1, PRICE)]
    assert november.amount_of(LineKind.SESSION) == PRICE
    assert november.total_minor == 2 * PRICE
    assert november.summary.sessions_delivered == 1  # the late October session is not November's
    assert reconciliation.reconcile(ORG, PERIOD, world.ctx).differences == []
    assert reconciliation.reconcile(ORG, NEXT, world.ctx).differences == []


# ---------------------------------------------------------------------------- month to date


def test_month_to_date_counts_sessions_money_cap_and_commitment() -> None:
    world = World()
    book = price_book(monthly_commitment_minor=100_000)
    policy = BookingPolicy(monthly_session_cap=50)
    world.org(book=book, booking=policy, time_zone="Europe/Berlin")
    june = [datetime(2026, 6, day, 9, tzinfo=UTC) for day in (2, 3, 4)]
    delivered = [world.session(usage(book, f"s{n}", at, person=f"p{n % 2}")) for n, at in enumerate(june)]
    world.session(usage(book, "ns", datetime(2026, 6, 5, 9, tzinfo=UTC), outcome=Outcome.NO_SHOW))
    world.session(usage(book, "lc", datetime(2026, 6, 6, 9, tzinfo=UTC), outcome=Outcome.LATE_CANCELLED))
    # A May session that arrived after May closed: billed in June, shown as a late adjustment.
    world.session(usage(book, "may", datetime(2026, 5, 29, 9, tzinfo=UTC), billed_in="2026-06"))
    # The third June session is credited: it no longer counts as delivered.
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    world.billing.commit_entry(reversal_of(delivered[2], reason="coach late", actor="op", billed_in="2026-06", now=now))
    world.sessions.cap[(ORG, "2026-06")] = 7

    view = invoicing.month_to_date(FINANCE, ORG, now, world.ctx)
    assert (view.period, view.time_zone, view.as_of, view.currency) == ("2026-06", "Europe/Berlin", now, "EUR")
    assert (view.sessions_delivered, view.active_participants, view.no_shows, view.late_cancellations) == (2, 2, 1, 1)
    own = 3 * PRICE - PRICE + 2 * (PRICE // 2)  # sessions, the credit, two 50 % fees
    assert view.amount_so_far_minor == own + PRICE
    assert view.late_adjustments_minor == PRICE
    assert (view.monthly_session_cap, view.sessions_counted, view.sessions_left_under_cap) == (50, 7, 43)
    assert view.allowances == policy.allowances
    assert (view.price_book_version, view.monthly_commitment_minor) == (1, 100_000)
    # The month's own charges fall short of the commitment; the late May session does not count.
    assert view.commitment_shortfall_minor == 100_000 - own

    # 30 June 23:00 UTC is already 1 July in Berlin: a new, empty month.
    july = invoicing.month_to_date(ORG_ADMIN, ORG, datetime(2026, 6, 30, 23, tzinfo=UTC), world.ctx)
    assert july.period == "2026-07"
    assert (july.sessions_delivered, july.amount_so_far_minor, july.commitment_shortfall_minor) == (0, 0, 100_000)
    with pytest.raises(Forbidden):
        invoicing.month_to_date(EMPLOYEE, ORG, now, world.ctx)


def test_month_to_date_without_a_price_book_shows_the_ledger_at_face_value_and_no_cap() -> None:
    world = World()
    world.org(currency="EUR")
    foreign_book = price_book()  # priced before the org's book was lost
    world.session(usage(foreign_book, "s1", datetime(2026, 6, 2, 9, tzinfo=UTC)))
    view = invoicing.month_to_date(OPERATOR, ORG, datetime(2026, 6, 10, tzinfo=UTC), world.ctx)
    assert (view.amount_so_far_minor, view.sessions_delivered, view.currency) == (PRICE, 1, "EUR")
    assert (view.price_book_version, view.monthly_commitment_minor, view.commitment_shortfall_minor) == (
        None,
        None,
        None,
    )
    assert (view.monthly_session_cap, view.sessions_left_under_cap, view.sessions_counted) == (None, None, 0)


# ---------------------------------------------------------------------------- reconciliation


def _reconciled_world() -> World:
    """Four completed sessions, a late cancellation, a free cancellation and a booked one; drawn."""
    world = _world(entries=4)
    book = world.billing.books[ORG]
    world.session(usage(book, "lc", october(10), outcome=Outcome.LATE_CANCELLED))
    world.sessions.record(ORG, PERIOD, "free", "cancelled")
    world.sessions.record(ORG, PERIOD, "booked", "booked")
    invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    return world


def test_reconciliation_of_a_clean_month_finds_nothing() -> None:
    world = _reconciled_world()
    report = reconciliation.reconcile(ORG, PERIOD, world.ctx)
    assert report.differences == []
    assert (report.sessions, report.billable_sessions, report.usage_entries_found, report.ledger_entries) == (
        7,
        5,
        5,
        5,
    )
    assert (report.org_id, report.period, report.invoice_status) == (ORG, PERIOD, InvoiceStatus.DRAFT)
    assert reconciliation.on_reconciliation_due(ReconciliationDue(org_id=ORG, period=PERIOD), world.ctx) == report


def test_reconciliation_finds_every_planted_difference() -> None:
    world = _reconciled_world()
    book = world.billing.books[ORG]
    # 1. A completed session that was never billed.
    world.sessions.record(ORG, PERIOD, "unbilled", "completed")
    # 2. A session billed as completed (late, in November), then cancelled for free in booking.
    world.session(usage(book, "then-cancelled", october(12), billed_in=NEXT), status="cancelled")
    # 3. A no-show billed as a completed session.
    world.session(usage(book, "wrong-outcome", october(13), billed_in=NEXT), status="no_show")
    # 4. An invoice tampered with after it was drawn.
    stored, version = world.billing.stored[(ORG, PERIOD)]
    world.billing.stored[(ORG, PERIOD)] = (stored.model_copy(update={"total_minor": stored.total_minor + 1}), version)

    report = reconciliation.reconcile(ORG, PERIOD, world.ctx)
    assert len(report.differences) == 4, report.differences
    assert "session unbilled is completed but has no usage entry in the ledger" in report.differences
    assert (
        f"session then-cancelled is cancelled (not billable) but has usage entry {NEXT}/then-cancelled#completed"
        in (report.differences)
    )
    assert f"session wrong-outcome is no_show but its usage entry {NEXT}/wrong-outcome#completed bills completed" in (
        report.differences
    )
    assert any(d.startswith(f"invoice {stored.invoice_id}: total") for d in report.differences)
    assert (report.billable_sessions, report.usage_entries_found) == (7, 6)


def test_reconciliation_finds_a_guard_without_its_entry_and_entries_without_their_session() -> None:
    world = _world(entries=0)
    book = world.billing.books[ORG]
    lost = world.session(usage(book, "lost", october(3)))
    orphan = world.session(usage(book, "orphan", october(4)))
    world.billing.drop_entry(lost)
    world.sessions.forget(ORG, PERIOD, orphan.booking_id)
    # A September session billed late in October whose booking does not exist (any more).
    ghost = world.billing.commit_entry(usage(book, "ghost", datetime(2026, 9, 20, tzinfo=UTC), billed_in=PERIOD))
    # And one whose booking exists: checked against September when September is reconciled.
    world.session(usage(book, "real-late", datetime(2026, 9, 21, tzinfo=UTC), billed_in=PERIOD))
    # A session counted in October whose entry is for September.
    world.session(usage(book, "moved", datetime(2026, 9, 30, tzinfo=UTC), billed_in=PERIOD), period=PERIOD)

    report = reconciliation.reconcile(ORG, PERIOD, world.ctx)
    assert sorted(report.differences) == sorted(
        [
            f"session lost: its usage guard points to entry {PERIOD}/{lost.entry_id}, which does not exist",
            f"usage entry {orphan.entry_id} bills session orphan, which is not among the sessions of {PERIOD}",
            f"late usage entry {ghost.entry_id} billed in {PERIOD} bills session ghost, which does not exist",
            f"session moved counts in {PERIOD} but its usage entry is for 2026-09",
        ]
    )
    assert report.invoice_status is None


def test_reconciliation_rechecks_a_suspect_session_on_its_current_status() -> None:
    world = _world(entries=0)
    book = world.billing.books[ORG]
    # The index still shows "booked" for a session completed (and billed) a moment ago.
    world.session(usage(book, "just-done", october(3)))
    world.sessions.index[(ORG, PERIOD)]["just-done"] = "booked"
    # The index shows "completed" for a session since cancelled for free, without an entry.
    world.sessions.record(ORG, PERIOD, "just-cancelled", "cancelled")
    world.sessions.index[(ORG, PERIOD)]["just-cancelled"] = "completed"
    report = reconciliation.reconcile(ORG, PERIOD, world.ctx)
    assert report.differences == []


def test_reconciliation_reports_a_closed_month_without_invoice_and_entries_without_a_price() -> None:
    world = _world(entries=1)
    world.billing.closed[(ORG, PERIOD)] = NOW.isoformat()
    assert reconciliation.reconcile(ORG, PERIOD, world.ctx).differences == [
        f"{PERIOD} was closed at {NOW.isoformat()} but has no invoice"
    ]
    del world.billing.closed[(ORG, PERIOD)]
    del world.billing.books[ORG]
    assert reconciliation.reconcile(ORG, PERIOD, world.ctx).differences == [
        f"1 ledger entries are billed in {PERIOD} but cannot be invoiced: organisation {ORG} has no price book; "
        "an operator must post one before it is invoiced"
    ]
    world.billing.books[ORG] = price_book()
    invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)
    del world.billing.books[ORG]
    assert reconciliation.reconcile(ORG, PERIOD, world.ctx).differences == [
        f"invoice {ORG}-{PERIOD} exists but the organisation has no price book"
    ]


def test_on_demand_reconciliation_is_for_finance_of_the_org_and_operators() -> None:
    world = _reconciled_world()
    assert reconciliation.reconcile_for(FINANCE, ORG, PERIOD, world.ctx).differences == []
    assert reconciliation.reconcile_for(OPERATOR, ORG, PERIOD, world.ctx).sessions == 7
    for caller in (ORG_ADMIN, EMPLOYEE, Principal("cfo", "org-2", frozenset({Role.FINANCE}))):
        with pytest.raises(Forbidden):
            reconciliation.reconcile_for(caller, ORG, PERIOD, world.ctx)
    with pytest.raises(NotFound):
        reconciliation.reconcile_for(OPERATOR, "no-such-org", PERIOD, world.ctx)


# ---------------------------------------------------------------------------- fan-out


def test_the_monthly_run_writes_one_invoice_due_per_org_with_stable_ids() -> None:
    world = World()
    for org_id, zone in (("east", "Pacific/Kiritimati"), ("west", "Pacific/Pago_Pago"), ("utc", "UTC")):
        world.org(org_id, time_zone=zone)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    fan_out = invoicing.run_monthly_invoicing(now, world.ctx)
    assert (fan_out.kind, fan_out.period, fan_out.orgs, fan_out.events) == ("InvoiceDue", "2026-11", 3, 3)
    events = world.outbox.of_type(InvoiceDue)
    assert sorted((e.org_id, e.period) for e in events) == [
        ("east", "2026-11"),
        ("utc", "2026-11"),
        ("west", "2026-11"),
    ]
    assert {e.event_id for e in events} == {
        stable_event_id("InvoiceDue", o, "2026-11") for o in ("east", "west", "utc")
    }
    assert {e.occurred_at for e in events} == {now}
    assert len(world.outbox.items) == 3  # nothing else

    # The scheduler retries (or an operator fires it again): the same ids, nothing written twice.
    again = invoicing.run_monthly_invoicing(now + timedelta(minutes=5), world.ctx)
    assert again == fan_out
    assert world.outbox.of_type(InvoiceDue) == events


def test_a_fan_out_pages_through_every_org_and_a_retry_after_a_failure_writes_each_event_once() -> None:
    world = World()
    for n in range(250):
        world.org(f"org-{n:03d}")
    world.outbox.fail_after = 120
    now = datetime(2027, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(RuntimeError):
        invoicing.run_monthly_invoicing(now, world.ctx)
    assert len(world.outbox.items) == 120
    fan_out = invoicing.run_monthly_invoicing(now, world.ctx)
    assert (fan_out.period, fan_out.orgs, fan_out.events) == ("2026-12", 250, 250)
    events = world.outbox.of_type(InvoiceDue)
    assert len(events) == 250
    assert sorted(e.org_id for e in events) == sorted(world.orgs.by_id)
    assert world.outbox.writes == 2 + 3  # the failed run's two pages, then one write per page of 100


def test_the_daily_reconciliation_writes_each_org_previous_and_current_month_once_a_day() -> None:
    world = World()
    world.org("east", time_zone="Pacific/Kiritimati")  # UTC+14
    world.org("west", time_zone="Pacific/Pago_Pago")  # UTC-11
    now = datetime(2026, 12, 1, 3, tzinfo=UTC)
    fan_out = reconciliation.run_daily_reconciliation(now, world.ctx)
    assert (fan_out.kind, fan_out.period, fan_out.orgs, fan_out.events) == ("ReconciliationDue", None, 2, 4)
    periods: dict[str, set[str]] = {}
    for event in world.outbox.of_type(ReconciliationDue):
        periods.setdefault(event.org_id, set()).add(event.period)
        assert event.event_id == stable_event_id("ReconciliationDue", event.org_id, event.period, "2026-12-01")
    assert periods == {"east": {"2026-11", "2026-12"}, "west": {"2026-10", "2026-11"}}  # 1 Dec east, 30 Nov west

    reconciliation.run_daily_reconciliation(now + timedelta(hours=2), world.ctx)  # a retry the same day
    assert len(world.outbox.items) == 4
    reconciliation.run_daily_reconciliation(now + timedelta(days=1), world.ctx)  # the next day reconciles again
    assert len(world.outbox.items) == 8


def test_the_fanned_out_event_draws_the_org_invoice() -> None:
    world = _world()
    world.clock.now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    invoicing.run_monthly_invoicing(world.clock.now, world.ctx)
    [event] = world.outbox.of_type(InvoiceDue)
    assert invoicing.on_invoice_due(event, world.ctx).status == "draft"
    assert world.billing.stored[(ORG, PERIOD)][0].entry_count == 3


# ---------------------------------------------------------------------------- access


def test_previous_period_and_month_just_closed() -> None:
    assert [invoicing.previous_period(p) for p in ("2026-01", "2026-12", "2000-03")] == [
        "2025-12",
        "2026-11",
        "2000-02",
    ]
    assert invoicing.month_just_closed(datetime(2027, 1, 1, 12, tzinfo=UTC)) == "2026-12"
    assert invoicing.month_just_closed(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == "2026-02"


@pytest.mark.parametrize(
    ("roles", "org_id", "readers", "finance_or_operator", "operator_only"),
    [
        ({Role.OPERATOR}, None, True, True, True),
        ({Role.FINANCE}, ORG, True, True, False),
        ({Role.ORG_ADMIN}, ORG, True, False, False),
        ({Role.FINANCE}, "org-2", False, False, False),
        ({Role.ORG_ADMIN}, "org-2", False, False, False),
        ({Role.EMPLOYEE}, ORG, False, False, False),
        ({Role.LEADER}, ORG, False, False, False),
        ({Role.COACH}, None, False, False, False),
    ],
)
def test_who_may_read_finalise_reconcile_run_and_post(
    roles: set[Role], org_id: str | None, readers: bool, finance_or_operator: bool, operator_only: bool
) -> None:
    """Every route's rule, through the service functions themselves."""
    caller = Principal("someone", org_id, frozenset(roles))
    world = _world()
    invoicing.invoice_org(ORG, PERIOD, NOW, world.ctx)

    def allowed(call: Callable[[], object]) -> bool:
        try:
            call()
        except Forbidden:
            return False
        return True

    ctx = world.ctx
    reads: list[Callable[[], object]] = [
        lambda: invoicing.get_price_book(caller, ORG, ctx),
        lambda: invoicing.list_invoices(caller, ORG, ctx),
        lambda: invoicing.get_invoice(caller, ORG, PERIOD, ctx),
        lambda: invoicing.invoice_csv_export(caller, ORG, PERIOD, ctx),
        lambda: invoicing.month_to_date(caller, ORG, NOW, ctx),
    ]
    assert [allowed(read) for read in reads] == [readers] * len(reads)
    assert allowed(lambda: reconciliation.reconcile_for(caller, ORG, PERIOD, ctx)) is finance_or_operator
    assert allowed(lambda: invoicing.finalise_invoice(caller, ORG, PERIOD, ctx)) is finance_or_operator
    assert allowed(lambda: invoicing.run_invoice(caller, ORG, "2026-09", ctx)) is operator_only
    posted = lambda: invoicing.add_price_book_version(caller, ORG, price_version(effective_from=date(2027, 1, 1)), ctx)  # noqa: E731
    assert allowed(posted) is operator_only


# ---------------------------------------------------------------------------- periods

BAD_PERIODS = ["0000-01", "1999-12", "3000-01", "9999-12", "2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", ""]


@pytest.mark.parametrize("period", BAD_PERIODS)
def test_a_period_the_platform_does_not_bill_is_refused_naming_the_field(period: str) -> None:
    world = _world()
    ctx = world.ctx
    calls: list[Callable[[], object]] = [
        lambda: invoicing.invoice_org(ORG, period, NOW, ctx),
        lambda: invoicing.run_invoice(OPERATOR, ORG, period, ctx),
        lambda: invoicing.finalise_invoice(FINANCE, ORG, period, ctx),
        lambda: invoicing.get_invoice(FINANCE, ORG, period, ctx),
        lambda: invoicing.invoice_csv_export(FINANCE, ORG, period, ctx),
        lambda: reconciliation.reconcile(ORG, period, ctx),
        lambda: reconciliation.reconcile_for(FINANCE, ORG, period, ctx),
        lambda: invoicing.on_invoice_due(InvoiceDue(org_id=ORG, period=period), ctx),
        lambda: reconciliation.on_reconciliation_due(ReconciliationDue(org_id=ORG, period=period), ctx),
    ]
    for call in calls:
        with pytest.raises(DomainError) as refused:  # never a ValueError from the month arithmetic
            call()
        assert isinstance(refused.value, InvalidInput)
        assert refused.value.field == "period"
    assert world.billing.closed == {}
    assert world.billing.stored == {}


@pytest.mark.parametrize("period", ["2000-01", "2999-12"])
def test_the_first_and_last_billable_months_are_invoiced(period: str) -> None:
    world = World()
    world.org(book=price_book(effective_from=date(2000, 1, 1)))
    invoice: Invoice = invoicing.invoice_org(ORG, period, datetime(3000, 1, 2, tzinfo=UTC), world.ctx)
    assert (invoice.period, invoice.total_minor) == (period, 0)
