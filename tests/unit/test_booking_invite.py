"""The RFC 5545 invite (built with the icalendar package): the person's zone with its real
transitions, a UID that survives changes, SEQUENCE and METHOD, and text that cannot break lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coaching.domain.booking import Booking, CancelledBy, PolicySnapshot, calendar_invite
from icalendar import Calendar

START = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST, before the 14 March change)
NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def booking(**overrides: object) -> Booking:
    fields: dict[str, object] = {
        "booking_id": "b1",
        "org_id": "o1",
        "person_id": "p1",
        "coach_id": "c1",
        "engagement_id": "e1",
        "program": "SCALE",
        "start": START,
        "end": START + timedelta(minutes=30),
        "person_time_zone": "America/New_York",
        "coach_time_zone": "Europe/Berlin",
        "buffer_minutes": 10,
        "focus_competencies": ["delegation", "feedback"],
        "policy": PolicySnapshot(late_cancel_hours=24, allowance_period="2027-03"),
        "upcoming_slot": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Booking.model_validate(fields | overrides)


def lines(text: str) -> list[str]:
    assert text.endswith("\r\n")
    return text[:-2].split("\r\n")


def test_the_invite_is_in_the_persons_zone_with_its_transitions():
    text = calendar_invite(booking(), summary="Coaching session with Ada", now=NOW)
    assert text.startswith("BEGIN:VCALENDAR\r\n")
    assert "BEGIN:VTIMEZONE\r\nTZID:America/New_York" in text
    assert "DTSTART;TZID=America/New_York:20270310T100000" in text
    assert "DTEND;TZID=America/New_York:20270310T103000" in text
    assert "DTSTAMP:20270301T093000Z" in text
    # The zone's real changes in 2027: summer time from 14 March, back on 7 November.
    assert "DTSTART:20270314T030000" in text
    assert "DTSTART:20271107T020000" in text
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")
    parsed = Calendar.from_ical(text)
    [event] = parsed.walk("VEVENT")
    assert event.decoded("DTSTART") == START
    assert event.decoded("DTEND") == START + timedelta(minutes=30)
    assert str(event["DESCRIPTION"]) == "Focus: delegation, feedback"


def test_a_zone_without_daylight_saving_keeps_its_tzid_and_utc_uses_the_z_form():
    # RFC 5545 3.3.5: a UTC time takes the Z suffix, never a TZID (the hand-written invite said TZID=UTC).
    utc = calendar_invite(booking(person_time_zone="UTC"), summary="s", now=NOW)
    assert "DTSTART:20270310T150000Z" in lines(utc)
    assert "DTEND:20270310T153000Z" in lines(utc)
    kolkata = calendar_invite(booking(person_time_zone="Asia/Kolkata"), summary="s", now=NOW)
    assert "DTSTART;TZID=Asia/Kolkata:20270310T203000" in kolkata
    assert "TZOFFSETTO:+0530" in kolkata
    assert "BEGIN:DAYLIGHT" not in kolkata


def test_the_uid_is_stable_and_sequence_and_method_follow_the_state():
    first = booking()
    invite = calendar_invite(first, summary="s", now=NOW)
    assert "UID:b1@coaching-platform" in lines(invite)
    assert "SEQUENCE:0" in lines(invite)
    assert "METHOD:PUBLISH" in lines(invite)
    assert "STATUS:CONFIRMED" in lines(invite)
    moved = first.reschedule(START + timedelta(days=1), org_time_zone="UTC", now=NOW, replacement_id="b2").booking
    assert {"UID:b1@coaching-platform", "SEQUENCE:1"} <= set(lines(calendar_invite(moved, summary="s", now=NOW)))
    late = moved.start - timedelta(hours=2)
    replacement = moved.reschedule(START + timedelta(days=2), org_time_zone="UTC", now=late, replacement_id="b2")
    assert replacement.booking.booking_id == "b2"
    assert {"UID:b1@coaching-platform", "SEQUENCE:2"} <= set(
        lines(calendar_invite(replacement.booking, summary="s", now=NOW))
    )
    cancelled = calendar_invite(first.cancel(CancelledBy.PERSON, "", NOW), summary="s", now=NOW)
    assert {"METHOD:CANCEL", "STATUS:CANCELLED", "SEQUENCE:1", "UID:b1@coaching-platform"} <= set(lines(cancelled))
    assert cancelled.count("STATUS:CANCELLED") == 1


def test_a_bare_carriage_return_in_text_cannot_start_a_new_property():
    """Regression: a CR alone in the coach's name used to reach the content line as it was."""
    summary = "Coaching session with Ada\rMETHOD:CANCEL\r\nSTATUS:CANCELLED\nEND:VEVENT"
    text = calendar_invite(booking(), summary=summary, now=NOW)
    assert "\r" not in text.replace("\r\n", "")  # every CR is part of a CRLF line ending
    assert "\n" not in text.replace("\r\n", "")
    assert "METHOD:CANCEL" not in lines(text)
    assert "STATUS:CANCELLED" not in lines(text)
    assert sum(1 for line in lines(text) if line == "END:VEVENT") == 1
    [event] = Calendar.from_ical(text).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Coaching session with Ada\nMETHOD:CANCEL\nSTATUS:CANCELLED\nEND:VEVENT"
    assert str(event["STATUS"]) == "CONFIRMED"


def test_text_is_escaped_and_long_lines_are_folded_at_75_octets():
    summary = "Coaching; with Zoë, Ünal and a very long name " + "é" * 60
    text = calendar_invite(booking(), summary=summary, now=NOW)
    assert all(len(line.encode()) <= 75 for line in lines(text))
    assert "SUMMARY:Coaching\\; with Zoë\\, Ünal" in text
    [event] = Calendar.from_ical(text).walk("VEVENT")
    assert str(event["SUMMARY"]) == summary
