"""Service load and faults: ``parsing serve`` as a real process on 127.0.0.1, hit by concurrent clients.

* **load**: ``--clients`` threads × ``--requests`` each ``POST /parse`` of CCP validation photos (their original
  size, default options): every answer's status, p50 / p95 latency, photos/s, against ``parsing-predict`` on the
  same photos; the server's resident memory (RSS) after start-up, after a warm-up and after the load.
* **edits**: the same clients as the studio's users — each request ``POST /parse`` with ``edit=true`` and
  ``--clicks`` fill clicks (``POST /edit``) on it: every status, click p50 / p95, and the RSS after (the server
  keeps its newest 8 edit sessions).
* **faults**: bad uploads mixed with good ones — an empty file, text, a truncated JPEG, a 100-megapixel PNG, a
  body over the limit, unknown garments, a path-traversal name on save — each must get its documented 4xx, the
  good requests 200, and nothing may be written outside the dataset folder.

Only 127.0.0.1 is contacted; every loop is bounded in count and time. Writes ``bench/results/serve.{json,md}``.

    python bench/serve.py                        # 8 clients × 25 requests
    python bench/serve.py --clients 2 --requests 5
"""

# ruff: noqa: I001  (parsing first: it makes torchvision importable before Lightning/torchmetrics import it)
from __future__ import annotations

import parsing  # noqa: F401
from common import ROOT, machine, validation_photos, write_results
import argparse
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

from parsing.commands.predict import main as predict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dataset: Path, port: int, limit_s: float = 180) -> subprocess.Popen:
    command = [sys.executable, "-m", "parsing.commands.serve", "--port", str(port), "--dataset", str(dataset)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start")


def rss_mib(process: subprocess.Popen) -> float:
    return psutil.Process(process.pid).memory_info().rss / 2**20


def load(url: str, photos: list[Path], clients: int, requests: int, limit_s: float) -> dict:
    """``clients`` threads, each sending ``requests`` photos in turn; latencies and statuses."""
    data = [(p.name, p.read_bytes()) for p in photos]
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + limit_s

    def client(k: int) -> None:
        with httpx.Client(timeout=600) as http:
            for i in range(requests):
                if time.monotonic() > stop:
                    return
                name, body = data[(k * requests + i) % len(data)]
                start = time.perf_counter()
                status = http.post(f"{url}/parse", files={"file": (name, body, "image/jpeg")}).status_code
                with lock:
                    latencies.append(time.perf_counter() - start)
                    statuses.append(status)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=20)
    return {
        "requests": len(statuses),
        "ok": statuses.count(200),
        "seconds": round(seconds, 1),
        "photos_per_s": round(len(statuses) / seconds, 3),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(q[18], 2),
    }


def edit_load(url: str, photos: list[Path], clients: int, requests: int, clicks: int, limit_s: float) -> dict:
    """Each client parses with ``edit=true`` and clicks ``clicks`` times (a label at a spot per click)."""
    data = [(p.name, p.read_bytes()) for p in photos]
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + limit_s
    labels = ("coat", "dress", "bag", "pants", "skirt", "hat")

    def client(k: int) -> None:
        with httpx.Client(timeout=600) as http:
            for i in range(requests):
                if time.monotonic() > stop:
                    return
                name, body = data[(k * requests + i) % len(data)]
                opened = http.post(f"{url}/parse", files={"file": (name, body)}, data={"edit": "true"})
                with lock:
                    statuses.append(opened.status_code)
                if opened.status_code != 200:
                    continue
                w, h = opened.json()["size"]
                for c in range(clicks):
                    form = {"id": opened.json()["edit_id"], "op": "click", "label": labels[(i + c) % len(labels)]}
                    form.update(x=str(w * (0.3 + 0.1 * c) % w), y=str(h * (0.25 + 0.12 * c) % h))
                    start = time.perf_counter()
                    status = http.post(f"{url}/edit", data=form, files={"unused": ("u", b"")}).status_code
                    with lock:
                        latencies.append(time.perf_counter() - start)
                        statuses.append(status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=20)
    return {
        "requests": len(statuses),
        "ok": statuses.count(200),
        "clicks": len(latencies),
        "click_p50_s": round(statistics.median(latencies), 3),
        "click_p95_s": round(q[18], 3),
    }


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def faults(url: str, photo: Path, dataset: Path, root: Path) -> list[dict]:
    """Each bad request with its expected status, good requests between them; files written outside ``dataset``."""
    good = photo.read_bytes()
    w, h = Image.open(photo).size
    mask = ("m.png", png(np.zeros((h, w), np.uint8)))
    before = {p for p in root.rglob("*")}
    cases = [
        ("empty file", "/parse", {"file": ("e.jpg", b"")}, {}, 400),
        ("text", "/parse", {"file": ("notes.txt", b"not a photo at all")}, {}, 415),
        ("truncated JPEG", "/parse", {"file": ("cut.jpg", good[: len(good) // 3])}, {}, 400),
        ("100-megapixel PNG", "/parse", {"file": ("big.png", png(np.zeros((10_000, 10_000), np.uint8)))}, {}, 413),
        ("body over 20 MB", "/parse", {"file": ("huge.jpg", np.random.bytes(21 * 2**20))}, {}, 413),
        ("unknown garment", "/parse", {"file": ("a.jpg", good)}, {"garments": "gown"}, 422),
        ("path traversal on save", "/save", {"file": ("../../../../tmp/evil.jpg", good), "mask": mask}, {}, 200),
        ("save without a mask", "/save", {"file": ("a.jpg", good)}, {}, 422),
        ("edit of no session", "/edit", {"unused": ("u", b"")}, {"id": "nope", "op": "click"}, 404),
    ]
    rows = []
    with httpx.Client(timeout=600) as http:
        for name, path, files, data, expected in cases:
            answer = http.post(f"{url}{path}", files=files, data=data)
            message = answer.json().get("error") or answer.json().get("saved")
            after = http.post(f"{url}/parse", files={"file": ("ok.jpg", good)}).status_code
            rows.append({"case": name, "status": answer.status_code, "expected": expected, "message": message})
            rows[-1]["next_good_request"] = after
            print(rows[-1], flush=True)
    outside = [str(p) for p in root.rglob("*") if p not in before and dataset not in (p, *p.parents)]
    rows.append({"case": "files written outside the dataset folder", "outside": outside})
    return rows


def screenshot(url: str, photo: Path, path: Path) -> None:
    """The studio in Chromium (Playwright) after parsing ``photo`` → ``path`` (the README's picture)."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url)
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.querySelector('#status').textContent.includes('.jpg:')", timeout=60_000)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        browser.close()
    print(f"→ {path}")


def predict_rate(photos: list[Path], tmp: Path) -> float:
    predict([str(photos[0]), "-o", str(tmp / "warm"), "--no-progress"])
    start = time.perf_counter()
    predict([*map(str, photos), "-o", str(tmp / "out"), "--no-progress"])
    return len(photos) / (time.perf_counter() - start)


def markdown(result: dict) -> str:
    meta, r, e = result["meta"], result["load"], result["edits"]
    lines = [
        "# Service load and faults — `parsing serve` on 127.0.0.1",
        "",
        f"{meta['cpu']}, torch {meta['torch']}; one server process (default options: fast CRF, shipped model), "
        f"CCP validation photos at their original size (~550×825), `python bench/serve.py`.",
        "",
        "| clients × requests | answered 200 | seconds | photos/s | p50 latency | p95 latency "
        "| parsing-predict photos/s |",
        "|---|---|---|---|---|---|---|",
        f"| {meta['clients']} × {meta['requests_each']} | {r['ok']} of {r['requests']} | {r['seconds']} | "
        f"{r['photos_per_s']:.2f} | {r['p50_s']:.2f} s | {r['p95_s']:.2f} s | {result['predict_photos_per_s']:.2f} |",
        "",
        f"Server memory (RSS): {result['rss_mib']['started']:.0f} MiB started, {result['rss_mib']['warm']:.0f} MiB "
        f"after 5 warm-up requests, {result['rss_mib']['after']:.0f} MiB after the load, "
        f"{result['rss_mib']['after_edits']:.0f} MiB after the edits "
        f"(bound checked: growth under {meta['rss_growth_bound_mib']} MiB).",
        "",
        f"Edits: {meta['clients']} clients × {meta['edit_requests']} photos parsed with `edit=true`, "
        f"{meta['clicks']} fill clicks each (`POST /edit`): {e['ok']} of {e['requests']} answered 200; "
        f"click latency p50 {e['click_p50_s']:.3f} s, p95 {e['click_p95_s']:.3f} s (waiting behind the other "
        "clients' parses on the one parse thread).",
        "",
        "## Faults (each followed by a good request)",
        "",
        "| case | status | expected | then a good request | message |",
        "|---|---|---|---|---|",
    ]
    for row in result["faults"]:
        if "status" in row:
            message = str(row["message"])[:90].replace("|", "\\|")
            lines.append(
                f"| {row['case']} | {row['status']} | {row['expected']} | {row['next_good_request']} | {message} |"
            )
        else:
            lines.append(f"| {row['case']} | {len(row['outside'])} | 0 | | {', '.join(row['outside']) or 'none'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "ccp"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="per client")
    parser.add_argument("--photos", type=int, default=25, help="distinct validation photos sent")
    parser.add_argument("--limit-s", type=float, default=900, help="stop sending after this long")
    parser.add_argument("--edit-requests", type=int, default=5, help="per client, in the edits phase")
    parser.add_argument("--clicks", type=int, default=5, help="fill clicks after each edit=true parse")
    parser.add_argument("--rss-growth-bound-mib", type=float, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--screenshot", type=Path, default=None, help="only save the studio's picture here")
    args = parser.parse_args()
    photos = [p for p, _ in validation_photos(args.data_root, args.photos)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = root / "dataset"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(dataset, port)
        if args.screenshot is not None:
            try:
                screenshot(url, photos[1], args.screenshot)
            finally:
                server.terminate()
            return
        try:
            rss = {"started": rss_mib(server)}
            load(url, photos[:5], 1, 5, args.limit_s)
            rss["warm"] = rss_mib(server)
            result_load = load(url, photos, args.clients, args.requests, args.limit_s)
            rss["after"] = rss_mib(server)
            result_edits = edit_load(url, photos, args.clients, args.edit_requests, args.clicks, args.limit_s)
            rss["after_edits"] = rss_mib(server)
            fault_rows = faults(url, photos[0], dataset, root)
        finally:
            server.terminate()
            server.wait(timeout=30)
        rate = predict_rate(photos, root)
    growth = max(rss["after"], rss["after_edits"]) - rss["warm"]
    meta = {"clients": args.clients, "requests_each": args.requests, "photos": len(photos), **machine()}
    meta.update(rss_growth_bound_mib=args.rss_growth_bound_mib, edit_requests=args.edit_requests, clicks=args.clicks)
    result = {"meta": meta, "load": result_load, "predict_photos_per_s": round(rate, 3), "rss_mib": rss}
    result["faults"], result["edits"] = fault_rows, result_edits
    write_results(args.out, "serve", result, markdown)
    bad = [r for r in fault_rows if r.get("status") not in (None, r.get("expected")) or r.get("outside")]
    edits_ok = result_edits["ok"] == result_edits["requests"]
    if result_load["ok"] != result_load["requests"] or not edits_ok or bad or growth > args.rss_growth_bound_mib:
        raise SystemExit(f"service bench failed: {result_load}, faults {bad}, RSS growth {growth:.0f} MiB")


if __name__ == "__main__":
    main()
