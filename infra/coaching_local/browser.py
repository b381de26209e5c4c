"""Headless Chromium (Debian's package) for tests of what a person looks at: pages, reports.

The flags keep Chromium off the network it would otherwise call at start (this machine has none
beyond loopback) and give each run its own empty profile. `dump_dom` returns the DOM after the
page's scripts ran; `screenshot` writes a PNG of the rendered page.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI; the sandbox refuses root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class BrowserMissing(RuntimeError):
    """No Chromium on PATH: `bash infra/bootstrap.sh` installs Debian's package."""


def chromium() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing("headless Chromium is not installed; run `bash infra/bootstrap.sh` (apt-get install chromium)")


def _run(url: str, *extra: str, budget_ms: int, timeout: float) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [chromium(), *QUIET_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra]
        return subprocess.run([*command, url], capture_output=True, timeout=timeout, check=True)


def dump_dom(url: str, *, budget_ms: int = 10_000, timeout: float = 90.0) -> str:
    """The serialised DOM once the page's scripts have run (within `budget_ms` of virtual time)."""
    return _run(url, "--dump-dom", budget_ms=budget_ms, timeout=timeout).stdout.decode("utf-8", "replace")


def screenshot(url: str, target: Path, *, width: int = 1280, height: int = 1600, budget_ms: int = 10_000) -> Path:
    """A PNG of the rendered page at `width` x `height`."""
    _run(url, f"--screenshot={target}", f"--window-size={width},{height}", budget_ms=budget_ms, timeout=90.0)
    if not target.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot to {target}")
    return target
