"""Persistence for billing: price books, the append-only usage ledger, periods and invoices.

Ledger entries live in one partition per org and invoice month (``ORG#<org>#LEDGER#<month>``),
so an invoice reads exactly its own entries with one Query, whatever the size of the table.

Which month an entry is billed in is decided inside the transaction that writes it: the
transaction checks that the month's billing period is still open. Invoicing closes the
period first and reads the partition after, so every entry is either in the closed month
(committed before the close) or fails the check and lands in the next open month, where
it shows as an adjustment. Nothing can slip between the two.

Every entry also writes a guard item with a deterministic key per session and kind
(``ORG#<org>#SESSION#<booking>`` / ``LEDGER#usage``): a retried, duplicated or concurrent
completion can never bill a session twice, whichever month it would land in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    MainItem,
    MainTableMeta,
    MarkerItem,
    batch_read,
    connection,
    failed_keys,
    get_entity,
    modify_entity,
)
from coaching.domain.errors import AlreadyBilled, Conflict
from coaching.domain.invoicing import EntryKind, Invoice, InvoiceStatus, LedgerEntry, UsageFound, next_period
from coaching.domain.pricing import PriceBook

# Key builders other modules import from here; their one home is `keys`.
PRICE_BOOK_SK = keys.PRICE_BOOK_SK
ledger_pk = keys.ledger_pk
billing_pk = keys.billing_pk
period_key = keys.period_key
invoice_key = keys.invoice_key
guard_key = keys.guard_key
# An entry whose month is closed moves to the next open month; a year of closed months in a
# row would mean invoicing ran ahead of the calendar, which is a bug to surface, not absorb.
_MAX_MONTHS_AHEAD = 12
_BATCH_KEYS = 100  # BatchGetItem's limit


class BillingPeriodItem(Model):
    """One org month; `closed_at` set means its invoice has been drawn and takes no more entries."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="billing_period")
    closed_at = UnicodeAttribute(null=True)


def entry_item(entry: LedgerEntry) -> MainItem:
    """The ledger entry's item in its billing month's partition (its guard and month check are the caller's)."""
    return MainItem(
        keys.ledger_pk(entry.org_id, entry.billed_in),
        keys.entry_sk(entry.entry_id),
        kind="ledger_entry",
        body=entry.model_dump_json(),
    )


def add_entry(transaction: TransactWrite, entry: LedgerEntry) -> None:
    """Add the entry, its guard and the open-month check to a transaction the caller builds."""
    transaction.condition_check(
        BillingPeriodItem,
        *keys.period_key(entry.org_id, entry.billed_in),
        condition=BillingPeriodItem.closed_at.does_not_exist(),
    )
    transaction.save(entry_item(entry), condition=MainItem.pk.does_not_exist())
    guard = MarkerItem(
        *keys.guard_key(entry.org_id, entry.booking_id, entry.kind.value),
        kind="ledger_guard",
        ref=keys.guard_ref(entry.billed_in, entry.entry_id),
    )
    transaction.save(guard, condition=MarkerItem.pk.does_not_exist())


def commit_with_entry(
    write: Callable[[TransactWrite], None],
    entry: LedgerEntry,
    refusal: Callable[[list[tuple[str, str]]], Exception],
) -> LedgerEntry:
    """Commit `write`'s items and the entry atomically, in the first open month from the entry's.

    `refusal` turns the keys whose conditions failed (other than the month check) into the
    caller's error; a failed guard means the session is already billed (AlreadyBilled).
    """
    candidate = entry
    for _ in range(_MAX_MONTHS_AHEAD):
        transaction = TransactWrite(connection=connection())
        add_entry(transaction, candidate)
        write(transaction)
        try:
            with transaction:
                pass
        except TransactWriteError as exc:
            failed = failed_keys(transaction, exc)
            if keys.guard_key(entry.org_id, entry.booking_id, entry.kind.value) in failed:
                raise AlreadyBilled("this session is already billed", field="booking_id") from exc
            others = [key for key in failed if key != keys.period_key(entry.org_id, candidate.billed_in)]
            if others:
                raise refusal(others) from exc
            if not failed:
                raise Conflict("the change collided with another; try again") from exc
            # Only the month check failed: its invoice is drawn. Bill in the next month.
            candidate = candidate.billed_next_month()
            continue
        return candidate
    raise Conflict(f"no open billing month within a year of {entry.period}", field="booking_id")


def _read(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(wanted), _BATCH_KEYS):
        found.update(batch_read(wanted[start : start + _BATCH_KEYS]))
    return found


class BillingStore:
    # ------------------------------------------------------------------ price books
    def price_book(self, org_id: str) -> PriceBook | None:
        return get_entity(keys.org_pk(org_id), keys.PRICE_BOOK_SK, PriceBook)

    def save_price_book(self, book: PriceBook, change: Callable[[PriceBook], PriceBook]) -> PriceBook:
        """Apply `change` to the stored book (optimistically), or create it from `book`."""
        changed = modify_entity(keys.org_pk(book.org_id), keys.PRICE_BOOK_SK, PriceBook, change)
        if changed is not None:
            return changed
        created = change(book)
        item = MainItem(keys.org_pk(book.org_id), keys.PRICE_BOOK_SK, kind="price_book", body=created.model_dump_json())
        try:
            item.save(condition=MainItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("the price book changed at the same time; load it again", field="price_book") from exc
            raise
        return created

    # ------------------------------------------------------------------ ledger
    def entries(self, org_id: str, billed_in: str) -> Iterator[LedgerEntry]:
        """Every entry billed in a month: one Query on the month's own partition."""
        for item in MainItem.query(
            keys.ledger_pk(org_id, billed_in), MainItem.sk.startswith(keys.ENTRY_PREFIX), consistent_read=True
        ):
            yield LedgerEntry.model_validate_json(item.body)

    def entry(self, org_id: str, booking_id: str, kind: EntryKind) -> LedgerEntry | None:
        """A session's usage (or reversal) entry, found through its guard."""
        try:
            guard = MarkerItem.get(*keys.guard_key(org_id, booking_id, kind.value), consistent_read=True)
        except MarkerItem.DoesNotExist:
            return None
        billed_in, entry_id = keys.parse_guard_ref(guard.ref)
        try:
            item = MainItem.get(keys.ledger_pk(org_id, billed_in), keys.entry_sk(entry_id), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return LedgerEntry.model_validate_json(item.body)

    def usage_of(self, org_id: str, booking_ids: Collection[str]) -> dict[str, UsageFound]:
        """Each session's usage guard and the entry it points to; sessions without a guard are
        absent. BatchGetItems only: one round trip per 100 guards, then per 100 entries."""
        wanted = sorted(set(booking_ids))
        usage = EntryKind.USAGE.value
        guards = _read([keys.guard_key(org_id, booking_id, usage) for booking_id in wanted])
        pointers: dict[str, tuple[str, str]] = {}
        for booking_id in wanted:
            guard = guards.get(keys.guard_key(org_id, booking_id, usage))
            if guard is not None:
                pointers[booking_id] = keys.parse_guard_ref(guard["ref"]["S"])
        entry_keys = {
            b: (keys.ledger_pk(org_id, billed_in), keys.entry_sk(e)) for b, (billed_in, e) in pointers.items()
        }
        items = _read(list(entry_keys.values()))
        found: dict[str, UsageFound] = {}
        for booking_id, (billed_in, entry_id) in pointers.items():
            item = items.get(entry_keys[booking_id])
            entry = LedgerEntry.model_validate_json(item["body"]["S"]) if item else None
            found[booking_id] = UsageFound(booking_id=booking_id, billed_in=billed_in, entry_id=entry_id, entry=entry)
        return found

    # ------------------------------------------------------------------ periods
    def close_period(self, org_id: str, period: str, now: datetime) -> str:
        """Close a month to new entries (idempotent); return when it was first closed."""
        item = BillingPeriodItem(*keys.period_key(org_id, period))
        try:
            item.update(
                actions=[BillingPeriodItem.closed_at.set(now.isoformat())],
                condition=BillingPeriodItem.closed_at.does_not_exist(),
            )
            return now.isoformat()
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        stored = BillingPeriodItem.get(*keys.period_key(org_id, period), consistent_read=True)
        return stored.closed_at or now.isoformat()

    def period_closed_at(self, org_id: str, period: str) -> str | None:
        try:
            return BillingPeriodItem.get(*keys.period_key(org_id, period), consistent_read=True).closed_at
        except BillingPeriodItem.DoesNotExist:
            return None

    def last_closed_from(self, org_id: str, period: str) -> str | None:
        """The latest month from `period` on that is closed (its invoice drawn): one Query, newest first."""
        closed = BillingPeriodItem.query(
            keys.billing_pk(org_id),
            BillingPeriodItem.sk.between(keys.period_sk(period), keys.LAST_PERIOD_SK),
            filter_condition=BillingPeriodItem.closed_at.exists(),
            consistent_read=True,
            scan_index_forward=False,
        )
        for item in closed:
            return keys.period_from_sk(item.sk)
        return None

    # ------------------------------------------------------------------ invoices
    def invoice(self, org_id: str, period: str) -> tuple[Invoice, int] | None:
        try:
            item = MainItem.get(*keys.invoice_key(org_id, period), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Invoice.model_validate_json(item.body), int(item.version or 0)

    def save_invoice(self, invoice: Invoice, version: int | None) -> bool:
        """Write an invoice conditionally: new (version None) or unchanged since read.

        False when someone else wrote it first; two concurrent runs then keep one invoice.
        """
        item = MainItem(
            *keys.invoice_key(invoice.org_id, invoice.period), kind="invoice", body=invoice.model_dump_json()
        )
        if version is not None:
            item.version = version
        try:
            item.save()
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def invoices(self, org_id: str) -> list[Invoice]:
        """The org's invoices, newest first (one Query on the org's billing partition)."""
        items = MainItem.query(
            keys.billing_pk(org_id),
            MainItem.sk.startswith(keys.INVOICE_PREFIX),
            scan_index_forward=False,
            consistent_read=True,
        )
        return [Invoice.model_validate_json(item.body) for item in items]


__all__ = ["AlreadyBilled", "BillingStore", "InvoiceStatus", "add_entry", "commit_with_entry", "next_period"]
