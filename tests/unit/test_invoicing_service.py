"""The invoicing service's decisions with in-memory ports: races, who may do what, periods."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from coaching.auth import Principal, Role
from coaching.domain.errors import Conflict, Forbidden
from coaching.domain.invoicing import Invoice, InvoiceStatus, LedgerEntry, finalise, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.pricing import Outcome, PriceBook, PriceBookVersionInput, charge_for
from coaching.domain.taxonomy import Program
from coaching.services import invoicing
from coaching.services.invoicing import InvoicingContext

ORG = "org-1"
PERIOD = "2026-10"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _book() -> PriceBook:
    version = PriceBookVersionInput(
        effective_from=date(2026, 1, 1), currency="EUR", session_prices={Program.SCALE: {30: 9_000}}
    )
    return PriceBook(org_id=ORG).with_version(version, now=NOW, actor="op")


def _entry(book: PriceBook, n: int) -> LedgerEntry:
    at = datetime(2026, 10, 5 + n, 9, tzinfo=UTC)
    return usage_entry(
        org_id=ORG,
        booking_id=f"b{n}",
        person_id="p1",
        program=Program.SCALE,
        length_minutes=30,
        outcome=Outcome.COMPLETED,
        charge=charge_for(book.versions[0], Program.SCALE, 30, Outcome.COMPLETED),
        occurred_at=at,
        time_zone="UTC",
        actor="coach",
        now=at,
    )


@dataclass
class FakeOrgs:
    def get(self, org_id: str) -> Org | None:
        return Org(
            org_id=org_id,
            name="Org",
            time_zone="UTC",
            currency="EUR",
            industry="technology",
            min_reporting_group_size=5,
            created_at=NOW,
            updated_at=NOW,
        )


@dataclass
class FakeHeadcount:
    count: int = 4

    def active(self, org_id: str) -> int:
        return self.count


@dataclass
class FakeBilling:
    """One invoice slot with a version; `race` runs just before a write, as another writer would."""

    book: PriceBook = field(default_factory=_book)
    stored: tuple[Invoice, int] | None = None
    closed_at: str | None = None
    race: object = None
    saves: list[tuple[str, int | None]] = field(default_factory=list)

    def price_book(self, org_id: str) -> PriceBook:
        return self.book

    def invoice(self, org_id: str, period: str) -> tuple[Invoice, int] | None:
        return self.stored

    def close_period(self, org_id: str, period: str, now: datetime) -> str:
        self.closed_at = self.closed_at or now.isoformat()
        return self.closed_at

    def entries(self, org_id: str, period: str) -> list[LedgerEntry]:
        return [_entry(self.book, n) for n in range(3)]

    def save_invoice(self, invoice: Invoice, version: int | None) -> bool:
        if callable(self.race):
            race, self.race = self.race, None
            race(self)
        current = None if self.stored is None else self.stored[1]
        self.saves.append((invoice.status.value, version))
        if current != version:
            return False
        self.stored = (invoice, (version or 0) + 1)
        return True


def _ctx(billing: FakeBilling, headcount: int = 4) -> InvoicingContext:
    return InvoicingContext(billing=billing, orgs=FakeOrgs(), headcount=FakeHeadcount(headcount), clock=lambda: NOW)


def test_a_run_that_loses_the_create_race_returns_the_identical_stored_invoice() -> None:
    # The other run closed the month first, so both compute from the same close time.
    billing = FakeBilling(closed_at=NOW.isoformat())
    twin = invoicing.invoice_org(ORG, PERIOD, NOW, _ctx(FakeBilling(closed_at=NOW.isoformat())))

    def other_run_wins(store: FakeBilling) -> None:
        store.stored = (twin, 1)

    billing.race = other_run_wins
    result = invoicing.invoice_org(ORG, PERIOD, datetime(2026, 11, 3, tzinfo=UTC), _ctx(billing))
    assert result is twin
    assert billing.saves == [("draft", None)]  # it tried once and then kept the winner's


def test_a_run_that_races_a_finalisation_returns_the_finalised_invoice() -> None:
    billing = FakeBilling()
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, _ctx(billing))
    assert billing.stored == (draft, 1)

    def finance_finalises(store: FakeBilling) -> None:
        store.stored = (finalise(draft, now=NOW), 2)

    billing.race = finance_finalises
    result = invoicing.invoice_org(ORG, PERIOD, NOW, _ctx(billing, headcount=9))  # a changed draft: rewrite
    assert result.status is InvoiceStatus.FINALISED
    assert result.summary.eligible_headcount == 4
    assert billing.saves == [("draft", None), ("draft", 1)]


def test_finalising_a_draft_that_a_run_just_replaced_finalises_the_fresh_one() -> None:
    billing = FakeBilling()
    draft = invoicing.invoice_org(ORG, PERIOD, NOW, _ctx(billing))
    fresh = draft.model_copy(update={"summary": draft.summary.model_copy(update={"eligible_headcount": 7})})

    def run_replaces(store: FakeBilling) -> None:
        store.stored = (fresh, 2)

    billing.race = run_replaces
    done = invoicing.finalise_invoice(Principal("cfo", ORG, frozenset({Role.FINANCE})), ORG, PERIOD, _ctx(billing))
    assert done.status is InvoiceStatus.FINALISED
    assert done.summary.eligible_headcount == 7
    assert billing.saves[-2:] == [("finalised", 1), ("finalised", 2)]


def test_a_run_that_never_wins_gives_up_with_a_conflict() -> None:
    billing = FakeBilling()

    class Racing(FakeBilling):
        def save_invoice(self, invoice: Invoice, version: int | None) -> bool:
            return False

        def invoice(self, org_id: str, period: str) -> tuple[Invoice, int] | None:
            return None

    with pytest.raises(Conflict, match="being written by someone else"):
        invoicing.invoice_org(ORG, PERIOD, NOW, _ctx(Racing(book=billing.book)))


@pytest.mark.parametrize(
    ("roles", "org_id", "readers", "finance_or_operator", "operator_only"),
    [
        ({Role.OPERATOR}, None, True, True, True),
        ({Role.FINANCE}, ORG, True, True, False),
        ({Role.ORG_ADMIN}, ORG, True, False, False),
        ({Role.FINANCE}, "org-2", False, False, False),
        ({Role.EMPLOYEE}, ORG, False, False, False),
        ({Role.LEADER}, ORG, False, False, False),
        ({Role.COACH}, None, False, False, False),
    ],
)
def test_who_may_read_finalise_and_post(
    roles: set[Role], org_id: str | None, readers: bool, finance_or_operator: bool, operator_only: bool
) -> None:
    caller = Principal("someone", org_id, frozenset(roles))

    def allowed(*org_roles: Role) -> bool:
        try:
            invoicing._authorise(caller, ORG, *org_roles)
        except Forbidden:
            return False
        return True

    assert allowed(*invoicing.BILLING_READERS) is readers
    assert allowed(Role.FINANCE) is finance_or_operator
    assert allowed() is operator_only


@pytest.mark.parametrize(("period", "before"), [("2026-01", "2025-12"), ("2026-12", "2026-11"), ("2000-03", "2000-02")])
def test_previous_period(period: str, before: str) -> None:
    assert invoicing.previous_period(period) == before
