"""Take the README screenshot of the Data Split panel: ``assets/data_split_panel.png``.

Usage (needs Debian's Chromium at /usr/bin/chromium)::

    .venv/bin/python tests/panel_host/screenshot.py [--out assets/data_split_panel.png]

Serves the repository on 127.0.0.1, opens the host page with the committed panel build and
captures the panel as the pipeline editor shows it (default config, a seed set).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def take_screenshot(out: Path) -> Path:
    """Render the panel in the host page and save a PNG of it to ``out``.

    Examples
    --------
    >>> take_screenshot(Path("/tmp/panel.png"))  # doctest: +SKIP
    PosixPath('/tmp/panel.png')
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(REPO)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 1000}, device_scale_factor=2)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/tests/panel_host/index.html")
            page.wait_for_function("window.host && window.host.updates.length > 0")
            panel = page.frame_locator("#panel-frame")
            panel.get_by_test_id("group-distribution-0").fill("70")
            panel.get_by_test_id("group-distribution-1").fill("20")
            panel.get_by_test_id("seed").fill("42")
            panel.get_by_test_id("seed").blur()
            page.wait_for_function(
                "window.host.updates.at(-1).metadata.customNodeConfig.seed === 42"
                " && window.host.updates.at(-1).metadata.customNodeConfig.validation.valid"
            )
            page.wait_for_timeout(300)  # let the height message and transitions settle
            out.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#frame-box").screenshot(path=str(out))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "data_split_panel.png")
    args = parser.parse_args()
    print(take_screenshot(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
