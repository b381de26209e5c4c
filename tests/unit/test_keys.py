"""Every DynamoDB key format, pinned: the strings are persisted, so a change here is a data migration.

`coaching/adapters/keys.py` is the one home of every key the platform writes or reads; the last
test keeps it that way by refusing key literals anywhere else in the adapters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from coaching.adapters import keys

ORG = "3f2b8c1e-0000-4000-8000-000000000001"
PERSON = "p-1"
COACH = "c-1"
BOOKING = "b-1"
AT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)

FORMATS = [
    # organisation
    ("org_pk", keys.org_pk(ORG), f"ORG#{ORG}#"),
    ("ORG_PROFILE_SK", keys.ORG_PROFILE_SK, "PROFILE"),
    ("PRICE_BOOK_SK", keys.PRICE_BOOK_SK, "PRICEBOOK"),
    ("meter_key cap", keys.meter_key(ORG, "cap", "2027-03"), (f"ORG#{ORG}#", "USAGE#2027-03")),
    ("meter_key budget", keys.meter_key(ORG, "budget", "2027-03"), (f"ORG#{ORG}#", "BUDGET#2027-03")),
    ("threshold_sk cap", keys.threshold_sk("cap", "2027-03", 80), "USAGE#2027-03#THRESHOLD#80"),
    ("threshold_sk budget", keys.threshold_sk("budget", "2027-03", 100), "BUDGET#2027-03#THRESHOLD#100"),
    # platform indexes
    ("ORGS_INDEX_PK", keys.ORGS_INDEX_PK, "PLATFORM#ORGS"),
    ("org_index_sk", keys.org_index_sk(ORG), f"ORG#{ORG}"),
    ("GAPS_INDEX_PK", keys.GAPS_INDEX_PK, "PLATFORM#GAPS"),
    # people
    ("people_pk", keys.people_pk(ORG), f"ORG#{ORG}#PEOPLE"),
    ("person_sk", keys.person_sk(PERSON), "PERSON#p-1"),
    # a person's partition
    ("person_pk", keys.person_pk(ORG, PERSON), f"ORG#{ORG}#PERSON#p-1"),
    ("match_sk", keys.match_sk("m-1"), "MATCH#m-1"),
    ("engagement_sk", keys.engagement_sk("e-1"), "ENGAGEMENT#e-1"),
    ("active_sk", keys.active_sk("SCALE"), "ACTIVE#SCALE"),
    ("booking_sk", keys.booking_sk(BOOKING), "BOOKING#b-1"),
    (
        "allowance_key",
        keys.allowance_key(ORG, PERSON, "SCALE", "2027-03"),
        (f"ORG#{ORG}#PERSON#p-1", "ALLOWANCE#SCALE#2027-03"),
    ),
    ("upcoming_key", keys.upcoming_key(ORG, PERSON, 3), (f"ORG#{ORG}#PERSON#p-1", "UPCOMING#03")),
    ("upcoming_sk", keys.upcoming_sk(12), "UPCOMING#12"),
    # coach-side indexes
    ("coach_engagements_pk", keys.coach_engagements_pk(COACH), "COACH#c-1#ENGAGEMENTS"),
    ("coach_bookings_pk", keys.coach_bookings_pk(COACH), "COACH#c-1#BOOKINGS"),
    ("coach_booking_index_sk", keys.coach_booking_index_sk(AT, BOOKING), "2027-03-01T09:30:00+00:00#b-1"),
    (
        "coach_bookings_between",
        keys.coach_bookings_between(AT.replace(hour=0, minute=0), AT),
        ("2027-03-01T00:00:00+00:00", "2027-03-01T09:30:00+00:00~"),
    ),
    # confidential table
    ("match_situation_sk", keys.match_situation_sk("m-1"), "SITUATION#m-1"),
    ("booking_situation_sk", keys.booking_situation_sk(BOOKING), "SITUATION#BOOKING#b-1"),
    # calendar locks
    ("coach_calendar_pk", keys.coach_calendar_pk(COACH), "NETWORK#COACH#c-1#CAL"),
    ("person_calendar_pk", keys.person_calendar_pk(ORG, PERSON), f"ORG#{ORG}#PERSON#p-1#CAL"),
    ("calendar_lock_sk", keys.calendar_lock_sk("20270301T0930Z"), "T#20270301T0930Z"),
    # booking locator and the sessions index
    ("locator_key", keys.locator_key(BOOKING), ("BOOKING#b-1", "LOCATOR")),
    ("sessions_index_pk", keys.sessions_index_pk(ORG, "2027-03"), f"ORG#{ORG}#SESSIONS#2027-03"),
    ("sessions_index_sk", keys.sessions_index_sk(BOOKING), "BOOKING#b-1"),
    # coach network
    ("COACHES_PK", keys.COACHES_PK, "NETWORK#COACHES"),
    ("coach_sk", keys.coach_sk(COACH), "COACH#c-1"),
    ("coaches_by_status_pk", keys.coaches_by_status_pk("approved"), "NETWORK#COACHES#approved"),
    ("load_sk", keys.load_sk(COACH), "LOAD#c-1"),
    ("ROSTER_PK", keys.ROSTER_PK, "NETWORK#ROSTER"),
    ("ROSTER_POINTER_SK", keys.ROSTER_POINTER_SK, "CURRENT"),
    ("ROSTER_REQUESTS_SK", keys.ROSTER_REQUESTS_SK, "REQUESTS"),
    ("roster_part_sk", keys.roster_part_sk(7, "abc123", 2), "V#000000000007#abc123#PART#0002"),
    # network gaps
    ("gaps_pk", keys.gaps_pk(ORG), f"ORG#{ORG}#GAPS"),
    ("gap_sk", keys.gap_sk(AT, "g-1"), "2027-03-01T09:30:00+00:00#g-1"),
    # billing
    ("ledger_pk", keys.ledger_pk(ORG, "2027-03"), f"ORG#{ORG}#LEDGER#2027-03"),
    ("entry_sk", keys.entry_sk("b-1#completed#reversal"), "ENTRY#b-1#completed#reversal"),
    ("billing_pk", keys.billing_pk(ORG), f"ORG#{ORG}#BILLING"),
    ("period_key", keys.period_key(ORG, "2027-03"), (f"ORG#{ORG}#BILLING", "PERIOD#2027-03")),
    ("LAST_PERIOD_SK", keys.LAST_PERIOD_SK, "PERIOD#9999-99"),
    ("invoice_key", keys.invoice_key(ORG, "2027-03"), (f"ORG#{ORG}#BILLING", "INVOICE#2027-03")),
    ("guard_key usage", keys.guard_key(ORG, BOOKING, "usage"), (f"ORG#{ORG}#SESSION#b-1", "LEDGER#usage")),
    ("guard_key reversal", keys.guard_key(ORG, BOOKING, "reversal"), (f"ORG#{ORG}#SESSION#b-1", "LEDGER#reversal")),
    ("guard_ref", keys.guard_ref("2027-03", "b-1#completed"), "2027-03#b-1#completed"),
    # outbox and idempotency
    ("outbox_pk", keys.outbox_pk("ev-1"), "OUTBOX#ev-1"),
    ("OUTBOX_SK", keys.OUTBOX_SK, "EVENT"),
    ("idempotency_pk", keys.idempotency_pk("metering"), "IDEMPOTENCY#metering"),
    # promotion wait-lists, context consent, situations read back
    ("waitlist_pk", keys.waitlist_pk(ORG, "new_manager"), f"ORG#{ORG}#WAITLIST#new_manager"),
    ("waitlist_sk", keys.waitlist_sk(PERSON), "PERSON#p-1"),
    ("CONTEXT_CONSENT_SK", keys.CONTEXT_CONSENT_SK, "CONSENT#CONTEXT"),
    ("situation_ref match", keys.situation_ref(keys.match_situation_sk("m-1")), ("match", "m-1")),
    ("situation_ref booking", keys.situation_ref(keys.booking_situation_sk(BOOKING)), ("booking", "b-1")),
    ("is_hr_payload_sk", keys.is_hr_payload_sk(keys.hr_payload_sk("msg_1")), True),
    ("is_hr_payload_sk receipt", keys.is_hr_payload_sk(keys.hr_receipt_sk("msg_1")), False),
]


@pytest.mark.parametrize(("built", "expected"), [pytest.param(b, e, id=name) for name, b, e in FORMATS])
def test_every_key_format_is_pinned(built: object, expected: object) -> None:
    assert built == expected


def test_enum_values_make_the_same_keys_as_their_strings() -> None:
    from coaching.domain.invoicing import EntryKind
    from coaching.domain.taxonomy import Program

    assert keys.guard_key(ORG, BOOKING, EntryKind.USAGE) == keys.guard_key(ORG, BOOKING, "usage")
    assert keys.active_sk(Program.SCALE) == "ACTIVE#SCALE"


# Partitions (and gsi1 partitions) of tenant data, built for ORG: each must start with `ORG#<org>#`.
TENANT_PARTITIONS = {
    "org_pk": keys.org_pk(ORG),
    "meter_key": keys.meter_key(ORG, "cap", "2027-03")[0],
    "people_pk": keys.people_pk(ORG),
    "person_pk": keys.person_pk(ORG, PERSON),
    "allowance_key": keys.allowance_key(ORG, PERSON, "SCALE", "2027-03")[0],
    "upcoming_key": keys.upcoming_key(ORG, PERSON, 1)[0],
    "person_calendar_pk": keys.person_calendar_pk(ORG, PERSON),
    "sessions_index_pk": keys.sessions_index_pk(ORG, "2027-03"),
    "gaps_pk": keys.gaps_pk(ORG),
    "ledger_pk": keys.ledger_pk(ORG, "2027-03"),
    "billing_pk": keys.billing_pk(ORG),
    "period_key": keys.period_key(ORG, "2027-03")[0],
    "invoice_key": keys.invoice_key(ORG, "2027-03")[0],
    "session_pk": keys.session_pk(ORG, BOOKING),
    "guard_key": keys.guard_key(ORG, BOOKING, "usage")[0],
    "waitlist_pk": keys.waitlist_pk(ORG, "new_manager"),
    "history_summary_key": keys.history_summary_key(ORG, PERSON)[0],
    "cohort_job_pk": keys.cohort_job_pk(ORG, "job-1"),
    "cohort_pk": keys.cohort_pk(ORG, BOOKING),
    "cohorts_index_pk": keys.cohorts_index_pk(ORG),
    "workshop_pk": keys.workshop_pk(ORG, BOOKING),
    "tally_pk": keys.tally_pk(ORG, "2027-03"),
    "development_pk": keys.development_pk(ORG),
    "contribution_pk": keys.contribution_pk(ORG, "2027-03"),
    "rollup_pk": keys.rollup_pk(ORG, "2027-03"),
    "report_pk": keys.report_pk(ORG),
}

# The partitions that are not an org's, and why.
OTHER_PARTITIONS = {
    "ORGS_INDEX_PK": "the operators' list of every org (gsi1)",
    "GAPS_INDEX_PK": "the operators' list of every org's network gaps (gsi1)",
    "COACHES_PK": "one coach network serves every org",
    "coaches_by_status_pk": "the network's vetting index (gsi1)",
    "ROSTER_PK": "the network's roster snapshot",
    "coach_calendar_pk": "a coach's sessions for every org share one calendar",
    "coach_engagements_pk": "a coach's engagements across orgs (gsi1; the coach id comes from the token)",
    "coach_bookings_pk": "a coach's sessions across orgs (gsi1; the coach id comes from the token)",
    "locator_key": "found by booking id alone (coaches, operators); the item names its org",
    "outbox_pk": "one partition per event, read only by the stream relay",
    "idempotency_pk": "Powertools Idempotency records per consuming function",
    "invite_pk": "a 360 rater has only the link's token; the item names the org, person and round",
    "checkins_index_pk": "the daily nudge's goals due on one date, across orgs (gsi1)",
    "OPEN_ASSESSMENTS_INDEX_PK": "the daily release check's open 360 rounds, across orgs (gsi1)",
    "FOLLOW_UP_INDEX_PK": "released 360 baselines by follow-up date, for the daily nudge, across orgs (gsi1)",
    "rollups_index_pk": "which orgs have a rollup in a month, for the operators' cross-org coaching topics",
}


@pytest.mark.parametrize(("name", "partition"), sorted(TENANT_PARTITIONS.items()))
def test_tenant_owned_keys_start_with_the_org_prefix(name: str, partition: str) -> None:
    assert partition.startswith(f"ORG#{ORG}#"), name
    # The closing `#` keeps an org whose id starts with another org's id out of its prefix.
    assert not partition.startswith(keys.org_pk(ORG[:-1]))


def test_every_partition_builder_is_classified_as_tenant_owned_or_not() -> None:
    """A new partition in keys.py must say whether it is an org's (and then carry the prefix)."""
    builders = {
        name for name in vars(keys) if re.search(r"(_pk|_PK|_key)$", name) and not name.startswith(("_", "is_"))
    }
    assert builders == set(TENANT_PARTITIONS) | set(OTHER_PARTITIONS)
    assert not set(TENANT_PARTITIONS) & set(OTHER_PARTITIONS)


def test_ids_come_back_out_of_the_keys_that_carry_them() -> None:
    assert keys.coach_id_from_load_sk(keys.load_sk(COACH)) == COACH
    assert keys.period_from_sk(keys.period_key(ORG, "2027-03")[1]) == "2027-03"
    assert keys.booking_id_from_sessions_index_sk(keys.sessions_index_sk(BOOKING)) == BOOKING
    assert keys.parse_guard_ref(keys.guard_ref("2027-03", "b-1#completed#reversal")) == (
        "2027-03",
        "b-1#completed#reversal",
    )


def test_prefixes_match_the_keys_they_select() -> None:
    assert keys.person_sk(PERSON).startswith(keys.PERSON_PREFIX)
    assert keys.coach_sk(COACH).startswith(keys.COACH_PREFIX)
    assert not keys.load_sk(COACH).startswith(keys.COACH_PREFIX)  # profiles and loads share a partition
    assert keys.load_sk(COACH).startswith(keys.LOAD_PREFIX)
    assert keys.booking_sk(BOOKING).startswith(keys.BOOKING_PREFIX)
    assert keys.active_sk("SCALE").startswith(keys.ACTIVE_PREFIX)
    assert keys.allowance_key(ORG, PERSON, "SCALE", "2027-03")[1].startswith(keys.ALLOWANCE_PREFIX)
    assert keys.upcoming_sk(1).startswith(keys.UPCOMING_PREFIX)
    assert keys.entry_sk("x").startswith(keys.ENTRY_PREFIX)
    assert keys.invoice_key(ORG, "2027-03")[1].startswith(keys.INVOICE_PREFIX)
    assert keys.period_key(ORG, "2027-03")[1] < keys.LAST_PERIOD_SK


def test_key_predicates_tell_calendars_and_meters_apart() -> None:
    assert keys.is_coach_calendar_pk(keys.coach_calendar_pk(COACH))
    assert not keys.is_coach_calendar_pk(keys.person_calendar_pk(ORG, PERSON))
    assert not keys.is_coach_calendar_pk(keys.COACHES_PK)
    assert keys.is_calendar_pk(keys.person_calendar_pk(ORG, PERSON))
    assert not keys.is_calendar_pk(keys.person_pk(ORG, PERSON))
    assert keys.meter_rule(keys.meter_key(ORG, "cap", "2027-03")[1]) == "cap"
    assert keys.meter_rule(keys.meter_key(ORG, "budget", "2027-03")[1]) == "budget"
    assert keys.meter_rule(keys.threshold_sk("cap", "2027-03", 80)) is None
    assert keys.meter_rule(keys.allowance_key(ORG, PERSON, "SCALE", "2027-03")[1]) is None


def test_a_failed_booking_condition_is_named_by_its_key() -> None:
    """booking_store maps the keys of failed conditions to the rule they enforce through keys.py."""
    from coaching.adapters.booking_store import _label

    person = keys.person_pk(ORG, PERSON)
    assert _label((keys.coach_calendar_pk(COACH), keys.calendar_lock_sk("20270301T0930Z"))) == "coach"
    assert _label((keys.person_calendar_pk(ORG, PERSON), keys.calendar_lock_sk("20270301T0930Z"))) == "person"
    assert _label((person, keys.active_sk("SCALE"))) == "engagement"
    assert _label(keys.upcoming_key(ORG, PERSON, 2)) == "upcoming"
    assert _label(keys.allowance_key(ORG, PERSON, "SCALE", "2027-03")) == "allowance"
    assert _label(keys.meter_key(ORG, "cap", "2027-03")) == "cap"
    assert _label(keys.meter_key(ORG, "budget", "2027-03")) == "budget"
    assert _label((keys.org_pk(ORG), keys.threshold_sk("cap", "2027-03", 80))) == "booking"
    assert _label((person, keys.booking_sk(BOOKING))) == "booking"


# ------------------------------------------------------------------ one home per key format

ADAPTERS = Path(keys.__file__).parent
# A string literal that opens with an upper-case word and `#` ("BOOKING#", f"ORG#{org}"), an
# f-string that joins a value to `#` (f"{start}#{id}"), or a lone "#" (splitting a key).
KEY_LITERALS = [
    re.compile(r"""(?<![\w`])[fFrR]?["'][A-Z][A-Z0-9_]*#"""),
    re.compile(r"""(?<![\w`])[fF]["'][^"'\n]*\}#"""),
    re.compile(r"""["']#["']"""),
]


def key_literals(source: str) -> list[str]:
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), 1)
        if any(pattern.search(line) for pattern in KEY_LITERALS)
    ]


def test_the_pattern_finds_inline_keys() -> None:
    assert key_literals('pk = f"ORG#{org_id}#GAPS"')
    assert key_literals("query(MainItem.sk.startswith('BOOKING#'))")
    assert key_literals('sk = f"{at.isoformat()}#{gap_id}"')
    assert key_literals('billed_in, entry_id = ref.split("#", 1)')
    assert not key_literals('"""Ledger entries live in ``ORG#<org>#LEDGER#<month>``."""')
    assert not key_literals('item = MainItem(keys.gaps_pk(org_id), keys.gap_sk(at, gap_id), kind="gap")')


@pytest.mark.parametrize("module", sorted(p.name for p in ADAPTERS.glob("*.py") if p.name != "keys.py"))
def test_adapters_build_no_key_outside_keys_py(module: str) -> None:
    found = key_literals((ADAPTERS / module).read_text())
    assert not found, f"{module} builds keys inline; move the format to coaching/adapters/keys.py: {found}"
