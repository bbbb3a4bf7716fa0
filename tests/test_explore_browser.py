"""The explorer's page in a real browser: headless Chromium (Debian's package) loads it, the page's own
check (``#test-move``) moves the first slider with an ``input`` event as a user would, and the picture it
draws must change; a screenshot is saved for a person to look at. Skips where Chromium is not installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_explore import PIXELS, tiny_vae

from netgraph.explore import Explorer
from netgraph.explore.server import make_server

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
SCREENSHOT = Path(tempfile.gettempdir()) / "netgraph-explorer.png"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")


def chromium(url: str, *what: str, profile: Path) -> subprocess.CompletedProcess:
    """One headless Chromium run that loads ``url`` and lets its scripts run for up to 10 s of virtual time."""
    command = [
        CHROMIUM, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--hide-scrollbars", "--window-size=1000,700", f"--user-data-dir={profile}",
        "--disable-dev-shm-usage", "--virtual-time-budget=10000", *what, url,
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    server = make_server(Explorer(tiny_vae(), PIXELS), port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.url, tmp_path_factory.mktemp("chromium")
    server.shutdown()
    server.server_close()


def test_moving_a_slider_redraws_the_picture(page):
    url, profile = page
    done = chromium(url + "#test-move", "--dump-dom", profile=profile)
    found = re.search(r'<pre id="test-result">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(found.group(1))
    assert result["changed"] and result["before"] != result["after"], result
    assert result["before"].endswith("/8x8") and result["z"] == [2.5, 0, 0]
    assert result["strip"] == 8 * 8 + 9  # the interpolation strip between pictures 0 and 1 is drawn
    assert '<div id="message" role="status"></div>' in done.stdout  # no error shown


def test_a_screenshot_of_the_page(page):
    url, profile = page
    SCREENSHOT.unlink(missing_ok=True)
    chromium(url + "#test-move", f"--screenshot={SCREENSHOT}", profile=profile)
    shot = np.asarray(Image.open(SCREENSHOT).convert("L"))
    assert shot.shape == (700, 1000)
    assert (shot < 128).mean() > 0.01  # text, sliders and pictures drawn, not a blank page
