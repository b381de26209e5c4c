"""Swagger UI at /docs renders in a real browser with no network but loopback.

The page loads its scripts from the `swagger-ui-dist` npm package the stack serves, never a
CDN: headless Chromium (Debian's package) must draw the operations of the generated document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from coaching_local import browser
from PIL import Image

pytestmark = pytest.mark.e2e


def test_swagger_ui_draws_the_api_offline(local_stack, tmp_path: Path) -> None:
    dom = browser.dump_dom(f"{local_stack.url}/docs")
    # Swagger UI builds one block per operation from /openapi.json; none exist before its scripts run.
    operations = re.findall(r'class="opblock opblock-(get|post|put|patch|delete)', dom)
    assert len(operations) >= 40, f"Swagger UI drew {len(operations)} operations"
    assert "/bookings" in dom
    assert "coaching-platform API" in dom


def test_the_docs_page_paints_more_than_a_blank_screen(local_stack, tmp_path: Path) -> None:
    shot = browser.screenshot(f"{local_stack.url}/docs", tmp_path / "docs.png")
    with Image.open(shot) as image:
        pixels = image.convert("RGB").resize((320, 400))
        colours = pixels.getcolors(maxcolors=320 * 400) or []
    # A blank or unstyled page has a handful of colours; the UI's method badges and text give many.
    assert len(colours) > 50
    most = max(count for count, _ in colours)
    assert most < 320 * 400 * 0.97, "the page is almost all one colour"
    # Swagger UI's GET badge blue (#61affe) and POST green (#49cc90) are painted, or something close.
    palette = [colour for _, colour in colours]
    assert any(_near(colour, (97, 175, 254)) for colour in palette), "no GET badge drawn"
    assert any(_near(colour, (73, 204, 144)) for colour in palette), "no POST badge drawn"


def _near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))
