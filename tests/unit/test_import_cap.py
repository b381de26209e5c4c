"""The people import refuses row 10,001 before it reads on, and bodies over 6 MB, on both media types."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coaching.domain.errors import InvalidInput
from coaching.domain.people import MAX_IMPORT_ROWS, rows_from_csv
from coaching.services import admin
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
HEADER = "external_hr_id,name,email,level,function,languages,time_zone\n"


def row_line(number: int) -> str:
    return f"E{number},Person {number},p{number}@example.com,manager,sales,en,Europe/London\n"


class Lines:
    """A CSV body as an iterator of lines that fails the test if read past `stop` lines."""

    def __init__(self, rows: int, *, stop: int) -> None:
        self.rows = rows
        self.stop = stop
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        yield HEADER
        for number in range(1, self.rows + 1):
            self.read += 1
            if self.read > self.stop:
                raise AssertionError(f"the CSV was read past row {self.stop}")
            yield row_line(number)


def test_a_csv_of_10001_rows_is_refused_at_row_10001_without_reading_on():
    body = Lines(rows=50_000, stop=MAX_IMPORT_ROWS + 1)
    with pytest.raises(InvalidInput, match="at most 10,000 rows") as refused:
        admin.check_csv_rows(body)
    assert refused.value.field == "body"
    assert body.read == MAX_IMPORT_ROWS + 1


def test_a_csv_of_exactly_10000_rows_passes_and_is_read_to_the_end():
    body = Lines(rows=MAX_IMPORT_ROWS, stop=MAX_IMPORT_ROWS)
    assert admin.check_csv_rows(body) == MAX_IMPORT_ROWS
    assert body.read == MAX_IMPORT_ROWS


@pytest.mark.parametrize(
    "text",
    [
        "",
        HEADER,
        HEADER + row_line(1) + "\n\n" + row_line(2) + "\n",  # blank lines are not rows
        HEADER + 'E1,"Ana\nMaria",a@example.com,manager,sales,en,Europe/London\n' + row_line(2),  # a cell over 2 lines
        HEADER + "E1,only,three\n" + "E2,a,b,c,d,e,f,g,h\n",  # short and long rows are rows (reported, not dropped)
        "\n" + row_line(1),  # an empty header row
    ],
)
def test_rows_are_counted_as_the_import_parses_them(text: str):
    assert admin.check_csv_rows(io.StringIO(text)) == len(rows_from_csv(text))


def test_a_csv_the_reader_cannot_read_is_a_422_on_the_body():
    oversized_cell = HEADER + "E1," + "x" * (csv.field_size_limit() + 1) + ",a@example.com\n"
    with pytest.raises(InvalidInput, match="cannot be read") as refused:
        admin.check_csv_rows(io.StringIO(oversized_cell))
    assert refused.value.field == "body"


def test_the_import_body_is_capped_at_6_mb_before_it_is_parsed():
    admin.check_import_body("x" * admin.MAX_IMPORT_BODY_CHARS)
    with pytest.raises(InvalidInput, match="6 MB") as refused:
        admin.check_import_body("x" * (admin.MAX_IMPORT_BODY_CHARS + 1))
    assert refused.value.field == "body"


def _admin_app() -> Any:
    name = "_admin_app_for_import_cap"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / "admin" / "app.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_json_list_is_refused_at_item_10001_without_validating_the_items_after_it():
    # Item 10,002 is not an object: were it validated, it would be reported beside the length.
    body = json.dumps({"people": [{}] * (MAX_IMPORT_ROWS + 1) + ["not an object"]})
    with pytest.raises(ValidationError) as refused:
        _admin_app().PeopleImport.model_validate_json(body)
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [("too_long", ("people",))]
