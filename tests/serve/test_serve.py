"""``parsing serve``'s API, in process: the parse answer (same mask as parsing-predict), every documented 4xx,
saving pairs into a dataset folder safely, the token outside loopback."""

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from parsing import Parser  # noqa: E402
from parsing.commands.check_data import main as check_data  # noqa: E402
from parsing.commands.predict import main as predict  # noqa: E402
from parsing.serve.app import Service, create_app  # noqa: E402


@pytest.fixture(scope="module")
def parser():
    return Parser.load(device="cpu")


@pytest.fixture(scope="module")
def photo(ccp_root):
    return (ccp_root / "photos" / "0009.jpg").read_bytes()  # a validation photo


def client(parser, **options) -> TestClient:
    return TestClient(create_app(Service(parser, **options)))


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_parse_answers_the_summary_record_and_the_same_mask_as_predict(parser, photo, ccp_root, tmp_path):
    api = client(parser)
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["network"] == repr(parser.backend) and health["version"]
    labels = api.get("/labels").json()
    assert labels["labels"][0] == {"id": 0, "name": "null", "colour": [0, 0, 0]} and "dress" in labels["garments"]
    answer = api.post("/parse", files={"file": ("0009.jpg", photo, "image/jpeg")}, data={"overlay": "true"})
    assert answer.status_code == 200
    body = answer.json()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    assert body["size"] == [mask.shape[1], mask.shape[0]] and body["outfit"] and body["crf"] == "fast"
    assert Image.open(io.BytesIO(base64.b64decode(body["overlay_jpeg"]))).format == "JPEG"
    assert predict([str(ccp_root / "photos" / "0009.jpg"), "-o", str(tmp_path), "--no-progress"]) == 0
    assert np.array_equal(mask, np.asarray(Image.open(tmp_path / "masks" / "0009.png")))
    record = json.loads((tmp_path / "summary.jsonl").read_text())
    assert body["outfit"] == record["outfit"] and body["labels"][0]["label"] == record["labels"][0]["label"]
    told = api.post("/parse", files={"file": ("a.jpg", photo)}, data={"garments": "Dress,shoes", "merge": "ccp-coarse"})
    assert told.status_code == 200 and set(told.json()["outfit"]) <= {"dress", "shoes"}
    assert "/parse" in api.get("/openapi.json").json()["paths"]


def test_concurrent_requests_pipeline_and_each_gets_its_own_answer(parser, ccp_root):
    from concurrent.futures import ThreadPoolExecutor

    api = client(parser)
    photos = {stem: (ccp_root / "photos" / f"{stem}.jpg").read_bytes() for stem in ("0009", "0038", "0003")}
    alone = {stem: api.post("/parse", files={"file": (f"{stem}.jpg", data)}).json() for stem, data in photos.items()}
    jobs = [*photos.items(), (*list(photos.items())[0][:1], b"not a photo"), *photos.items()]
    with ThreadPoolExecutor(4) as pool:  # requests in flight together: one's network beside another's steps
        answers = list(pool.map(lambda job: api.post("/parse", files={"file": (f"{job[0]}.jpg", job[1])}), jobs))
    assert [a.status_code for a in answers] == [200, 200, 200, 415, 200, 200, 200]
    for (stem, _), answer in zip(jobs, answers, strict=True):
        if answer.status_code == 200:
            assert answer.json()["mask_png"] == alone[stem]["mask_png"]
            assert answer.json()["outfit"] == alone[stem]["outfit"]


def test_bad_uploads_get_json_4xx_and_the_server_keeps_serving(parser, photo):
    api = client(parser, max_upload_mb=0.5, max_image_pixels=1_000_000)
    rgb = np.zeros((40, 30, 3), np.uint8)
    cases = [
        ({"file": ("empty.jpg", b"")}, {}, 400, "empty upload"),
        ({"file": ("notes.txt", b"just some text")}, {}, 415, "not an image"),
        ({"file": ("cut.jpg", photo[:3000])}, {}, 400, "unreadable image"),
        ({"file": ("big.png", png(np.zeros((1100, 1000), np.uint8)))}, {}, 413, "over the limit of 1,000,000"),
        ({"file": ("huge.jpg", photo * 20)}, {}, 413, "upload over the limit of 0.5 MB"),
        ({"file": ("a.png", png(rgb))}, {"garments": "trousers"}, 422, "did you mean pants?"),
        ({"file": ("a.png", png(rgb))}, {"merge": "/etc/passwd"}, 422, "files are not read"),
        ({"file": ("a.png", png(rgb))}, {"crf": "best"}, 422, "choose none, fast or dense"),
        ({}, {"garments": "dress"}, 400, "multipart field 'file'"),
    ]
    for files, data, status, message in cases:
        answer = api.post("/parse", files=files or None, data=data)
        assert answer.status_code == status and message in answer.json()["error"], (files.keys(), answer.text)
    assert api.post("/parse", content=b"x" * 100, headers={"content-type": "text/plain"}).status_code == 400
    assert api.post("/parse", files={"file": ("a.png", png(rgb))}).status_code == 200  # still serving


def a_mask(parser, photo: bytes) -> np.ndarray:
    """Label ids at the photo's size: a coat block on skin."""
    w, h = Image.open(io.BytesIO(photo)).size
    mask = np.full((h, w), parser.names.index("skin"), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = parser.names.index("coat")
    return mask


def test_saved_pairs_stay_inside_the_folder_never_overwrite_and_pass_check_data(parser, photo, tmp_path, capsys):
    dataset = tmp_path / "dataset"
    api = client(parser, dataset=dataset)
    sent = a_mask(parser, photo)
    first = api.post("/save", files={"file": ("../../escape.jpg", photo), "mask": ("m.png", png(sent))})
    assert first.status_code == 200, first.text
    assert first.json()["garments"] == ["coat"]
    other = png(np.asarray(Image.open(io.BytesIO(photo)))[:, ::-1].copy())  # another photo (mirrored)
    files = {"file": ("x.png", other), "mask": ("m.png", png(sent[:, ::-1].copy()))}
    again = api.post("/save", files=files, data={"name": "../escape.jpg"})
    assert first.json()["saved"] == {"image": "images/escape.jpg", "mask": "masks/escape.png"}
    assert again.json()["saved"] == {"image": "images/escape-2.jpg", "mask": "masks/escape-2.png"}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "dataset/data.yaml",
        "dataset/images/escape-2.jpg",
        "dataset/images/escape.jpg",
        "dataset/labels.txt",
        "dataset/masks/escape-2.png",
        "dataset/masks/escape.png",
        "dataset/sources.json",
    ]
    assert (np.asarray(Image.open(dataset / "masks" / "escape.png")) == sent).all()  # exactly the mask sent
    # The same photo again: refused (it would leak between splits), or its pair replaced when asked
    twice = api.post("/save", files={"file": ("y.jpg", photo), "mask": ("m.png", png(sent))})
    assert twice.status_code == 409 and "saved already as images/escape.jpg" in twice.json()["error"]
    fixed = sent.copy()
    fixed[:10] = parser.names.index("hat")
    files = {"file": ("y.jpg", photo), "mask": ("m.png", png(fixed))}
    replaced = api.post("/save", files=files, data={"replace": "true"})
    assert replaced.status_code == 200 and replaced.json()["saved"]["mask"] == "masks/escape.png"
    assert (np.asarray(Image.open(dataset / "masks" / "escape.png")) == fixed).all()
    assert check_data([str(dataset), "--format", "folder"]) == 0
    assert client(parser).post("/save", files={"file": ("a.jpg", photo)}).status_code == 404  # no --dataset


def test_saving_needs_the_token_off_loopback(parser, photo, tmp_path):
    api = client(parser, dataset=tmp_path / "d", token="s3cret", save_needs_token=True)
    files = {"file": ("a.jpg", photo), "mask": ("m.png", png(a_mask(parser, photo)))}
    assert api.post("/save", files=files).status_code == 401
    assert api.post("/save", files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.post("/save", files=files, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    closed = client(parser, dataset=tmp_path / "e", save_needs_token=True)  # no token set: saving stays off
    assert closed.post("/save", files=files, data={"token": ""}).status_code == 401
    assert not (tmp_path / "e" / "images").exists()


def test_every_error_is_json_and_flags_are_strict(parser, photo):
    api = client(parser)
    missing = api.get("/no-such-page")
    assert missing.status_code == 404 and missing.json() == {"error": "GET /no-such-page: Not Found"}
    wrong = api.get("/parse")
    assert wrong.status_code == 405 and wrong.json()["error"].startswith("GET /parse: Method Not Allowed")
    maybe = api.post("/parse", files={"file": ("a.jpg", photo)}, data={"overlay": "maybe"})
    assert maybe.status_code == 422 and maybe.json() == {"error": "overlay 'maybe': give true or false"}


def test_the_api_page_works_offline_and_names_the_version(parser):
    from parsing import __version__

    api = client(parser)
    page = api.get("/docs")
    assert page.status_code == 200 and "POST /parse" in page.text and "<script" not in page.text
    assert "http" not in page.text.replace("/openapi.json", "")  # nothing fetched from elsewhere
    assert api.get("/openapi.json").json()["info"]["version"] == __version__


def test_save_refuses_a_missing_or_wrong_mask_and_never_parses(parser, photo, tmp_path):
    api = client(parser, dataset=tmp_path / "d")
    missing = api.post("/save", files={"file": ("a.jpg", photo)})
    assert missing.status_code == 422 and "send the mask" in missing.json()["error"]
    small = api.post("/save", files={"file": ("a.jpg", photo), "mask": ("m.png", png(np.zeros((5, 7), np.uint8)))})
    assert small.status_code == 422 and small.json()["error"].startswith("mask of 7×5: the photo is")
    rgb = api.post("/save", files={"file": ("a.jpg", photo), "mask": ("m.png", png(np.zeros((5, 7, 3), np.uint8)))})
    assert rgb.status_code == 422 and "label ids" in rgb.json()["error"]
    mask = a_mask(parser, photo)
    mask[0, 0] = 200
    unknown = api.post("/save", files={"file": ("a.jpg", photo), "mask": ("m.png", png(mask))})
    assert unknown.status_code == 422 and "label id 200" in unknown.json()["error"]
    assert not (tmp_path / "d" / "images").exists() or not any((tmp_path / "d" / "images").iterdir())


def decoded(answer: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))))


def test_edit_sessions_click_preview_paint_undo_and_save_what_is_shown(parser, photo, tmp_path):
    api = client(parser, dataset=tmp_path / "d")
    opened = api.post("/parse", files={"file": ("a.jpg", photo)}, data={"edit": "true"})
    assert opened.status_code == 200, opened.text
    key, start = opened.json()["edit_id"], decoded(opened.json())
    h, w = start.shape
    x, y = w // 2, h // 2
    label = next(n for n in ("bag", "hat", "belt") if parser.names.index(n) != start[y, x])

    def edit(op: str, mask: np.ndarray | None = None, **fields):  # noqa: ANN202
        files = {"mask": ("m.png", png(mask))} if mask is not None else {"unused": ("u", b"")}
        return api.post("/edit", data={"id": key, "op": op, **fields}, files=files)

    preview = edit("preview", x=x, y=y, label=label)
    assert preview.status_code == 200, preview.text
    region = np.asarray(Image.open(io.BytesIO(base64.b64decode(preview.json()["region_png"]))))
    assert region.shape == (h, w) and region[y, x] and preview.json()["pixels"] == int(region.astype(bool).sum())
    clicked = edit("click", x=x, y=y, label=label)
    assert clicked.status_code == 200, clicked.text
    after = decoded(clicked.json())
    assert after[y, x] == parser.names.index(label) and label in clicked.json()["outfit"]
    assert ((after != start) == region.astype(bool)).all()  # the click took exactly what the preview showed
    stroke = np.zeros((h, w), np.uint8)
    stroke[:10, :10] = 255
    painted = decoded(edit("paint", stroke, label="belt").json())
    assert (painted[:10, :10] == parser.names.index("belt")).all()
    undone = edit("set", start)
    assert (decoded(undone.json()) == start).all() and undone.json()["outfit"] == opened.json()["outfit"]
    saved = api.post("/save", files={"file": ("a.jpg", photo), "mask": ("m.png", png(painted))})
    assert saved.status_code == 200, saved.text
    on_disk = np.asarray(Image.open(tmp_path / "d" / saved.json()["saved"]["mask"]))
    assert (on_disk == painted).all()


def test_edit_errors_are_json_4xx(parser, photo):
    api = client(parser)
    key = api.post("/parse", files={"file": ("a.jpg", photo)}, data={"edit": "true"}).json()["edit_id"]
    cases = [
        ({"id": "nope", "op": "click", "x": 1, "y": 1, "label": "bag"}, 404, "edit session 'nope' is closed"),
        ({"id": key, "op": "erase"}, 422, "op 'erase': choose one of click, paint, set, preview"),
        ({"id": key, "op": "click", "y": 1, "label": "bag"}, 422, "give x"),
        ({"id": key, "op": "click", "x": "left", "y": 1, "label": "bag"}, 422, "x 'left': give a number"),
        ({"id": key, "op": "click", "x": 1, "y": 1, "label": "handbag!"}, 422, "label 'handbag!'"),
        ({"id": key, "op": "click", "x": 99999, "y": 1, "label": "bag"}, 422, "outside the photo"),
        ({"id": key, "op": "set"}, 400, "set needs the mask"),
    ]
    for fields, status, message in cases:
        answer = api.post("/edit", data=fields, files={"unused": ("u", b"")})
        assert answer.status_code == status and message in answer.json()["error"], (fields, answer.text)
    merged = api.post("/parse", files={"file": ("a.jpg", photo)}, data={"edit": "true", "merge": "ccp-coarse"})
    assert merged.status_code == 422 and "drop merge" in merged.json()["error"]
    plain = api.post("/parse", files={"file": ("a.jpg", photo)})
    assert "edit_id" not in plain.json()


def test_the_labelling_queue_ranks_serves_and_resumes(parser, ccp_root, tmp_path):
    folder = tmp_path / "todo"
    (folder / "sub").mkdir(parents=True)
    for stem, where in (("0003", "a.jpg"), ("0009", "sub/b.jpg"), ("0038", "c.jpg")):
        (folder / where).write_bytes((ccp_root / "photos" / f"{stem}.jpg").read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    dataset = tmp_path / "out"
    api = client(parser, dataset=dataset, photos=folder)
    assert api.get("/labels").json()["queue"] is True
    deadline = time.monotonic() + 120
    while (queue := api.get("/queue").json())["scored"] < 3:  # scored in the background while nobody asks
        assert time.monotonic() < deadline, queue
        time.sleep(0.5)
    names = [row["name"] for row in queue["photos"]]
    scores = [row["uncertainty"] for row in queue["photos"]]
    assert sorted(names) == ["a.jpg", "c.jpg", "sub/b.jpg"] and scores == sorted(scores, reverse=True)
    assert all(0 < s < 1 for s in scores) and queue["done"] == 0 and queue["remaining"] == 3
    photo = api.get(f"/photos/{names[0]}")
    assert photo.status_code == 200 and photo.content == (folder / names[0]).read_bytes()
    for bad in ("../secret.jpg", "notes.txt", "sub/../../secret.jpg"):
        assert api.get(f"/photos/{bad}").status_code == 404, bad
    mask = png(a_mask(parser, photo.content))
    saved = api.post("/save", files={"file": (names[0], photo.content), "mask": ("m.png", mask)})
    assert saved.status_code == 200, saved.text
    after = api.get("/queue").json()
    assert after["done"] == 1 and after["photos"][-1] == {**queue["photos"][0], "done": True}
    resumed = client(parser, dataset=dataset, photos=folder).get("/queue").json()  # a new server: still done
    assert resumed["done"] == 1 and [r["name"] for r in resumed["photos"] if r["done"]] == [names[0]]
    assert client(parser).get("/queue").status_code == 404


def test_serve_refuses_a_queue_without_a_dataset(tmp_path, capsys):
    from parsing.commands.serve import main as serve

    assert serve(["--photos", str(tmp_path), "--port", "1"]) == 2
    assert "--photos needs --dataset" in capsys.readouterr().err
