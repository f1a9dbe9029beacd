"""``parsing-predict`` on folders: outputs, sizes and palette, resume, bad files, untouched inputs, shipped model."""

import hashlib
import json
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from parsing import Parser
from parsing.commands.inputs import collect_inputs
from parsing.commands.predict import DEFAULT_CHECKPOINT, main
from parsing.data.io import read_ccp_mask, read_photo
from parsing.labels import LabelSet

VAL_PHOTO = "0009"  # in the validation split of configs/ccp.yaml (seed 0): the shipped model never trained on it


@pytest.fixture(scope="module")
def shipped():
    assert DEFAULT_CHECKPOINT.is_file(), f"shipped model missing: {DEFAULT_CHECKPOINT}"
    return Parser.load()


def make_photos(folder):
    """Mixed sizes and modes, one EXIF-rotated, one in a sub-folder. Returns name → expected (W, H)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 255, (120, 80, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "portrait.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 100), dtype=np.uint8)).save(folder / "gray-landscape.png")
    Image.fromarray(rng.integers(0, 255, (90, 90, 4), dtype=np.uint8)).save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (70, 50), dtype=np.uint16)).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    Image.fromarray(rng.integers(0, 255, (60, 100, 3), dtype=np.uint8)).save(folder / "rotated.jpg", exif=exif)
    (folder / "sub").mkdir(exist_ok=True)
    Image.fromarray(rgb[:96, :64]).save(folder / "sub" / "nested.jpg")
    return {
        "portrait": (80, 120),
        "gray-landscape": (100, 64),
        "rgba": (90, 90),
        "deep": (50, 70),
        "rotated": (60, 100),
        "sub/nested": (64, 96),
    }


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def summary(out):
    return [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]


def test_writes_masks_overlays_and_summary(shipped, tmp_path, capsys):
    module = shipped.spec
    photos, out = tmp_path / "photos", tmp_path / "out"
    expected = make_photos(photos)
    before = digest(photos)
    code = main([str(photos), "-o", str(out), "--recursive", "--batch-size", "3", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    palette = [c for rgb in module.palette for c in rgb]
    for key, size in expected.items():
        with Image.open(out / "masks" / f"{key}.png") as mask:
            assert mask.mode == "P" and mask.size == size, key
            assert mask.getpalette()[: len(palette)] == palette
            assert np.asarray(mask).max() < module.num_classes
        with Image.open(out / "overlays" / f"{key}.jpg") as picture:
            assert picture.format == "JPEG" and picture.height >= size[1] and picture.width > size[0]
    records = {r["file"]: r for r in summary(out)}
    assert len(records) == len(expected)
    record = records[str(photos / "rotated.jpg")]
    assert record["size"] == [60, 100] and record["mask"] == "masks/rotated.png"
    assert record["checkpoint"] == str(DEFAULT_CHECKPOINT) and isinstance(record["outfit"], list)
    assert record["crf"] == "fast"  # the default
    assert sum(lab["share"] for lab in record["labels"]) <= 1.0001  # noise photos: mostly null
    assert not (out / "errors.jsonl").exists()
    assert digest(photos) == before  # inputs untouched


def test_resume_skips_done_photos_and_overwrite_redoes_them(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    make_photos(photos)
    args = [str(photos), "-o", str(out), "--no-progress", "--workers", "0"]
    assert main(args) == 0
    mask = out / "masks" / "portrait.png"
    os.utime(mask, (1, 1))  # an old timestamp: any rewrite would change it
    os.remove(out / "overlays" / "rgba.jpg")  # as if the run had been killed while writing this one
    capsys.readouterr()
    assert main(args) == 0
    assert "1 parsed, 4 already done" in capsys.readouterr().err
    assert mask.stat().st_mtime == 1 and (out / "overlays" / "rgba.jpg").is_file()
    assert len(summary(out)) == 5  # rgba's line replaced, not duplicated
    assert main([*args, "--overwrite"]) == 0
    assert mask.stat().st_mtime > 1 and len(summary(out)) == 5


def test_bad_files_are_reported_and_the_rest_carry_on(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    make_photos(photos)
    (photos / "notes.jpg").write_text("this is not a photo")
    good = (photos / "portrait.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(good[: len(good) // 3])
    before = digest(photos)
    code = main([str(photos), "-o", str(out), "--no-progress", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1
    errors = {
        json.loads(line)["file"]: json.loads(line)["error"] for line in (out / "errors.jsonl").read_text().splitlines()
    }
    assert set(errors) == {str(photos / "notes.jpg"), str(photos / "truncated.jpg")}
    assert "not an image" in errors[str(photos / "notes.jpg")]
    assert str(photos / "truncated.jpg") in err and str(photos / "notes.jpg") in err
    assert len(summary(out)) == 5 and (out / "masks" / "portrait.png").is_file()
    assert digest(photos) == before


def test_inputs_files_globs_and_name_clashes(tmp_path):
    photos = tmp_path / "photos"
    make_photos(photos)
    Image.new("RGB", (8, 8)).save(photos / "portrait.png")  # same stem as portrait.jpg
    jobs, errors = collect_inputs([str(photos / "*.jpg"), str(photos / "sub" / "nested.jpg"), str(tmp_path / "nope")])
    keys = sorted(str(key) for _, key in jobs)
    assert keys == ["nested", "portrait", "rotated"]
    assert errors == [{"file": str(tmp_path / "nope"), "error": "no such file or folder, or no images in it"}]
    jobs, errors = collect_inputs([str(photos)])
    assert len(errors) == 1 and "same output name" in errors[0]["error"]


def test_missing_checkpoint_is_a_usage_error(tmp_path, capsys):
    make_photos(tmp_path / "photos")
    code = main([str(tmp_path / "photos"), "-o", str(tmp_path / "out"), "--checkpoint", str(tmp_path / "x.ckpt")])
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err


def test_input_size_overrides_the_network_box_and_is_checked(tmp_path, capsys):
    sizes = make_photos(tmp_path / "photos")
    out = tmp_path / "out"
    code = main([str(tmp_path / "photos"), "-o", str(out), "--recursive", "--crf", "none", "--input-size", "64", "32"])
    assert code == 0 and len(summary(out)) == len(sizes)
    assert all(tuple(Image.open(out / "masks" / f"{n}.png").size) == wh for n, wh in sizes.items())
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "photos"), "-o", str(tmp_path / "bad"), "--input-size", "16", "352"])
    assert stop.value.code == 2 and "--input-size: '16': each side is a whole number" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "summary.jsonl").exists()


@pytest.mark.parametrize("crf", ["none", "fast"])
def test_shipped_model_parses_a_real_ccp_photo(ccp_root, tmp_path, crf):
    out = tmp_path / "out"
    photo = ccp_root / "photos" / f"{VAL_PHOTO}.jpg"
    assert main([str(photo), "-o", str(out), "--crf", crf, "--no-progress", "--workers", "0"]) == 0
    labels = np.asarray(Image.open(out / "masks" / f"{VAL_PHOTO}.png"))
    truth = read_ccp_mask(ccp_root / "annotations" / "pixel-level" / f"{VAL_PHOTO}.mat")
    assert labels.shape == truth.shape
    assert (labels == truth).mean() > 0.8  # background alone is ~0.77 on CCP
    fg = truth > 0
    assert (labels[fg] == truth[fg]).mean() > 0.3
    record = summary(out)[0]
    names = [lab["label"] for lab in record["labels"]]
    assert {"skin", "hair"} <= set(names) and record["crf"] == crf


def test_dotted_stems_keep_their_whole_name(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name in ("look.v1.jpg", "look.v2.jpg"):  # with_suffix would turn both into look.png
        Image.new("RGB", (48, 64), (200, 30, 30)).save(photos / name)
    assert main([str(photos), "-o", str(out), "--no-progress", "--workers", "0"]) == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["look.v1.png", "look.v2.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["look.v1.jpg", "look.v2.jpg"]


def test_unknown_garment_fails_before_any_photo_is_parsed(tmp_path, capsys):
    make_photos(tmp_path / "photos")
    out = tmp_path / "out"
    code = main([str(tmp_path / "photos"), "-o", str(out), "--garments", "dress,jeanz", "--no-progress"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and "unknown garment name(s) 'jeanz' (did you mean jeans?)" in err
        and "valid names: accessories" in err
    )
    assert not (out / "masks").exists()
    (tmp_path / "tags.jsonl").write_text('{"file": "portrait.jpg", "garments": ["dress"]}\nnot json\n')
    code = main([str(tmp_path / "photos"), "-o", str(out), "--tags", str(tmp_path / "tags.jsonl")])
    assert code == 2 and f"{tmp_path / 'tags.jsonl'}:2: not a JSON line" in capsys.readouterr().err


def test_tags_limit_each_photo_to_its_garments(shipped, ccp_root, tmp_path):
    module = shipped.spec
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("0009.jpg", "0003.jpg"):
        (photos / name).write_bytes((ccp_root / "photos" / name).read_bytes())
    (photos / "sub" / "0009.jpg").write_bytes((ccp_root / "photos" / "0009.jpg").read_bytes())
    lines = [
        {"file": "sub/0009.jpg", "garments": ["dress"]},  # by relative path
        {"file": "0003.jpg", "garments": ["jeans", "bag"]},  # by bare name: unique
    ]
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    args = [str(photos), "-o", str(out), "--recursive", "--tags", str(tmp_path / "tags.jsonl"), "--crf", "none"]
    assert main([*args, "--no-progress", "--workers", "0"]) == 0
    records = {r["file"]: r for r in summary(out)}
    allowed = {"null", "skin", "hair"}
    for rel, garments in (("sub/0009", {"dress"}), ("0003", {"jeans", "bag"}), ("0009", None)):
        labels = np.unique(np.asarray(Image.open(out / "masks" / f"{rel}.png")))
        names = {module.class_names[i] for i in labels}
        record = records[str(photos / f"{rel}.jpg")]
        if garments is None:  # 0009.jpg at the top: two photos are named 0009.jpg, and its path has no line
            assert record["garments"] is None
            continue
        assert names <= allowed | garments and set(record["garments"]) == garments
        assert set(record["outfit"]) <= garments


def test_merge_writes_group_labels(shipped, ccp_root, tmp_path):
    out = tmp_path / "out"
    photo = ccp_root / "photos" / f"{VAL_PHOTO}.jpg"
    assert main([str(photo), "-o", str(out), "--merge", "ccp-coarse", "--no-progress", "--workers", "0"]) == 0
    labels = np.asarray(Image.open(out / "masks" / f"{VAL_PHOTO}.png"))
    truth = LabelSet.ccp("ccp-coarse").encode(read_ccp_mask(ccp_root / "annotations" / "pixel-level" / "0009.mat"))
    assert labels.max() < len(LabelSet.ccp("ccp-coarse")) and (labels == truth).mean() > 0.8
    record = summary(out)[0]
    groups = set(LabelSet.ccp("ccp-coarse").names)
    assert record["merge"] == "ccp-coarse" and {lab["label"] for lab in record["labels"]} <= groups
    assert {"skin", "hair"} <= {lab["label"] for lab in record["labels"]}


def test_unusable_checkpoints_say_what_is_wrong(tmp_path, capsys):
    make_photos(tmp_path / "photos")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:100_000])
    plain = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2)}, plain)
    foreign = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"lr": 1}}, foreign)
    expected = {
        truncated: "not a readable checkpoint (truncated or corrupt)",
        plain: "not a parsing checkpoint (no 'state_dict': a plain weights file?)",
        foreign: "not a parsing checkpoint (no label set",
    }
    for path, message in expected.items():
        code = main([str(tmp_path / "photos"), "-o", str(tmp_path / "out"), "--checkpoint", str(path)])
        err = capsys.readouterr().err
        assert code == 2 and f"{path}: {message}" in err and "Traceback" not in err


def test_the_parser_takes_a_read_only_pil_array_without_warning(shipped, ccp_root):
    parser = shipped
    image = np.asarray(Image.open(ccp_root / "photos" / f"{VAL_PHOTO}.jpg"))
    assert not image.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = parser(image)
    assert result.labels.shape == image.shape[:2]


def test_large_photos_are_parsed_at_the_working_size_and_masked_at_full_size(shipped, ccp_root, tmp_path):
    parser = shipped
    photo = ccp_root / "photos" / f"{VAL_PHOTO}.jpg"
    image = np.asarray(Image.open(photo))
    plain = parser(image).labels
    same = parser.replace(max_pixels=image.shape[0] * image.shape[1])(image).labels
    assert (same == plain).all()  # at or below the cap nothing changes
    small = parser.replace(max_pixels=60_000)(image).labels  # ~1/8 of the pixels
    assert small.shape == plain.shape and (small == plain).mean() > 0.9
    out = tmp_path / "out"
    args = [str(photo), "-o", str(out), "--max-pixels", "60000", "--no-progress", "--workers", "0"]
    assert main(args) == 0
    mask = np.asarray(Image.open(out / "masks" / f"{VAL_PHOTO}.png"))
    assert mask.shape == plain.shape and (mask == small).mean() > 0.95  # JPEG draft decoding vs PIL's box filter
    with Image.open(out / "overlays" / f"{VAL_PHOTO}.jpg") as picture:
        assert picture.height < image.shape[0]  # the overlay stays at the working size


def test_read_photo_decodes_large_jpegs_at_reduced_scale(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1200, 1800, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    image, size = read_photo(tmp_path / "big.jpg", max_pixels=200_000)
    assert size == (1200, 1800) and image.shape[0] * image.shape[1] <= 200_000
    assert abs(image.shape[1] / image.shape[0] - 1.5) < 0.01
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90°
    Image.fromarray(rng.integers(0, 255, (1200, 1800, 3), dtype=np.uint8)).save(tmp_path / "turned.jpg", exif=exif)
    image, size = read_photo(tmp_path / "turned.jpg", max_pixels=200_000)
    assert size == (1800, 1200) and image.shape[0] > image.shape[1]
    full, size = read_photo(tmp_path / "big.jpg")
    assert full.shape == (1200, 1800, 3) and size == (1200, 1800)


def test_on_torch_for_want_of_the_runtimes_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    photos = tmp_path / "photos"
    make_photos(photos)
    args = [str(photos / "portrait.jpg"), "-o", str(tmp_path / "out"), "--no-progress", "--workers", "0"]
    assert main([*args, "--backend", "onnxruntime"]) == 0 and "pip install" not in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert main([*args, "--overwrite"]) == 0
    assert "runs on torch; pip install 'clothing-parsing[openvino]'" in capsys.readouterr().err
