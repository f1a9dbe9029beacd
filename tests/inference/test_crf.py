"""Dense (pydensecrf) and fast (torch) CRFs: denoising, exclusive-pair compatibility, any image, missing extra."""

import os
import sys

import numpy as np
import pytest
import torch
from conftest import blocks

from parsing.inference.crf import CRFParams, MissingCRFError, apply_crf, as_rgb_uint8, compatibility, fast_crf

KINDS = ["dense", "fast"]


@pytest.fixture(autouse=True)
def _needs_pydensecrf(request):
    if "dense" in request.node.name:
        try:
            import pydensecrf.densecrf  # noqa: F401
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail("pydensecrf (the crf extra) is not installed")
            pytest.skip("pydensecrf not installed (pip install 'clothing-parsing[crf]')")


def noisy_scene(seed: int = 0, flip: float = 0.25):
    """A piecewise-constant photo whose colour follows the true labels, and logits with ``flip`` of the pixels
    given a random wrong label."""
    truth = torch.from_numpy(blocks(120, 80, [0, 1, 2, 3], seed=seed)).long()
    colours = np.array([[200, 200, 200], [180, 30, 30], [30, 30, 160], [40, 140, 40]], np.uint8)
    image = colours[truth.numpy()]
    gen = torch.Generator().manual_seed(seed)
    noisy = torch.where(
        torch.rand(truth.shape, generator=gen) < flip, torch.randint(0, 4, truth.shape, generator=gen), truth
    )
    logits = torch.nn.functional.one_hot(noisy, 6).permute(2, 0, 1).float() * 3.0  # (K, H, W), 2 labels unused
    return image, logits, truth


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("unary", ["labels", "softmax"])
def test_crf_cleans_a_noisy_prediction(kind, unary):
    image, logits, truth = noisy_scene()
    before = (logits.argmax(0) == truth).float().mean().item()
    after = (apply_crf(kind, logits, image, CRFParams(unary=unary)) == truth).float().mean().item()
    assert before < 0.85
    assert after > 0.97, (before, after)


@pytest.mark.parametrize("kind", KINDS)
def test_exclusive_pair_is_suppressed_more_than_a_compatible_one(kind):
    h, w, k = 96, 64, 5
    image = np.full((h, w, 3), 120, np.uint8)
    logits = torch.zeros(k, h, w)
    logits[1] = 2.0
    logits[2, int(0.6 * h) :] = 2.6  # the bottom 40 % says label 2, a little more sure than label 1

    def pixels_of_2(pair):
        exclusive = torch.zeros(k, k, dtype=torch.bool)
        exclusive[pair] = exclusive[pair[::-1]] = True
        params = CRFParams(unary="softmax", exclusive_cost=4.0)
        return int((apply_crf(kind, logits, image, params, exclusive) == 2).sum())

    exclusive, compatible = pixels_of_2((1, 2)), pixels_of_2((1, 3))
    assert compatible > 0.9 * 0.4 * h * w  # Potts keeps the confident region
    assert exclusive < 0.5 * compatible, (exclusive, compatible)


def test_compatibility_matrix():
    exclusive = torch.zeros(4, 4, dtype=torch.bool)
    exclusive[1, 2] = True
    compat = compatibility(4, exclusive, 3.0)
    assert compat.dtype == np.float32 and np.all(np.diag(compat) == 0)
    assert compat[1, 2] == compat[2, 1] == 3.0 and compat[0, 3] == 1.0


@pytest.mark.parametrize(
    "make",
    [
        lambda rgb: rgb[:, :, 0],  # grayscale
        lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),  # RGBA
        lambda rgb: rgb[:, ::-1],  # non-contiguous view
        lambda rgb: np.asfortranarray(rgb),
        lambda rgb: rgb.astype(np.float32) / 255.0,
        lambda rgb: rgb.astype(np.uint16) * 257,
        lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1),  # CHW tensor
    ],
    ids=["gray", "rgba", "flipped-view", "fortran", "float", "uint16", "chw-tensor"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_any_image_layout(kind, make):
    image, logits, truth = noisy_scene(flip=0.1)
    image = make(image)
    rgb = as_rgb_uint8(image)
    assert rgb.dtype == np.uint8 and rgb.shape == (120, 80, 3) and rgb.flags.c_contiguous and rgb.flags.writeable
    out = apply_crf(kind, logits, image, CRFParams())
    assert out.shape == truth.shape and out.dtype == torch.long


def test_bad_image_shape_is_named():
    with pytest.raises(ValueError, match="shape"):
        as_rgb_uint8(np.zeros((5, 6, 7), np.uint8))


def test_missing_pydensecrf_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    image, logits, _ = noisy_scene()
    with pytest.raises(MissingCRFError, match=r"parsing\[crf\]"):
        apply_crf("dense", logits, image, CRFParams())
    assert apply_crf("fast", logits, image, CRFParams()).shape == logits.shape[1:]  # fast needs nothing extra


def test_fast_crf_batches_like_single_photos():
    scenes = [noisy_scene(seed=s) for s in (0, 1)]
    logits = torch.stack([s[1] for s in scenes])
    images = torch.stack([torch.from_numpy(s[0]).permute(2, 0, 1) for s in scenes])
    compat = compatibility(6, None, 1.0)
    params = CRFParams(unary="softmax")
    batched = fast_crf(logits, images, params, compat)
    for i in range(2):
        single = fast_crf(logits[i : i + 1], images[i : i + 1], params, compat)[0]
        assert (batched[i] == single).float().mean() > 0.999


def test_fast_crf_ignores_padding():
    image, logits, truth = noisy_scene()
    padded_logits = torch.nn.functional.pad(logits, (0, 40, 0, 24))
    padded_image = torch.nn.functional.pad(torch.from_numpy(image).permute(2, 0, 1), (0, 40, 0, 24))
    valid = torch.zeros(1, 144, 120, dtype=torch.bool)
    valid[:, :120, :80] = True
    compat = compatibility(6, None, 1.0)
    out = fast_crf(padded_logits[None], padded_image[None], CRFParams(), compat, valid)[0, :120, :80]
    assert (out == truth).float().mean() > 0.97


@pytest.mark.parametrize("downsample", [2, 4])
def test_fast_crf_skips_only_cells_that_cannot_change(monkeypatch, downsample):
    """Refining only the cells ``_may_change`` flags gives exactly the labels of refining every cell."""
    from parsing.inference import crf_fast as crf

    image, logits, _ = noisy_scene(seed=2, flip=0.1)
    image, logits = image[:117, :79], logits[:, :117, :79]  # partial cells at the bottom and right
    rgb = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    compat = compatibility(6, None, 1.0)
    params = CRFParams(downsample=downsample)
    flagged = []
    may_change = crf._may_change

    def spy(*args):
        out = may_change(*args)
        flagged.append(out.float().mean().item())
        return out

    monkeypatch.setattr(crf, "_may_change", spy)
    skipping = fast_crf(logits[None], rgb, params, compat)
    monkeypatch.setattr(crf, "_may_change", lambda energy, present, gain: torch.ones_like(present[:, 0]))
    every_cell = fast_crf(logits[None], rgb, params, compat)
    assert torch.equal(skipping, every_cell)
    assert flagged and flagged[0] < 0.9  # some cells were skipped
    assert not torch.equal(every_cell[0], logits.argmax(0))  # and the CRF did change labels


def test_fast_crf_kernel_weights_match_a_direct_computation():
    """The merged, symmetric half-offset weights equal both kernels computed at every offset."""
    from parsing.inference.crf_fast import _offsets, _Pairwise, _shifts

    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 13, 11, generator=gen) * 255
    valid = torch.ones(1, 1, 13, 11)
    valid[..., 10:, :] = 0  # padding rows
    params = CRFParams(taps=3)
    got = _Pairwise(rgb, valid, params, 4).weights
    want: dict = {}
    for sxy, srgb, weight in [(30 / 4, 10.0, 10.0), (3 / 4, None, 10.0)]:
        offsets = _offsets(sxy, params.taps)
        raw = []
        for (dy, dx), v, c in zip(offsets, _shifts(valid, offsets), _shifts(rgb, offsets), strict=True):
            wt = valid * v * np.exp(-(dy * dy + dx * dx) / (2 * sxy * sxy))
            if srgb is not None:
                wt = wt * torch.exp(-(rgb - c).square().sum(1, keepdim=True) / (2 * srgb * srgb))
            raw.append(wt)
        norm = torch.rsqrt(sum(raw) + 1e-20) * valid
        for t, wt, n in zip(offsets, raw, _shifts(norm, offsets), strict=True):
            want[t] = want.get(t, 0) + weight * norm * wt * n
    assert set(got) == set(want)
    for t in want:
        torch.testing.assert_close(got[t], want[t], rtol=1e-5, atol=1e-6)


def test_neighbourhood_max_and_min():
    from parsing.inference.crf_fast import _neighbourhood

    x = torch.randn(2, 3, 7, 5)
    torch.testing.assert_close(_neighbourhood(x, torch.maximum), torch.nn.functional.max_pool2d(x, 3, 1, 1))
    torch.testing.assert_close(_neighbourhood(x, torch.minimum), -torch.nn.functional.max_pool2d(-x, 3, 1, 1))


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (17, 5), (40, 33)])
@pytest.mark.parametrize("unary", ["labels", "softmax"])
def test_fast_crf_any_photo_size(size, unary):
    """Photos smaller than the kernel windows or the grid cells still work."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, *size, generator=gen)
    image = torch.randint(0, 256, (*size, 3), generator=gen, dtype=torch.uint8).numpy()
    for downsample in (1, 4, 8):
        labels = apply_crf("fast", logits, image, CRFParams(unary=unary, downsample=downsample))
        assert labels.shape == size and labels.dtype == torch.long and 0 <= int(labels.min()) <= int(labels.max()) < 5
    assert apply_crf("fast", logits, image, CRFParams(unary=unary, gaussian_sxy=0.0)).shape == size  # σ → 0
