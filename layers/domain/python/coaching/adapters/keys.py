"""Every DynamoDB key the platform writes or reads, in one place (see docs/data-model.md).

Tenant-owned keys start with ``ORG#<org uuid>#`` so that a tenant's items can be found,
exported or erased by prefix and can never collide with another tenant's (the closing ``#``
keeps org ``a`` from matching org ``ab``). The partitions that are not tenant-owned, on purpose:
the coach network (``NETWORK#…``: one network serves every org), the platform indexes
(``PLATFORM#…``), the coach-side indexes (``COACH#<coach>#…``: a coach works for many orgs), the
booking locator (``BOOKING#<booking>``: found by booking id alone), the outbox and the
idempotency records.

Functions take plain strings (ids, enum values, ``yyyy-mm`` periods); the stores compose them
from domain objects. The strings are persisted: changing one is a data migration.
"""

from __future__ import annotations

from datetime import datetime

# ------------------------------------------------------------------ organisation: ORG#<org>#
ORG_PROFILE_SK = "PROFILE"
PRICE_BOOK_SK = "PRICEBOOK"


def org_pk(org_id: str) -> str:
    return f"ORG#{org_id}#"


# The org's monthly meters (rule -> sort-key prefix): sessions against a cap, money against a budget.
METER_PREFIXES = {"cap": "USAGE", "budget": "BUDGET"}
# Separates a meter's sort key from the once-only markers of the thresholds it crossed.
_THRESHOLD = "#THRESHOLD#"


def meter_sk(rule: str, period: str) -> str:
    return f"{METER_PREFIXES[rule]}#{period}"


def meter_key(org_id: str, rule: str, period: str) -> tuple[str, str]:
    return org_pk(org_id), meter_sk(rule, period)


def threshold_sk(rule: str, period: str, percent: int) -> str:
    # Beside its meter in the org partition; exists once the meter crossed `percent` that month.
    return f"{meter_sk(rule, period)}{_THRESHOLD}{percent}"


def meter_rule(sk: str) -> str | None:
    """The rule ("cap", "budget") whose meter this sort key is, or None (threshold markers included)."""
    if _THRESHOLD in sk:
        return None
    return next((rule for rule, prefix in METER_PREFIXES.items() if sk.startswith(f"{prefix}#")), None)


# ------------------------------------------------------------------ platform indexes (gsi1, not tenant-owned)
ORGS_INDEX_PK = "PLATFORM#ORGS"
# Network gaps of every org, newest first, for operators.
GAPS_INDEX_PK = "PLATFORM#GAPS"


def org_index_sk(org_id: str) -> str:
    return f"ORG#{org_id}"


# ------------------------------------------------------------------ people: ORG#<org>#PEOPLE
PERSON_PREFIX = "PERSON#"


def people_pk(org_id: str) -> str:
    return f"ORG#{org_id}#PEOPLE"


def person_sk(person_id: str) -> str:
    return f"{PERSON_PREFIX}{person_id}"


# ------------------------------------------------------------------ a person's partition: ORG#<org>#PERSON#<person>
# Matches, engagements, markers, bookings and counters: one Query returns a person's history.
BOOKING_PREFIX = "BOOKING#"
ACTIVE_PREFIX = "ACTIVE#"
ALLOWANCE_PREFIX = "ALLOWANCE#"
UPCOMING_PREFIX = "UPCOMING#"


def person_pk(org_id: str, person_id: str) -> str:
    return f"ORG#{org_id}#PERSON#{person_id}"


def match_sk(match_id: str) -> str:
    return f"MATCH#{match_id}"


def engagement_sk(engagement_id: str) -> str:
    # Also the engagement's gsi1 sort key under `coach_engagements_pk`.
    return f"ENGAGEMENT#{engagement_id}"


def active_sk(program: str) -> str:
    # One active engagement per person and program: the marker's existence is the rule.
    return f"{ACTIVE_PREFIX}{program}"


def booking_sk(booking_id: str) -> str:
    return f"{BOOKING_PREFIX}{booking_id}"


def allowance_sk(program: str, period: str) -> str:
    return f"{ALLOWANCE_PREFIX}{program}#{period}"


def allowance_key(org_id: str, person_id: str, program: str, period: str) -> tuple[str, str]:
    return person_pk(org_id, person_id), allowance_sk(program, period)


def upcoming_sk(place: int) -> str:
    # One of the person's `max_upcoming` places, numbered from 01.
    return f"{UPCOMING_PREFIX}{place:02d}"


def upcoming_key(org_id: str, person_id: str, place: int) -> tuple[str, str]:
    return person_pk(org_id, person_id), upcoming_sk(place)


# ------------------------------------------------------------------ coach-side indexes (gsi1, not tenant-owned)
def coach_engagements_pk(coach_id: str) -> str:
    return f"COACH#{coach_id}#ENGAGEMENTS"


def coach_bookings_pk(coach_id: str) -> str:
    return f"COACH#{coach_id}#BOOKINGS"


def coach_booking_index_sk(start: datetime, booking_id: str) -> str:
    # Starts in ISO order, so a date range is one `between` on the sort key.
    return f"{start.isoformat()}#{booking_id}"


def coach_bookings_between(low: datetime, high: datetime) -> tuple[str, str]:
    """Sort-key bounds for the sessions starting from `low` up to and including `high` ("~" sorts after "#")."""
    return low.isoformat(), f"{high.isoformat()}~"


# ------------------------------------------------------------------ the confidential table (same person partition)
def match_situation_sk(match_id: str) -> str:
    return f"SITUATION#{match_id}"


def booking_situation_sk(booking_id: str) -> str:
    return f"SITUATION#BOOKING#{booking_id}"


# ------------------------------------------------------------------ calendar locks: one item per 5-minute bucket
_COACH_CALENDAR_PREFIX = "NETWORK#COACH#"
_CALENDAR_SUFFIX = "#CAL"


def coach_calendar_pk(coach_id: str) -> str:
    # In the network, not an org: a coach's sessions for every org share one calendar.
    return f"{_COACH_CALENDAR_PREFIX}{coach_id}{_CALENDAR_SUFFIX}"


def person_calendar_pk(org_id: str, person_id: str) -> str:
    return f"ORG#{org_id}#PERSON#{person_id}{_CALENDAR_SUFFIX}"


def calendar_lock_sk(bucket: str) -> str:
    """`bucket` is the domain's UTC bucket id (`YYYYMMDDTHHMMZ`, see `coaching.domain.booking`)."""
    return f"T#{bucket}"


def is_coach_calendar_pk(pk: str) -> bool:
    return pk.startswith(_COACH_CALENDAR_PREFIX) and pk.endswith(_CALENDAR_SUFFIX)


def is_calendar_pk(pk: str) -> bool:
    """A coach's or a person's calendar."""
    return pk.endswith(_CALENDAR_SUFFIX)


# ------------------------------------------------------------------ booking locator: BOOKING#<booking>
LOCATOR_SK = "LOCATOR"


def locator_key(booking_id: str) -> tuple[str, str]:
    # Not tenant-owned: coaches and operators know only the booking id. The item names the org.
    return booking_sk(booking_id), LOCATOR_SK


def sessions_index_pk(org_id: str, period: str) -> str:
    # gsi1 of the locators: an org's sessions of a month, for reconciliation.
    return f"ORG#{org_id}#SESSIONS#{period}"


def sessions_index_sk(booking_id: str) -> str:
    return booking_sk(booking_id)


def booking_id_from_sessions_index_sk(sk: str) -> str:
    return sk.removeprefix(BOOKING_PREFIX)


# ------------------------------------------------------------------ coach network: NETWORK#… (not tenant-owned)
COACHES_PK = "NETWORK#COACHES"
COACH_PREFIX = "COACH#"
LOAD_PREFIX = "LOAD#"
ROSTER_PK = "NETWORK#ROSTER"
ROSTER_POINTER_SK = "CURRENT"
ROSTER_REQUESTS_SK = "REQUESTS"  # the counter of rebuild requests (coalescing, services/roster.py)


def coach_sk(coach_id: str) -> str:
    return f"{COACH_PREFIX}{coach_id}"


def coaches_by_status_pk(status: str) -> str:
    return f"NETWORK#COACHES#{status}"


def load_sk(coach_id: str) -> str:
    # Beside the profiles in COACHES_PK: one Query reads every load (cohort launch).
    return f"{LOAD_PREFIX}{coach_id}"


def coach_id_from_load_sk(sk: str) -> str:
    return sk.removeprefix(LOAD_PREFIX)


def roster_part_sk(version: int, build_id: str, part: int) -> str:
    # The build id keeps two concurrent rebuilds from overwriting each other's parts.
    return f"V#{version:012d}#{build_id}#PART#{part:04d}"


# ------------------------------------------------------------------ network gaps: ORG#<org>#GAPS
def gaps_pk(org_id: str) -> str:
    return f"ORG#{org_id}#GAPS"


def gap_sk(at: datetime, gap_id: str) -> str:
    # Also the gsi1 sort key under GAPS_INDEX_PK: time first, so the index lists newest first.
    return f"{at.isoformat()}#{gap_id}"


# ------------------------------------------------------------------ billing: ledger, periods, invoices, guards
ENTRY_PREFIX = "ENTRY#"
INVOICE_PREFIX = "INVOICE#"
_PERIOD_PREFIX = "PERIOD#"


def ledger_pk(org_id: str, billed_in: str) -> str:
    # One partition per org and invoice month: an invoice reads exactly its own entries.
    return f"ORG#{org_id}#LEDGER#{billed_in}"


def entry_sk(entry_id: str) -> str:
    return f"{ENTRY_PREFIX}{entry_id}"


def billing_pk(org_id: str) -> str:
    return f"ORG#{org_id}#BILLING"


def period_sk(period: str) -> str:
    return f"{_PERIOD_PREFIX}{period}"


def period_key(org_id: str, period: str) -> tuple[str, str]:
    return billing_pk(org_id), period_sk(period)


# The sort key after every PERIOD#YYYY-MM.
LAST_PERIOD_SK = period_sk("9999-99")


def period_from_sk(sk: str) -> str:
    return sk.removeprefix(_PERIOD_PREFIX)


def invoice_sk(period: str) -> str:
    return f"{INVOICE_PREFIX}{period}"


def invoice_key(org_id: str, period: str) -> tuple[str, str]:
    return billing_pk(org_id), invoice_sk(period)


def session_pk(org_id: str, booking_id: str) -> str:
    # A session's billing guards; deterministic per session whatever month its entry lands in.
    return f"ORG#{org_id}#SESSION#{booking_id}"


def guard_sk(kind: str) -> str:
    """`kind` is an EntryKind value: "usage" or "reversal"."""
    return f"LEDGER#{kind}"


def guard_key(org_id: str, booking_id: str, kind: str) -> tuple[str, str]:
    """The deterministic key that makes a session's usage (or its reversal) exist at most once."""
    return session_pk(org_id, booking_id), guard_sk(kind)


def guard_ref(billed_in: str, entry_id: str) -> str:
    """A guard's `ref`: where its entry is (`ledger_pk(org, billed_in)` / `entry_sk(entry_id)`)."""
    return f"{billed_in}#{entry_id}"


def parse_guard_ref(ref: str) -> tuple[str, str]:
    """(billed_in, entry_id) of a guard's `ref`; entry ids contain `#`, months do not."""
    billed_in, entry_id = ref.split("#", 1)
    return billed_in, entry_id


# ------------------------------------------------------------------ outbox: OUTBOX#<event id> (not tenant-owned)
# One partition per event: the stream relay reads inserts, nothing ever queries them.
OUTBOX_SK = "EVENT"


def outbox_pk(event_id: str) -> str:
    return f"OUTBOX#{event_id}"


# ------------------------------------------------------------------ idempotency: IDEMPOTENCY#<function>
def idempotency_pk(function_name: str) -> str:
    """Where Powertools Idempotency remembers the event ids a function consumed.

    Powertools writes the sort key itself (`<key prefix>#<hash of the event id>`) and the expiry.
    """
    return f"IDEMPOTENCY#{function_name}"


# ------------------------------------------------------------------ HR webhooks: beside the people, ORG#<org>#PEOPLE
# A delivery's receipt and one marker per event it carries, in the org's people partition (the family the HR
# function already writes); the raw payload sits under the same keys in the confidential table. The webhook
# id is checked against coaching.domain.hr.WEBHOOK_ID_PATTERN (no '#') before any key is built.
HR_WEBHOOK_PREFIX = "HRWEBHOOK#"


def hr_receipt_sk(webhook_id: str) -> str:
    return f"{HR_WEBHOOK_PREFIX}{webhook_id}#RECEIPT"


def hr_payload_sk(webhook_id: str) -> str:
    # In the confidential table: the raw body as received, for audit and replay.
    return f"{HR_WEBHOOK_PREFIX}{webhook_id}#PAYLOAD"


def hr_event_sk(webhook_id: str, index: int) -> str:
    # Exists once the delivery's event `index` took effect: the marker and the effect commit together.
    return f"{HR_WEBHOOK_PREFIX}{webhook_id}#EVENT#{index:03d}"


def hr_record_sk(person_id: str) -> str:
    # What the HR system has said about the person (coaching.domain.hr.HrRecord), beside the person item.
    return f"{HR_WEBHOOK_PREFIX}RECORD#{person_id}"


# ------------------------------------------------------------ promotion transitions: wait-lists per org and transition
# One entry per person (the sort key is the person's): a repeated promotion finds it and writes nothing new. The
# programmes that open cohorts from a wait-list query its partition (coaching.domain.transitions.WaitlistEntry).
def waitlist_pk(org_id: str, transition: str) -> str:
    return f"ORG#{org_id}#WAITLIST#{transition}"


def waitlist_sk(person_id: str) -> str:
    return f"{PERSON_PREFIX}{person_id}"


# ------------------------------------------------------------ context handoff and erasure (the person's partition)
CONTEXT_CONSENT_SK = "CONSENT#CONTEXT"  # which situations the person shares with their coaches
SITUATION_PREFIX = "SITUATION#"  # every situation of the person (confidential table), matches and bookings
_BOOKING_SITUATION_PREFIX = "SITUATION#BOOKING#"


def situation_ref(sk: str) -> tuple[str, str]:
    """("booking" | "match", id) of a situation's sort key (`match_situation_sk`, `booking_situation_sk`)."""
    if sk.startswith(_BOOKING_SITUATION_PREFIX):
        return "booking", sk.removeprefix(_BOOKING_SITUATION_PREFIX)
    return "match", sk.removeprefix(SITUATION_PREFIX)


def is_hr_payload_sk(sk: str) -> bool:
    return sk.startswith(HR_WEBHOOK_PREFIX) and sk.endswith("#PAYLOAD")


# A person's match-history summary, in their own partition beside their matches and engagements
# (coaching.domain.engagements.HistorySummary): read in the same BatchGetItem as the org and the person.
HISTORY_SUMMARY_SK = "HISTORY"


def history_summary_key(org_id: str, person_id: str) -> tuple[str, str]:
    return person_pk(org_id, person_id), HISTORY_SUMMARY_SK


# A cohort launch run as a background job: its status (progress), its request and its result in pieces,
# in one partition of the org's (coaching.adapters.cohort_job_store).
COHORT_JOB_SK = "JOB"
COHORT_JOB_REQUEST_SK = "REQUEST"
COHORT_JOB_RESULT_PREFIX = "RESULT#"


def cohort_job_pk(org_id: str, job_id: str) -> str:
    return f"{org_pk(org_id)}COHORTJOB#{job_id}"


def cohort_job_result_sk(part: int) -> str:
    return f"{COHORT_JOB_RESULT_PREFIX}{part:04d}"


# ------------------------------------------------------------------ programmes: catalogue, cohorts, workshops
# The catalogue sits in the org's own partition; a cohort and a workshop each own a partition; the GROW wait-list
# is one partition per org (this branch's minimal store: the HR integration's promotion wait-list replaces it).
# A person's membership of a cohort or a workshop is an item in the person's partition: their timeline reads
# it with their engagements and bookings in one Query.
PROGRAMMES_SK = "PROGRAMMES"
COHORT_SK = "COHORT"
COHORT_SEATS_SK = "SEATS"
MEMBER_PREFIX = "MEMBER#"
GROUP_SESSION_PREFIX = "SESSION#"
WORKSHOP_SK = "WORKSHOP"
PROGRAMME_PREFIX = "PROGRAMME#"


def cohort_pk(org_id: str, cohort_id: str) -> str:
    return f"ORG#{org_id}#COHORT#{cohort_id}"


def cohorts_index_pk(org_id: str) -> str:
    # gsi1: an org's cohorts, newest first by start date.
    return f"ORG#{org_id}#COHORTS"


def cohort_index_sk(start_date: str, cohort_id: str) -> str:
    return f"{start_date}#{cohort_id}"


def member_sk(person_id: str) -> str:
    return f"{MEMBER_PREFIX}{person_id}"


def group_session_sk(index: int) -> str:
    return f"{GROUP_SESSION_PREFIX}{index:02d}"


def workshop_pk(org_id: str, workshop_id: str) -> str:
    return f"ORG#{org_id}#WORKSHOP#{workshop_id}"


def participation_sk(kind: str, ref_id: str) -> str:
    """In the person's partition: `kind` is "COHORT" or "WORKSHOP"."""
    return f"{PROGRAMME_PREFIX}{kind}#{ref_id}"


def waitlist_cohort_sk(transition: str, language: str) -> str:
    """In the wait-list's partition: which cohort the wait-list last opened for a transition and language."""
    return f"OPENED#{transition}#{language}"


# ------------------------------------------------------------------ development: feedback, goals, 360s, tallies
# Individual answers (session feedback, each rater's 360 ratings, a released 360 result) live in the
# CONFIDENTIAL table, in the person's partition; only the development function reads them. Goals, 360
# rounds (without ratings) and the active-goal counter live in the person's partition of the main table.
# Aggregates read only the tally cells (ORG#<org>#TALLY#<month>), which name nobody.
FEEDBACK_PREFIX = "FEEDBACK#"
GOAL_PREFIX = "GOAL#"
ASSESSMENT_PREFIX = "ASSESSMENT#"
ACTIVE_GOALS_SK = "GOALS#ACTIVE"
CELL_PREFIX = "CELL#"
ROLE_PROFILE_PREFIX = "ROLEPROFILE#"
DEVELOPMENT_POLICY_SK = "POLICY"
INVITE_SK = "INVITE"
OPEN_ASSESSMENTS_INDEX_PK = "PLATFORM#ASSESSMENTS#OPEN"
FOLLOW_UP_INDEX_PK = "PLATFORM#ASSESSMENTS#FOLLOWUP"


def feedback_sk(booking_id: str) -> str:
    # Confidential table, person partition: one person's feedback on one session.
    return f"{FEEDBACK_PREFIX}{booking_id}"


def measured_sk(period: str, program: str) -> str:
    # Main table, person partition: the person was counted as a respondent of `period` and `program`
    # (its `ref` is the tally cell they were counted in).
    return f"MEASURED#{period}#{program}"


def goal_sk(goal_id: str) -> str:
    return f"{GOAL_PREFIX}{goal_id}"


def checkins_index_pk(due_on: str) -> str:
    # gsi1 of goals: the goals whose next check-in is due on `due_on` (yyyy-mm-dd), for the daily nudge.
    return f"PLATFORM#CHECKINS#{due_on}"


def checkins_index_sk(org_id: str, person_id: str, goal_id: str) -> str:
    return f"ORG#{org_id}#PERSON#{person_id}#GOAL#{goal_id}"


def assessment_sk(assessment_id: str) -> str:
    return f"{ASSESSMENT_PREFIX}{assessment_id}"


def open_assessment_index_sk(opened_at: datetime, assessment_id: str) -> str:
    # gsi1 of an open 360 round (dropped at release): the daily release check lists them oldest first.
    return f"{opened_at.isoformat()}#{assessment_id}"


def follow_up_index_sk(due_on: str, assessment_id: str) -> str:
    # gsi1 of a released baseline: by its follow-up date (yyyy-mm-dd), so the daily run reads the days just due.
    return f"{due_on}#{assessment_id}"


def follow_up_index_range(first: str, last: str) -> tuple[str, str]:
    # Every follow_up_index_sk dated first..last, both included ("~" sorts after any assessment id).
    return first, f"{last}#~"


ANSWER_PREFIX = "ANSWER#"


def answer_sk(assessment_id: str, rater_id: str) -> str:
    # Confidential table, person partition: one rater's ratings ("self" for the person's own).
    return f"{ANSWER_PREFIX}{assessment_id}#{rater_id}"


RESULT_PREFIX = "RESULT#"


def result_sk(assessment_id: str) -> str:
    # Confidential table, person partition: the released result (group means).
    return f"{RESULT_PREFIX}{assessment_id}"


def invite_pk(token_hash: str) -> str:
    # Not tenant-owned: a rater has only the link. The item names the org, person, round and rater.
    return f"INVITE#{token_hash}"


def development_pk(org_id: str) -> str:
    # The org's role profiles and development policy (org_admin), apart from the org profile admin owns.
    return f"ORG#{org_id}#DEVELOPMENT"


def role_profile_sk(level: str) -> str:
    return f"{ROLE_PROFILE_PREFIX}{level}"


def tally_pk(org_id: str, period: str) -> str:
    # One partition per org and month: every capture tally cell of that month, one Query for a report.
    return f"ORG#{org_id}#TALLY#{period}"


def cell_sk(cell_id: str) -> str:
    return f"{CELL_PREFIX}{cell_id}"


# ------------------------------------------------------------------ rollups and reports (docs/data-model.md)
# The rollups function owns the contributions and the cells; report_generation reads the cells only.
CONTRIBUTION_PREFIX = "P#"
ROLLUP_META_SK = "META"
REPORT_SETTINGS_SK = "SETTINGS"
ARTEFACT_PREFIX = "ARTEFACT#"


def contribution_pk(org_id: str, period: str) -> str:
    # One person's pseudonymous contribution to an org month: reports are never granted this partition.
    return f"ORG#{org_id}#CONTRIB#{period}"


def contribution_sk(pid: str) -> str:
    return f"{CONTRIBUTION_PREFIX}{pid}"


def rollup_pk(org_id: str, period: str) -> str:
    # The month's cells (`CELL#<digest of the cell>`, counters as attributes) and its META: one Query.
    return f"ORG#{org_id}#ROLLUP#{period}"


def rollup_cell_sk(digest: str) -> str:
    return f"{CELL_PREFIX}{digest}"


def report_pk(org_id: str) -> str:
    # The org's report settings (SETTINGS) and the artefacts written each month (ARTEFACT#<yyyy-mm>).
    return f"ORG#{org_id}#REPORT"


def artefact_sk(period: str) -> str:
    return f"{ARTEFACT_PREFIX}{period}"


def rollups_index_pk(period: str) -> str:
    # Not tenant-owned: which orgs have a rollup that month (the operator's cross-org coach aggregate).
    return f"PLATFORM#ROLLUPS#{period}"


def rollups_index_sk(org_id: str) -> str:
    return f"ORG#{org_id}"


TREND_CACHE_PREFIX = "TREND#"


def trend_cache_sk(view: str, period: str) -> str:
    # In the org's report partition: one month's published trend point for one view (`*`: the org, or the
    # encoded filter cell), with the digest of the month's inputs it was computed from (services/reports.py).
    return f"{TREND_CACHE_PREFIX}{view}#{period}"


def trend_cache_prefix(view: str) -> str:
    return f"{TREND_CACHE_PREFIX}{view}#"
