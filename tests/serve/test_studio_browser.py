"""The web studio in a real browser (Playwright driving Debian's Chromium) against a real ``parsing serve``
process: upload a CCP photo, see the overlay, remove a garment, parse again, save, and check the saved folder."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from parsing.commands.check_data import main as check_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    dataset = tmp_path / "dataset"
    command = [sys.executable, "-m", "parsing.commands.serve", "--port", str(port), "--dataset", str(dataset)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if json.load(answer) == {"status": "ok"}:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {process.stderr.read()[-2000:]}") from None
                time.sleep(0.5)
        yield url, dataset
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_upload_correct_reparse_and_save_in_the_studio(server, ccp_root):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, dataset = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(url)
        assert not page.locator("#work").is_visible()  # the empty start page: no broken image, no live buttons
        page.set_input_files("#file", str(ccp_root / "photos" / "0009.jpg"))
        page.wait_for_function("document.querySelector('#view').src.startsWith('data:image/jpeg')", timeout=60_000)
        rows = page.locator("#legend tbody tr")
        garments = rows.evaluate_all("rs => rs.map(r => r.dataset.label)")
        assert "coat" in garments, garments
        page.click("#legend tr[data-label='coat'] button.remove")
        assert page.locator("#legend tr[data-label='coat']").count() == 0
        page.click("#show-mask")
        assert page.locator("#view").get_attribute("src").startswith("data:image/png")
        page.click("#reparse")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('0009.jpg:')", timeout=60_000)
        after = rows.evaluate_all("rs => rs.map(r => r.dataset.label)")
        assert "coat" not in after
        page.click("#save")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('saved')", timeout=60_000)
        page.screenshot(path=str(dataset.parent / "studio.png"))
        bad = dataset.parent / "notes.jpg"
        bad.write_text("not a photo")
        page.set_input_files("#file", str(bad))
        page.click("#photos li >> nth=1")
        page.wait_for_function("document.querySelector('#status').className === 'error'", timeout=60_000)
        assert not page.locator("#work").is_visible()  # the previous photo's parse is not left on screen
        page.set_viewport_size({"width": 420, "height": 800})
        page.click("#photos li >> nth=0")
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 421)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert width <= 420, (width, wide[:8])  # no sideways overflow on a phone-sized window
        browser.close()
    assert (dataset / "images" / "0009.jpg").is_file() and (dataset / "masks" / "0009.png").is_file()
    assert check_data([str(dataset), "--format", "folder"]) == 0
