"""A bare CR cannot end an invite's content line in any text value: the summary (the coach's name) and the
description (the focus competencies). The invite has no LOCATION; SUMMARY is also covered in test_booking_invite."""

from __future__ import annotations

import pytest
from coaching.domain.booking import calendar_invite
from icalendar import Calendar

from .test_booking_invite import NOW, booking, lines

SMUGGLED = "\rMETHOD:CANCEL\rSTATUS:CANCELLED\rEND:VEVENT\rBEGIN:VEVENT\rUID:evil@example.com"


def assert_one_confirmed_event(text: str) -> None:
    assert "\r" not in text.replace("\r\n", "")  # every CR is part of a CRLF line ending
    assert "METHOD:PUBLISH" in lines(text)
    assert not {"METHOD:CANCEL", "STATUS:CANCELLED", "UID:evil@example.com"} & set(lines(text))
    assert lines(text).count("BEGIN:VEVENT") == 1
    [event] = Calendar.from_ical(text).walk("VEVENT")
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["UID"]) == "b1@coaching-platform"


@pytest.mark.parametrize("name", ["Ada" + SMUGGLED, SMUGGLED + "Ada", "\r", "Ada\r"])
def test_a_bare_cr_in_the_coachs_name_stays_inside_the_summary(name: str):
    text = calendar_invite(booking(), summary=f"Coaching session with {name}", now=NOW)
    assert_one_confirmed_event(text)
    [event] = Calendar.from_ical(text).walk("VEVENT")
    assert str(event["SUMMARY"]) == f"Coaching session with {name}".replace("\r", "\n")


def test_a_bare_cr_in_a_focus_competency_stays_inside_the_description():
    text = calendar_invite(booking(focus_competencies=["delegation" + SMUGGLED]), summary="s", now=NOW)
    assert_one_confirmed_event(text)
    [event] = Calendar.from_ical(text).walk("VEVENT")
    assert str(event["DESCRIPTION"]) == ("Focus: delegation" + SMUGGLED).replace("\r", "\n")
