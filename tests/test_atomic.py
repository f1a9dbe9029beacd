"""Atomic writes: a failed write leaves the old file and no temporary; the temporary keeps the suffix."""

import numpy as np
import pytest

from parsing.atomic import atomic_write


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "a" / "mask.png"
    atomic_write(target, lambda tmp: tmp.write_text("first"))

    def fails(tmp):  # noqa: ANN001, ANN202
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_text() == "first" and [p.name for p in target.parent.iterdir()] == ["mask.png"]


def test_the_temporary_keeps_the_suffix_so_numpy_writes_no_second_one(tmp_path):
    target = tmp_path / "probe.npy"
    atomic_write(target, lambda tmp: np.save(tmp, np.arange(3)))
    assert np.load(target).tolist() == [0, 1, 2] and [p.name for p in tmp_path.iterdir()] == ["probe.npy"]
