"""The monthly HTML report's charts, checked in headless Chromium (coaching_local.browser): shared by the
end-to-end report test (tests/e2e/test_reports_api.py) and the seeded demo month (tests/local_stack/
test_demo_month.py), so both hold the report to the same check.

The DOM must carry the five inline SVG charts with drawn shapes; the screenshot's chart area (below the title
and the headline cards) must be more than background and hold the charts' bar and line colour.
"""

from __future__ import annotations

import re
from pathlib import Path

from coaching_local import browser
from PIL import Image

BAR_BLUE = (47, 111, 179)  # the report's bar and line colour (#2f6fb3)
_SAMPLE = (320, 400)  # the chart area is scaled to this many pixels before its colours are counted


def assert_report_charts_drawn(url: str, tmp_path: Path) -> None:
    """The report at `url` draws its charts: inline SVG with shapes, and a screenshot (`tmp_path`/report.png)
    whose chart area is not almost all background and shows the charts' colour."""
    dom = browser.dump_dom(url)
    assert len(re.findall(r"<svg[ >]", dom)) >= 5, "the five charts are inline SVG"
    assert len(re.findall(r"<path ", dom)) > 20, "the charts have drawn shapes"
    shot = browser.screenshot(url, tmp_path / "report.png", width=1280, height=1800)
    pixels = _SAMPLE[0] * _SAMPLE[1]
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        charts = rgb.crop((0, int(height * 0.18), width, height))  # below the title and the headline cards
        colours = charts.resize(_SAMPLE).getcolors(maxcolors=pixels) or []
    background = max(colours)[0]
    assert background < pixels * 0.97, "the chart area is almost all background"
    assert any(_near(colour, BAR_BLUE) for _, colour in colours), "no bar or line drawn in the charts' colour"


def _near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))
