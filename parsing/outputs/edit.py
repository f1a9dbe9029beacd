"""Editing a parse: what a click takes, and painting a mask in.

A click names the true label of one pixel. Which pixels change with it is decided on a small *edit grid* (at most
``GRID_PIXELS``, the photo's aspect), from three things the parse already has:

- the **segment**: the connected piece of the clicked pixel's current label;
- the photo's **superpixels** (SLIC), the smallest piece a click takes, which keep a region on the photo's edges;
- the network's **ranking** (``Hints``: each grid cell's top labels and their probabilities, kept by a parser with
  ``editable=True``).

Inside the segment, the region grows from the clicked superpixel over touching superpixels where the network gives
the clicked label a chance or whose colour is the clicked one's. When the network ranks the clicked label above the
current one over most of the segment, the segment was one wrong garment: all of it is taken. Earlier clicks of other
labels keep their pixels (the region is cut halfway between). A click with the label a pixel already has grows its
piece over the next ring of superpixels. ``bench/labelling.py`` measures it by the standard click protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

GRID_PIXELS = 300_000  # the edit grid: clicks are decided at most at this many pixels (~0.2 s of SLIC, once)
TOP = 4  # labels the hints keep per grid cell (the rest have less than the fourth's probability)
CHANCE = 0.05  # a label the network gives at least this probability may grow over a pixel
WHOLE = 0.5  # the whole segment is taken when the clicked label outranks the current one on this share of it
SUPERPIXELS = 600  # SLIC segments over the grid
COLOUR = 15.0  # superpixels this close in CIELAB (ΔE76) to the clicked one are joined (bench/labelling.py: 8–18)


def grid_size(size: tuple[int, int], pixels: int = GRID_PIXELS) -> tuple[int, int]:
    """(h, w) → the edit grid's (gh, gw): the same aspect, at most ``pixels``."""
    h, w = size
    scale = min(1.0, (pixels / (h * w)) ** 0.5)
    return max(1, int(h * scale)), max(1, int(w * scale))


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) uint8 map → (H, W), nearest neighbour with pixel centres aligned."""
    if labels.shape == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


@dataclass(frozen=True)
class Hints:
    """The network's ranking on the edit grid: per cell, the ``TOP`` likeliest labels (``ids``) and their
    probabilities (``probs``, ×255), both (TOP, gh, gw) uint8: 8 bytes per cell (2.4 MB at ``GRID_PIXELS``)."""

    ids: np.ndarray
    probs: np.ndarray

    @classmethod
    def from_probs(cls, probs: np.ndarray) -> Hints:
        """(L, gh, gw) probabilities of the parse's labels → the hints."""
        top = min(TOP, probs.shape[0])
        ids = np.argsort(-probs, axis=0)[:top]  # (T, gh, gw)
        chosen = np.take_along_axis(probs, ids, axis=0)
        return cls(ids.astype(np.uint8), np.clip(np.rint(chosen * 255), 0, 255).astype(np.uint8))

    @property
    def shape(self) -> tuple[int, int]:
        return self.ids.shape[1], self.ids.shape[2]

    def prepare(self) -> EditBase:
        """Make the superpixels and their colours and neighbours now (~0.2 s) rather than on the first click."""
        _ = self.sizes, self.colours, self.adjacency
        return self

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.probs.nbytes

    def prob(self, label: int) -> np.ndarray:
        """(gh, gw) float32: the network's probability of ``label`` (0 where it is not among a cell's top)."""
        return ((self.ids == label) * self.probs.astype(np.float32)).sum(0) / 255.0


@dataclass(eq=False)
class EditBase:
    """What every edit of one photo's parse needs, made once and shared by the parses its edits make: the photo
    on the edit grid, its superpixels (on first use) and the hints."""

    image: np.ndarray  # (gh, gw, 3) uint8
    hints: Hints | None
    _superpixels: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, image: np.ndarray, hints: Hints | None) -> EditBase:
        size = hints.shape if hints is not None else grid_size(image.shape[:2])
        small = image if image.shape[:2] == size else cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        return cls(np.ascontiguousarray(small), hints)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @cached_property
    def superpixels(self) -> np.ndarray:
        """(gh, gw) int32 SLIC segments of the photo."""
        from skimage.segmentation import slic

        return slic(self.image, n_segments=SUPERPIXELS, compactness=10, start_label=0).astype(np.int32)

    @cached_property
    def count(self) -> int:
        return int(self.superpixels.max()) + 1

    @cached_property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.superpixels.ravel(), minlength=self.count)

    @cached_property
    def colours(self) -> np.ndarray:
        """(n, 3) each superpixel's mean CIELAB colour."""
        lab = cv2.cvtColor(self.image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)
        sp = self.superpixels.ravel()
        sums = np.stack([np.bincount(sp, weights=lab[:, c], minlength=self.count) for c in range(3)], axis=1)
        return sums / np.maximum(self.sizes, 1)[:, None]

    @cached_property
    def adjacency(self) -> sparse.csr_matrix:
        """(n, n) which superpixels touch (4-neighbours)."""
        sp = self.superpixels
        pairs = np.concatenate(
            [np.stack([sp[:, :-1].ravel(), sp[:, 1:].ravel()], 1), np.stack([sp[:-1].ravel(), sp[1:].ravel()], 1)]
        )
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        ones = np.ones(len(pairs), bool)
        graph = sparse.coo_matrix((ones, (pairs[:, 0], pairs[:, 1])), shape=(self.count, self.count)).tocsr()
        return (graph + graph.T).astype(bool).tocsr()

    def prepare(self) -> EditBase:
        """Make the superpixels and their colours and neighbours now (~0.2 s) rather than on the first click."""
        _ = self.sizes, self.colours, self.adjacency
        return self

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + (self.hints.nbytes if self.hints else 0) + self.superpixels.nbytes


def regions(base: EditBase, grid_labels: np.ndarray) -> np.ndarray:
    """(gh, gw) int32 region ids: the superpixels cut along the parse's edges (what a small fix takes)."""
    k = int(grid_labels.max()) + 1
    ids = base.superpixels.astype(np.int64) * k + grid_labels
    return np.unique(ids, return_inverse=True)[1].reshape(grid_labels.shape).astype(np.int32)


def _component(mask: np.ndarray, y: int, x: int) -> np.ndarray:
    """The 8-connected piece of ``mask`` holding (y, x) (empty when it is not in ``mask``)."""
    if not mask[y, x]:
        return np.zeros_like(mask)
    pieces, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return pieces == pieces[y, x]


def _snap(base: EditBase, region: np.ndarray, within: np.ndarray) -> np.ndarray:
    """``region`` snapped to the superpixels: those at least half in it, cut to ``within``."""
    sp = base.superpixels
    n = int(sp.max()) + 1
    inside = np.bincount(sp[region], minlength=n) / np.maximum(np.bincount(sp.ravel(), minlength=n), 1)
    return (inside >= 0.5)[sp] & within


Click = tuple[int, int, int]  # (grid y, grid x, label): a pixel the user said is that label


def click_region(
    base: EditBase, grid_labels: np.ndarray, y: int, x: int, label: int, clicks: tuple[Click, ...] = ()
) -> np.ndarray:
    """The grid cells (gh, gw) bool a click at grid cell (y, x) naming ``label`` fills; earlier ``clicks`` of
    other labels stay theirs (the region is cut between them and this click)."""
    current = int(grid_labels[y, x])
    if current == label:  # a second click: grow over the next ring (a refinement, not a no-op)
        region = _grow_again(base, grid_labels, y, x, label)
    else:
        region = _fill(base, grid_labels, y, x, label, current)
    others = [(cy, cx) for cy, cx, cl in clicks if cl != label and region[cy, cx]]
    if others:
        region = _cut(region, y, x, others)
    return region


def _cut(region: np.ndarray, y: int, x: int, others: list[tuple[int, int]]) -> np.ndarray:
    """The part of ``region`` nearer to (y, x) than to any of ``others``, connected to (y, x)."""
    seeds = np.ones(region.shape, bool)
    for oy, ox in others:
        seeds[oy, ox] = False
    to_others = ndimage.distance_transform_edt(seeds)
    ys, xs = np.indices(region.shape)
    to_click = np.hypot(ys - y, xs - x)
    return _component(region & (to_click < to_others), y, x)


def _fill(base: EditBase, grid_labels: np.ndarray, y: int, x: int, label: int, current: int) -> np.ndarray:
    """A click naming ``label`` on a pixel of ``current``: within the connected piece of ``current``, the
    superpixels joined to the clicked one through superpixels where the network gives ``label`` a chance or whose
    colour is the clicked one's; all of the piece when the network ranks ``label`` first over most of it."""
    segment = _component(grid_labels == current, y, x)
    sp, seed = base.superpixels, int(base.superpixels[y, x])
    p_new = None if base.hints is None else base.hints.prob(label)
    if p_new is not None and (p_new[segment] > base.hints.prob(current)[segment]).mean() >= WHOLE:
        return segment  # the network agrees the whole piece is the clicked garment
    n = base.count
    inside = np.bincount(sp[segment], minlength=n)  # each superpixel's pixels in the piece
    member = inside > 0
    similar = np.linalg.norm(base.colours - base.colours[seed], axis=1) < COLOUR
    chance = np.zeros(n, bool)
    if p_new is not None:
        chance = np.bincount(sp[segment], weights=p_new[segment], minlength=n) >= CHANCE * np.maximum(inside, 1)
    ok = member & (similar | chance)
    ok[seed] = True
    joined = base.adjacency[ok][:, ok]
    _, parts = csgraph.connected_components(joined, directed=False)
    ids = np.flatnonzero(ok)
    grown = np.zeros(n, bool)
    grown[ids[parts == parts[np.searchsorted(ids, seed)]]] = True
    return grown[sp] & segment


def _grow_again(base: EditBase, grid_labels: np.ndarray, y: int, x: int, label: int) -> np.ndarray:
    """A click on a pixel that already has ``label``: the next superpixels around its piece where the network
    gives ``label`` a chance (or, without hints, every touching superpixel)."""
    piece = _component(grid_labels == label, y, x)
    ring = ndimage.binary_dilation(piece, iterations=3) & ~piece
    touched = np.unique(base.superpixels[ring])
    grow = np.isin(base.superpixels, touched) & ~piece
    if base.hints is not None:
        grow &= base.hints.prob(label) >= CHANCE
    return grow
