"""``VectorIndex``: the catalogue's vectors in faiss, by id, with adds and removes and no rebuild.

Inner product on L2-normalised vectors (cosine). Exact (``IndexFlatIP``) up to ``EXACT_UP_TO`` vectors; past that,
the next save rebuilds it once as IVF (``IndexIVFFlat``, √n lists trained on ≤ 64 vectors each, ``nprobe`` 32),
which keeps adds and removes.
The kind is recorded in the catalogue. A search may be limited to a set of ids (faiss' ``IDSelectorBatch``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXACT_UP_TO = 100_000
NPROBE = 32


def _faiss():  # noqa: ANN202
    try:
        import faiss
    except ImportError:
        raise ImportError("search needs faiss: pip install 'clothing-parsing[search]' (faiss-cpu)") from None
    return faiss


class VectorIndex:
    """Vectors (n, d) float32 under int64 ids."""

    def __init__(self, dim: int, index=None) -> None:  # noqa: ANN001
        faiss = _faiss()
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def kind(self) -> str:
        inner = _faiss().downcast_index(self.index.index) if hasattr(self.index, "index") else self.index
        return "ivf" if "IVF" in type(inner).__name__ else "flat"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        faiss, ids = _faiss(), np.asarray(ids, np.int64)
        hashed = self.kind == "ivf" and faiss.extract_index_ivf(self.index).direct_map.type == faiss.DirectMap.Hashtable
        selector = faiss.IDSelectorArray(ids) if hashed else faiss.IDSelectorBatch(ids)  # what each index takes
        return int(self.index.remove_ids(selector))

    def get(self, ids: list[int]) -> np.ndarray:
        """The vectors (n, d) stored under ``ids`` (each must be in)."""
        faiss = _faiss()
        if self.kind == "ivf":  # IVF lists find a vector by id through a hash table, made on first use
            ivf = faiss.extract_index_ivf(self.index)
            if ivf.direct_map.type != faiss.DirectMap.Hashtable:
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.index.reconstruct(int(i)) for i in ids])

    def search(self, query: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One query (d,) → (scores, ids) of the ``k`` nearest, best first (ids -1 where fewer exist), only
        among the ids ``among`` when given."""
        faiss = _faiss()
        q = np.ascontiguousarray(query.reshape(1, -1), np.float32)
        if len(self) == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        params = None
        if among is not None:
            if not len(among):
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            selector = faiss.IDSelectorBatch(np.asarray(among, np.int64))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=NPROBE) if self.kind == "ivf" else None
            params = params or faiss.SearchParameters(sel=selector)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=NPROBE)
        scores, ids = self.index.search(q, min(k, len(self)), params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path) -> None:
        """Write it (atomically); past ``EXACT_UP_TO`` vectors an exact index is rebuilt as IVF first."""
        faiss = _faiss()
        if self.kind == "flat" and len(self) > EXACT_UP_TO:
            self.index = ivf_from(self.index, self.dim)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        index = _faiss().read_index(str(path))
        if index.d != dim:
            raise ValueError(f"{path}: vectors of {index.d} dimensions, the catalogue says {dim}")
        return cls(dim, index)


def ivf_from(flat, dim: int):  # noqa: ANN001, ANN201
    """An exact IDMap2 index → an IVF one holding the same vectors and ids (trained on them)."""
    faiss = _faiss()
    n = flat.ntotal
    ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
    vectors = flat.index.reconstruct_n(0, n)
    lists = int(max(8, min(np.sqrt(n), 65536)))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    sample = vectors[np.random.default_rng(0).choice(n, size=min(n, lists * 64), replace=False)]
    ivf.train(sample)
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = NPROBE
    return ivf
