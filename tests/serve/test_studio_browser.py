"""The web studio in a real browser (Playwright driving Debian's Chromium) against a real ``parsing serve``
process: upload CCP photos, fix the mask with fill, brush and polygon, undo and redo, save & next, and check that the
saved mask is the one the page showed."""

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

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


@contextlib.contextmanager
def serving(*options: str):
    """A real ``parsing serve`` process on a free port → its URL."""
    port = free_port()
    command = [sys.executable, "-m", "parsing.commands.serve", "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if json.load(answer)["status"] == "ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"server did not start: {process.stderr.read()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    dataset = tmp_path / "dataset"
    with serving("--dataset", str(dataset)) as url:
        yield url, dataset


def chromium():  # noqa: ANN201
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api")


def mask_ids(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.mark.slow
def test_label_with_fill_brush_polygon_undo_and_save_what_is_shown(server, ccp_root):
    sync_api = chromium()
    url, dataset = server
    shown = "photo().result.mask_png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        assert not page.locator("#work").is_visible()  # the empty start page: no broken image, no live buttons
        page.set_input_files("#file", [str(ccp_root / "photos" / f"{n}.jpg") for n in ("0009", "0003")])
        status = "document.querySelector('#status').textContent"
        page.wait_for_function(f"{status}.startsWith('0009.jpg:')", timeout=60_000)
        rows = page.locator("#legend tbody tr")
        assert "coat" in rows.evaluate_all("rs => rs.map(r => r.dataset.label)")
        parsed = mask_ids(page.evaluate(shown))
        box = page.locator("#canvas").bounding_box()
        h, w = parsed.shape

        def at(fx: float, fy: float) -> tuple[float, float]:  # a point of the photo, as a fraction → the screen
            return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

        # Fill: the picked label from the type-ahead box, one click
        page.fill("#label", "bag")
        page.dispatch_event("#label", "change")
        page.mouse.click(*at(0.5, 0.45))
        page.wait_for_function(f"{status}.startsWith('click:')", timeout=30_000)
        filled = mask_ids(page.evaluate(shown))
        bag = page.evaluate("state.labels.labels.find(l => l.name === 'bag').id")
        assert filled[int(0.45 * h), int(0.5 * w)] == bag and (filled != parsed).sum() > 50
        assert "bag" in rows.evaluate_all("rs => rs.map(r => r.dataset.label)")
        # Brush: a stroke across the top-left corner, label by shortcut key 'b' + the type-ahead
        page.keyboard.press("b")
        page.fill("#label", "hat")
        page.dispatch_event("#label", "change")
        page.mouse.move(*at(0.05, 0.05))
        page.mouse.down()
        page.mouse.move(*at(0.2, 0.06), steps=5)
        page.mouse.up()
        page.wait_for_function(f"{status}.startsWith('paint:')", timeout=30_000)
        brushed = mask_ids(page.evaluate(shown))
        hat = page.evaluate("state.labels.labels.find(l => l.name === 'hat').id")
        assert brushed[int(0.055 * h), int(0.12 * w)] == hat
        # Polygon: three corners and Enter
        page.keyboard.press("p")
        for corner in ((0.7, 0.8), (0.95, 0.8), (0.95, 0.95)):
            page.mouse.click(*at(*corner))
        page.keyboard.press("Enter")
        page.wait_for_function(f"{status}.startsWith('paint:') && state.photos[0].at === 3", timeout=30_000)
        drawn = mask_ids(page.evaluate(shown))
        assert drawn[int(0.9 * h), int(0.9 * w)] == hat
        # Undo twice (Ctrl+Z), redo once (Ctrl+Shift+Z): the masks the page showed before
        page.keyboard.press("Control+z")
        page.wait_for_function("state.photos[0].at === 2 && !state.busy", timeout=30_000)
        page.keyboard.press("Control+z")
        page.wait_for_function("state.photos[0].at === 1 && !state.busy", timeout=30_000)
        assert (mask_ids(page.evaluate(shown)) == filled).all()
        page.keyboard.press("Control+Shift+z")
        page.wait_for_function("state.photos[0].at === 2 && !state.busy", timeout=30_000)
        assert (mask_ids(page.evaluate(shown)) == brushed).all()
        # Zoom and pan keep the tools on the photo's pixels
        page.keyboard.press("+")
        page.keyboard.press("0")
        # Save & next: the saved mask is exactly the one shown; the next photo opens
        page.click("#save-next")
        page.wait_for_function(f"{status}.startsWith('0003.jpg:')", timeout=60_000)
        page.screenshot(path=str(dataset.parent / "studio.png"))
        saved = np.asarray(Image.open(dataset / "masks" / "0009.png"))
        assert (saved == brushed).all()
        # The garment list still works: remove one, add one, parse again with exactly those
        listed = rows.evaluate_all("rs => rs.map(r => r.dataset.label)")
        page.click(f"#legend tr[data-label='{listed[0]}'] button.remove")
        page.select_option("#add-select", "belt")
        page.click("#add")
        page.click("#reparse")
        page.wait_for_function(f"{status}.startsWith('0003.jpg:') && !state.busy", timeout=60_000)
        outfit = page.evaluate("photo().result.outfit")
        assert listed[0] not in outfit
        assert "belt" in outfit or "did not place belt" in page.locator("#status").text_content()
        bad = dataset.parent / "notes.jpg"
        bad.write_text("not a photo")
        page.set_input_files("#file", str(bad))
        page.click("#photos li >> nth=2")
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
    assert (dataset / "images" / "0009.jpg").is_file()
    assert check_data([str(dataset), "--format", "folder"]) == 0


@pytest.mark.slow
def test_the_labelling_queue_opens_the_folders_photos_and_save_and_next_walks_it(ccp_root, tmp_path):
    sync_api = chromium()
    folder, dataset = tmp_path / "todo", tmp_path / "labels"
    folder.mkdir()
    for stem in ("0003", "0009"):
        (folder / f"{stem}.jpg").write_bytes((ccp_root / "photos" / f"{stem}.jpg").read_bytes())
    status = "document.querySelector('#status').textContent"
    with serving("--photos", str(folder), "--dataset", str(dataset)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_function(f"/^000[39]\\.jpg:/.test({status})", timeout=60_000)  # the queue's first photo
        assert page.locator("#photos li").count() == 2
        assert "0 done, 2 to label" in page.locator("#queue-status").text_content()
        first = page.evaluate("photo().name")
        box = page.locator("#canvas").bounding_box()
        page.fill("#label", "hat")
        page.dispatch_event("#label", "change")
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
        page.wait_for_function(f"{status}.startsWith('click:')", timeout=30_000)
        shown = mask_ids(page.evaluate("photo().result.mask_png"))
        page.click("#save-next")
        page.wait_for_function(f"photo().name !== '{first}' && /^000[39]\\.jpg:/.test({status})", timeout=60_000)
        assert "1 done, 1 to label" in page.locator("#queue-status").text_content()
        browser.close()
    assert (np.asarray(Image.open(dataset / "masks" / first.replace(".jpg", ".png"))) == shown).all()


@pytest.mark.slow
def test_the_similar_panel_shows_garments_of_the_catalogue(ccp_root, tmp_path):
    pytest.importorskip("faiss")
    from parsing.commands.search import index_main

    sync_api = chromium()
    photos = [str(ccp_root / "photos" / f"{stem}.jpg") for stem in ("0001", "0003", "0006", "0011")]
    catalogue = tmp_path / "shop.catalogue"
    assert index_main([*photos, "-o", str(catalogue), "--no-progress"]) == 0
    status = "document.querySelector('#status').textContent"
    with serving("--catalogue", str(catalogue)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.set_input_files("#file", photos[1])
        page.wait_for_function(f"{status}.startsWith('0003.jpg:')", timeout=180_000)
        page.click("#legend tr[data-label='coat'] button.similar")
        page.wait_for_function(f"{status}.startsWith('similar') || {status}.includes('similar coats')", timeout=120_000)
        assert "similar coats" in page.locator("#status").text_content()
        figures = page.locator("#similar figure")
        assert figures.count() >= 2 and page.locator("#similar img").count() == figures.count()
        assert page.locator("#similar figure >> nth=0").get_attribute("title") is None
        first = page.locator("#similar figcaption >> nth=0").get_attribute("title")
        assert first == photos[1]  # the photo itself is in the catalogue: its coat comes first
        browser.close()
