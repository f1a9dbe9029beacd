import numpy as np
import pytest
from PIL import Image

from parsing.data.io import DataError, read_image, read_png_mask, write_mask_png


def test_modes_become_rgb_uint8(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((5, 7), 100, np.uint8), mode="L").save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((5, 7, 4), np.uint8), mode="RGBA").save(rgba)  # fully transparent
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(deep)
    for path, value in ((gray, 100), (rgba, 255), (deep, 255)):
        arr = read_image(path)
        assert arr.shape == (5, 7, 3) and arr.dtype == np.uint8
        assert (arr == value).all(), path.name


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    im = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    im.save(path, exif=exif)
    assert read_image(path).shape == (20, 10, 3)


@pytest.mark.parametrize("content, problem", [(b"hello, not a photo", "not an image"), (None, "unreadable")])
def test_bad_images_name_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.jpg"
    if content is None:  # a real JPEG cut short
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "nope.jpg")


def test_palette_png_round_trip(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "m.png"
    write_mask_png(path, mask, [1, 2, 3] * 256)
    with Image.open(path) as im:
        assert im.mode == "P"
        assert im.getpalette()[:3] == [1, 2, 3]
    assert (read_png_mask(path) == mask).all()


def test_rgb_mask_is_refused(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(path)
    with pytest.raises(DataError, match="single-channel"):
        read_png_mask(path)


def test_ccp_tags_outside_the_label_set_name_the_file(tmp_path):
    import scipy.io

    from parsing.data.io import read_ccp_tags

    path = tmp_path / "1005.mat"
    scipy.io.savemat(path, {"tags": np.array([[3, 99]])})
    assert read_ccp_tags(path).tolist() == [3, 99]
    with pytest.raises(DataError, match=r"1005\.mat: tag ids \[99\] outside the label set \(0\.\.58\)"):
        read_ccp_tags(path, 59)
